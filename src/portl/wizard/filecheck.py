"""``portl init --check-file FILE --job-file JOB.yaml``: can this job load that file?

A job is often written for one export and then fed the next one, whose columns may have moved on:
a column dropped, one added, one renamed (``E-mail`` for ``Email``). This reads FILE's header with
the job's own source settings (type, delimiter, encoding...), compares it with the columns the
job was written for (the header of the job's own source file when it can be read, else the
columns its mapping names) and resolves the job's mapping against FILE as ``portl run`` would.
The job can load FILE when its mapping resolves; the differences are listed either way. Values
are not read: ``portl plan`` on a copy of the job pointing at FILE shows the first mapped rows.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from portl.engine.mapping import normalise_name
from portl.errors import ConfigError, PortlError

CLOSE = 0.6
"""How alike two column names must be (difflib's ratio) to be told as a rename."""


@dataclass
class FileCheck:
    """The outcome: FILE's columns against the job's, and whether the mapping resolves."""

    file: str
    job: str
    expected_from: str
    """Where the expected columns came from: the job's source file, or its mapping."""
    columns: list[str]
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    """(expected, found in FILE) pairs whose names are close."""
    problems: list[str] = field(default_factory=list)
    """Why the mapping does not resolve against FILE; empty when the job can load it."""
    auto: bool = False

    @property
    def loadable(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The verdict and the differences, for people."""
        verdict = "can load" if self.loadable else "cannot load"
        head = [f"job {self.job} {verdict} {self.file} ({len(self.columns)} columns; compared with {self.expected_from})"]
        if not (self.missing or self.extra or self.renamed):
            head.append("  same columns")
        for expected, found in self.renamed:
            head.append(f"  renamed?  {expected} -> {found}")
        if self.missing:
            head.append(f"  missing:  {', '.join(self.missing)}")
        if self.extra:
            fate = "loaded as new columns (auto mapping)" if self.auto else "not loaded (not in the mapping)"
            head.append(f"  extra:    {', '.join(self.extra)}: {fate}")
        head += [f"  problem:  {p}" for p in self.problems]
        if self.renamed and not self.loadable:
            head.append("  to load it, map the new names in the job: mapping.columns.<column>.from: <name in the file>")
        return head


def check_file(file: str, job_file: str, job_name: str | None = None, connections: str | None = None,
               environ: Any = None) -> FileCheck:
    """Compare ``file``'s header with the job's columns and resolve its mapping against it."""
    from portl.spec.loader import load_job

    loaded = load_job(job_file, job_name, connections, environ)
    job = loaded.job
    if "path" not in type(job.source).model_fields:
        raise ConfigError(f"job {loaded.name} reads {job.source.type}, not files: --check-file compares a file with a "
                          "job whose source is a file")
    if not os.path.isfile(file):
        raise ConfigError(f"no file {file!r} (from {os.getcwd()}); check the path")
    columns, schema = _header(job.source, os.path.abspath(file), loaded.base_dir)
    expected, expected_from = _expected(job, loaded)
    result = FileCheck(file, loaded.name, expected_from, columns, auto=job.mapping.auto)
    _compare(result, expected)
    from portl.engine.mapping import resolve_mapping

    try:
        resolve_mapping(job.mapping, schema, None)
    except ConfigError as exc:
        result.problems = [p.message for p in exc.problems] or [str(exc)]
    return result


def _header(source: Any, path: str, base_dir: str) -> tuple[list[str], Any]:
    """The column names and schema of ``path`` read with the job's source settings."""
    from portl.connectors import registry

    config = source.model_copy(update={"path": path})
    opened = registry.open_source(config, base_dir)
    try:
        schema = opened.schema()
    finally:
        opened.close()
    return list(schema.names), schema


def _expected(job: Any, loaded: Any) -> tuple[list[str], str]:
    """The columns the job was written for: its own source's header when that can be read, else
    the source columns its mapping names."""
    try:
        columns, _ = _header(job.source, job.source.path, loaded.base_dir)
        return columns, f"the job's source {job.source.path}"
    except PortlError:
        pass  # moved or removed since the job was written: the mapping still says what it reads
    named = []
    for key, spec in job.mapping.columns.items():
        first = spec.transform[0] if spec.transform else None
        if first is not None and first.name in ("concat", "coalesce"):
            named += [a for a in first.args if isinstance(a, str)]
        elif spec.default is None:
            named.append(spec.from_ or key)
    return list(dict.fromkeys(named)), "the columns its mapping names"


def _compare(result: FileCheck, expected: list[str]) -> None:
    """Missing and extra columns (names compared exactly, as a mapping's ``from`` is), and the
    likely renames among them (names alike once normalised as the auto mapping does)."""
    missing = [c for c in expected if c not in result.columns]
    extra = [c for c in result.columns if c not in expected]
    for name in list(missing):
        by_normal = {normalise_name(e): e for e in reversed(extra)}
        close = difflib.get_close_matches(normalise_name(name), list(by_normal), n=1, cutoff=CLOSE)
        if close:
            partner = by_normal[close[0]]
            result.renamed.append((name, partner))
            missing.remove(name)
            extra.remove(partner)
    result.missing, result.extra = missing, extra
