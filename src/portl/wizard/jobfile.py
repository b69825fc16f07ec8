"""Writing a job as commented YAML, and adding a job to an existing job file.

Each section of the job gets a short comment saying what it does with the values chosen. Column
specs and hooks are written in flow style (``email: {from: Email, transform: [trim, lower]}``),
lists of names inline, everything else as block YAML.

Appending keeps the existing file's text, comments included: a multi-job file gets one more entry
under ``jobs:``, and a single-job file becomes the first entry of a new ``jobs:`` list, with a
``name`` added when it had none (the file name it was known by). The result is parsed and
compared with what it must hold; if the existing text is laid out in a way the text edit cannot
follow (``jobs`` in flow style, YAML directives...), the file is written anew from its data, and
the caller is told that its comments were not kept.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

WIDTH = 100


class Flow(dict):
    """A mapping written in flow style: ``{from: Email, type: text}``."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them.
        return super().increase_indent(flow, False)


def _represent_flow(dumper: yaml.SafeDumper, data: Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat or None)


_Dumper.add_representer(Flow, _represent_flow)
_Dumper.add_representer(list, _represent_list)


def dump(value: Any) -> str:
    """YAML text for ``value`` in the layout described in the module docstring."""
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=WIDTH)


@dataclass(frozen=True)
class Commented:
    """A job's YAML text and the data it holds."""

    text: str
    data: dict[str, Any]


def job_text(data: Mapping[str, Any], file_name: str, *, several: bool = False,
             table_exists: bool | None = None) -> Commented:
    """The job ``data`` as YAML with a comment above each section. ``file_name`` and ``several``
    (the file holds several jobs) shape the commands the header suggests."""
    lines = [f"# {line}" for line in _header(data["name"], file_name, several)]
    for key, value in data.items():
        comment = _comment(key, data, table_exists)
        if comment:
            lines.append("")
            lines += ["# " + line for line in textwrap.wrap(comment, WIDTH - 2, break_on_hyphens=False)]
        lines += dump({key: _styled(key, value)}).rstrip("\n").splitlines()
    return Commented("\n".join(lines) + "\n", dict(data))


def _styled(key: str, value: Any) -> Any:
    if key == "mapping" and isinstance(value.get("columns"), dict):
        columns = {k: Flow(v) if isinstance(v, dict) else v for k, v in value["columns"].items()}
        return {**value, "columns": columns}
    if key == "hooks":
        return {event: Flow(hook) for event, hook in value.items()}
    return value


def _header(name: str, file_name: str, several: bool) -> list[str]:
    job = f" --job {name}" if several else ""
    return [
        f"Job {name}, written by `portl init`; edit it freely.",
        f"  check it:           portl validate {file_name}",
        f"  see what it does:   portl plan {file_name}{job}",
        f"  run it:             portl run {file_name}{job}",
    ]


_STRATEGY = {
    "skip": "is kept as it is (the incoming row is skipped)",
    "overwrite": "is overwritten",
    "merge": "takes the incoming non-empty values and keeps the rest",
    "fail": "stops the batch: it is rolled back and every conflicting key reported",
}
_RETRY = {
    "retry": "a batch that fails for a passing reason (a lock, a timeout, a dropped connection) is tried again, "
             "up to attempts times in all; then the run fails.",
    "skip": "a failing batch is tried again up to attempts times; then its rows go to the reject file and "
            "the run goes on.",
    "fail": "nothing is retried: the first error stops the run.",
}


def _comment(key: str, data: Mapping[str, Any], table_exists: bool | None) -> str:
    if key == "source":
        return "Where rows come from. Relative paths are taken from this file's folder."
    if key == "destination":
        when = {True: " The table exists already.", False: " It is created by the first run."}.get(table_exists, "")
        return "Where rows go." + when
    if key == "mapping":
        if data[key].get("auto"):
            return ("Columns: every source column is loaded into the destination column of the same name (case, "
                    "spaces, hyphens and dots ignored); an entry under columns renames or converts one column.")
        return ("Columns: only the columns listed are loaded. Each is `destination: source`, or "
                "{from: source, type: ..., format: ..., transform: ...}.")
    if key == "mode":
        if data[key] == "upsert":
            strategy = data["conflict"]["strategy"]
            return f"upsert on the key: new rows are inserted; a row whose key is there already {_STRATEGY[strategy]}."
        if data[key] == "replace":
            return "replace: the destination is emptied, then loaded."
        return "append: rows are added; nothing already there is looked at."
    if key == "batch":
        return "Rows per batch. A batch commits together with its checkpoint, so `portl run --resume` " \
               "continues a stopped run where it ended."
    if key == "retry":
        return f"When writing a batch fails: {data[key]['strategy']}: {_RETRY[data[key]['strategy']]}"
    if key == "parallel":
        return "Partitions of the source read, mapped and written at once."
    if key == "hooks":
        return "Your code, run around rows and batches: see docs/hooks.md for what each one receives."
    if key == "validation":
        return ("schema: check before writing that each column fits the destination; row_count: check after the "
                "run that the destination gained exactly the rows reported; max_rejects: stop past that many "
                "rejected rows.")
    return ""


