"""Turning settled answers into a job: the dict a job file holds, section by section.

:func:`column_settings` decides each mapped column's type, formats and transforms: the suggestion
from the sample (when ``detect`` is on), overridden column by column by ``column_types``,
``transforms`` and ``date_formats``. :func:`job_data` builds the job in the job language's own
form; :mod:`portl.wizard.jobfile` writes it with comments, and the result is checked by loading
it with :func:`portl.spec.loader.load_job` before it is saved.

Paths typed during the wizard are relative to the folder ``portl init`` runs in; a job's paths
are relative to the job file's folder, so they are rewritten for where the job is saved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portl.spec.models import HOOK_EVENTS
from portl.wizard.samples import Suggestion

_TEMPORAL = ("date", "timestamp", "timestamptz", "datetime")
SHEET_KEYS = ("spreadsheet", "credentials", "endpoint", "sheet")
"""The answers that say where a spreadsheet's tab is (``source_spreadsheet``...)."""
LOCATION_KEYS = ("path", "url", "host", "port", "user", "password", "database", "schema") + SHEET_KEYS
"""The answers that say where a side is, after its type (``source_path``...)."""


@dataclass(frozen=True)
class ColumnSetting:
    """One mapped column: where it comes from and how it is converted."""

    dest: str
    source: str
    type: str | None = None
    formats: tuple[str, ...] = ()
    transforms: tuple[Any, ...] = field(default_factory=tuple)

    def spec(self, always_from: bool) -> Any:
        """The column's entry under ``mapping.columns``: ``Email`` or ``{from: ..., type: ...}``."""
        spec: dict[str, Any] = {}
        first = self.transforms[0] if self.transforms else None
        reads_columns = isinstance(first, dict) and bool({"concat", "coalesce"} & set(first))
        if not reads_columns and (always_from or self.source != self.dest):  # concat names its own columns
            spec["from"] = self.source
        if self.type:
            spec["type"] = self.type
        if self.formats and (self.type or "") in _TEMPORAL:
            spec["format"] = list(self.formats) if len(self.formats) > 1 else self.formats[0]
        if self.transforms:
            spec["transform"] = list(self.transforms) if len(self.transforms) > 1 else self.transforms[0]
        if set(spec) == {"from"}:
            return spec["from"]
        return spec

    @property
    def converts(self) -> bool:
        return bool(self.type or self.transforms)


def column_settings(answers: Mapping[str, Any], mapped: Mapping[str, str],
                    suggestions: Mapping[str, Suggestion]) -> list[ColumnSetting]:
    """Each mapped column (destination -> source) with its type, formats and transforms."""
    detect = answers.get("detect", True)
    types = answers.get("column_types") or {}
    transforms = answers.get("transforms") or {}
    formats = answers.get("date_formats") or {}
    out = []
    for dest, source in mapped.items():
        hint = suggestions.get(source) if detect else None
        chosen_type = types[dest] if dest in types else (hint.type if hint else None)
        chosen_formats = tuple(formats.get(dest) or (hint.formats if hint and chosen_type == hint.type else ()))
        steps = tuple(transforms[dest]) if dest in transforms else (tuple(hint.transforms) if hint else ())
        out.append(ColumnSetting(dest, source, chosen_type, chosen_formats, steps))
    return out


def relative_path(path: str, job_dir: str, cwd: str) -> str:
    """``path`` (typed relative to ``cwd``) as the job file must say it, relative to ``job_dir``."""
    if "${env:" in path or path.startswith("~") or "://" in path:  # an object's URL is no local path
        return path
    if os.path.isabs(path):
        return path
    return os.path.relpath(os.path.join(cwd, path), job_dir)


def connector(answers: Mapping[str, Any], side: str, job_dir: str, cwd: str) -> Any:
    """The ``source`` or ``destination`` section: a connector, or a named connection with extras."""
    name = answers.get(f"{side}_connection")
    data: dict[str, Any] = {"connection": name} if name else {"type": answers[f"{side}_type"]}
    for key in LOCATION_KEYS:
        value = answers.get(f"{side}_{key}")
        if value not in (None, ""):
            data[key] = relative_path(value, job_dir, cwd) if key in ("path", "credentials") else value
    if answers.get(f"{side}_table"):
        data["table"] = answers[f"{side}_table"]
    return name if name and len(data) == 1 else data


def job_data(answers: Mapping[str, Any], columns: list[ColumnSetting], job_dir: str, cwd: str) -> dict[str, Any]:
    """The job as a job file holds it, keys in the order they are written."""
    auto = answers.get("mapping", "auto") == "auto"
    data: dict[str, Any] = {"name": answers["name"]}
    data["source"] = connector(answers, "source", job_dir, cwd)
    data["destination"] = connector(answers, "destination", job_dir, cwd)

    mapping: dict[str, Any] = {"auto": auto}
    listed = {c.dest: c.spec(always_from=not auto) for c in columns if not auto or c.converts}
    if listed:
        mapping["columns"] = listed
    for key in ("create_missing_columns", "extra_destination_columns"):
        if answers.get(key) is not None:
            mapping[key] = answers[key]
    data["mapping"] = mapping

    key = list(answers.get("conflict_key") or [])
    if key:
        data["mode"] = "upsert"
        data["conflict"] = {"key": key, "strategy": answers.get("conflict_strategy") or "overwrite"}
    else:
        data["mode"] = answers.get("mode") or "append"

    data["batch"] = {"size": answers.get("batch_size", 25_000)}
    retry: dict[str, Any] = {"strategy": answers.get("retry", "retry")}
    if retry["strategy"] != "fail":
        retry["attempts"] = answers.get("retry_attempts", 3)
    data["retry"] = retry
    data["parallel"] = {"workers": answers.get("workers", 1)}
    hooks = {event: answers[f"{event}_hook"] for event in HOOK_EVENTS if answers.get(f"{event}_hook")}
    if hooks:
        data["hooks"] = hooks
    validation: dict[str, Any] = {"schema": answers.get("schema_check", True),
                                  "row_count": answers.get("row_count", True)}
    if answers.get("max_rejects") is not None:
        validation["max_rejects"] = answers["max_rejects"]
    data["validation"] = validation
    return data
