"""Taking a submitted job in: its text (YAML as sent, or a JSON document written out as YAML),
the policy's problems (located by line and column, or for a JSON document by its path in it),
the NUL characters it may not hold, and an ``Idempotency-Key`` that makes a repeated submission
answer the first job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from portl.errors import ConfigError, Problem
from portl.spec.positions import Path, dotted, parse_yaml


@dataclass(frozen=True)
class Submitted:
    """A submission, its job written as the text the runner will read."""

    text: str
    from_json: bool
    name: str | None
    labels: dict[str, str]

    def same_as(self, text: str, name: str | None, labels: dict[str, str]) -> bool:
        """Whether a stored job is this submission again (what an idempotent repeat must be)."""
        return (self.text, self.name, self.labels) == (text, name, labels or {})


def submitted(job: str | dict[str, Any], name: str | None, labels: dict[str, str]) -> Submitted:
    from_json = not isinstance(job, str)
    text = job if isinstance(job, str) else yaml.safe_dump(job, sort_keys=False, allow_unicode=True,
                                                           default_flow_style=False)
    return Submitted(text, from_json, name if name is not None else _own_name(text), dict(labels))


def problem_dicts(problems: list[Problem], sent: Submitted) -> list[dict[str, Any]]:
    """The problems as the API answers them, each with its path in the document (``job.source.path``).
    For a JSON document, lines and columns of the YAML we wrote would mean nothing to the sender,
    so they are null."""
    sites = _paths_by_site(sent.text)
    answer = []
    for p in problems:
        path = sites.get((p.line, p.column)) if p.line is not None else None
        shown = None if path is None else "job" + ("." + dotted(path) if path else "")
        if sent.from_json:
            answer.append({"message": p.message, "path": shown or "job", "file": None, "line": None, "column": None})
        else:
            answer.append({"message": p.message, "path": shown, "file": p.file, "line": p.line, "column": p.column})
    return answer


def nul_characters(text: str) -> list[Problem]:
    """Each key or value of a job holding a NUL character (a JSON job's "\\u0000", YAML's "\\0"):
    no name, path or setting can, and the state database and the file system refuse them."""
    try:
        parsed = parse_yaml(text, "job.yaml")
    except ConfigError:
        return []  # the validation says why the text is not YAML
    found: list[Problem] = []

    def visit(node: Any, path: Path) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(key, str) and "\x00" in key:
                found.append(parsed.positions.problem(path + (key,), f"the key {key!r} holds a NUL character "
                                                      "(\\x00), which the service cannot keep", at_key=True))
            if isinstance(value, str) and "\x00" in value:
                found.append(parsed.positions.problem(path + (key,), f"{value!r} holds a NUL character (\\x00), "
                                                      "which the service cannot keep"))
            visit(value, path + (key,))

    visit(parsed.data, ())
    return found


def _paths_by_site(text: str) -> dict[tuple[int, int], Path]:
    try:
        parsed = parse_yaml(text, "job")
    except ConfigError:  # text that is not YAML at all: its problem has a line and column, but no path
        return {}
    found: dict[tuple[int, int], Path] = {}

    def visit(node: Any, path: Path) -> None:
        site = parsed.positions.site(path)
        if site is not None:  # the deepest path written at a place is the one a problem there is about
            for where in ((site.line, site.column), (site.key_line, site.key_column)):
                if where[0] is not None and len(path) >= len(found.get(where, ())):
                    found[where] = path
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            visit(value, path + (key,))

    visit(parsed.data, ())
    return found


def _own_name(text: str) -> str | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name)[:200] if isinstance(name, (str, int)) and str(name).strip() else None  # the column's width