# --- several jobs in one file ------------------------------------------------------------------


_JOBS_KEY = re.compile(r"^jobs:\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


def append_job(existing_text: str, path: str, entry: Commented) -> tuple[str, bool]:
    """``existing_text`` with the job ``entry`` added, and whether its comments were kept.

    Raises ValueError when the existing file is not a job file.
    """
    existing = appendable(existing_text, path)
    if existing is None:
        return entry.text, True
    if "jobs" in existing:
        expected = {**existing, "jobs": [*existing["jobs"], entry.data]}
        text = _appended(existing_text, entry.text)
    else:
        first = dict(existing)
        if not first.get("name"):
            first = {"name": stem(path), **first}
        expected = {"jobs": [first, entry.data]}
        text = _converted(existing_text, existing, path, entry.text)
    if text is not None and _holds(text, expected):
        return text, True
    return dump(expected), False


def appendable(existing_text: str, path: str) -> dict[str, Any] | None:
    """The data of a job file a job can be added to (None when it is empty); ValueError when it
    is not a job file."""
    try:
        existing = yaml.safe_load(existing_text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML ({getattr(exc, 'problem', exc)}); fix it, or overwrite it") from None
    if existing is None:
        return None
    if not isinstance(existing, dict):
        raise ValueError(f"{path} does not hold a job (it is not a mapping of keys); overwrite it, or choose another file")
    if "jobs" in existing and not isinstance(existing["jobs"], list):
        raise ValueError(f"{path}: its 'jobs' is not a list of jobs; fix it, or overwrite it")
    return existing


def _appended(existing_text: str, entry_text: str) -> str | None:
    lines = existing_text.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if _JOBS_KEY.match(line)]
    if len(starts) != 1:
        return None
    indent = None
    for line in lines[starts[0] + 1:]:
        match = _ITEM.match(line)
        if match:
            indent = len(match.group(1))
            break
    if indent is None:
        return None
    return "\n".join(lines) + "\n\n" + as_entry(entry_text, indent)


def _converted(existing_text: str, existing: dict[str, Any], path: str, entry_text: str) -> str | None:
    lines = existing_text.rstrip("\n").splitlines()
    if lines and lines[0].strip() == "---":
        lines = lines[1:]
    if any(line.startswith(("%", "---", "...")) for line in lines):
        return None
    top = 0
    while top < len(lines) and (not lines[top].strip() or lines[top].lstrip().startswith("#")):
        top += 1
    # Comments right above the first key describe the job and move with it; a block set apart
    # by a blank line describes the file and stays on top.
    attached = top
    while attached > 0 and lines[attached - 1].strip():
        attached -= 1
    name = existing.get("name") or stem(path)
    head = lines[:attached]
    body = [_with_job(line, name) for line in lines[attached:top]] + lines[top:]
    if not existing.get("name"):
        body.insert(top - attached, f"name: {dump(name).splitlines()[0]}")
    out = [*head, "jobs:", as_entry("\n".join(body), 2), as_entry(entry_text, 2)]
    return "\n".join(out)


_OWN_COMMAND = re.compile(r"^#\s+(see what it does|run it):\s+portl (plan|run) \S+$")


def _with_job(line: str, name: str) -> str:
    """The command lines of a header ``portl init`` wrote, made to pick the job by name."""
    return f"{line} --job {name}" if _OWN_COMMAND.match(line.strip()) else line


def as_entry(text: str, indent: int) -> str:
    """``text`` (a job at the top level) as an item of a list indented by ``indent``."""
    out, started = [], False
    for line in text.rstrip("\n").splitlines():
        if not line.strip():
            out.append("")
        elif not started and not line.lstrip().startswith("#"):
            out.append(" " * indent + "- " + line)
            started = True
        else:
            out.append(" " * (indent + 2) + line)
    return "\n".join(out) + "\n"


def _holds(text: str, expected: Any) -> bool:
    try:
        return yaml.safe_load(text) == expected
    except yaml.YAMLError:
        return False


def stem(path: str) -> str:
    """The name a job without ``name`` is known by: its file's name without the extension."""
    return os.path.splitext(os.path.basename(path))[0]
