"""``plan()``: resolve everything a run will do, without writing anything.

The plan is the dry-run: the resolved job (secrets masked), the source schema, the mapping table,
the DDL, the statements per batch, a preview of mapped rows with the ones that would be rejected
marked, a row estimate and the validation findings. ``run()`` executes this same plan.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from portl.connectors import registry
from portl.connectors.base import Estimate, Sink, Source, TableInfo, TargetPlan, WriteMode, WriteSpec
from portl.connectors.closest import table_hint
from portl.connectors.sql.dialect import split_qualified
from portl.engine.hooks import describe as describe_hooks
from portl.engine.incremental import IncrementalPlan, plan_incremental
from portl.engine.mapping import MappedBatch, MappingPlan, apply_mapping, resolve_mapping
from portl.engine.validation import check_schema
from portl.engine.verbatim import VerbatimPlan, verbatim_plan
from portl.errors import ConfigError
from portl.secrets import MASK, is_sensitive_name, mask_url
from portl.spec.loader import LoadedJob
from portl.spec.models import HOOK_EVENTS
from portl.spec.rejects import default_path_warning, reject_path
from portl.types import logical_of


@dataclass
class PreviewRow:
    """One of the first source rows, as it would be written, or why it would be rejected."""

    record: int | None
    line: int | None
    values: dict[str, Any] | None
    error: str | None = None
    column: str | None = None

    def where(self) -> str:
        """``row 3 (line 4)``; ``line 4`` when the source numbers lines but not records."""
        line = f"line {self.line}" if self.line else ""
        if self.record:
            return f"row {self.record}" + (f" ({line})" if line else "")
        return line or "row"


def preview_text(value: Any, width: int = 40) -> str:
    """A preview value as text: a NULL reads ``NULL``, text that would read the same (``NULL``,
    ``null``, an empty or blank string) is shown quoted, and long text is cut to ``width``."""
    if value is None:
        return "NULL"
    text = str(value)
    if isinstance(value, str) and (text.strip().upper() in ("", "NULL", "NONE") or text != text.strip()):
        text = repr(text)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Plan:
    """Everything a run will do. Holds the open source and sink that ``run`` uses."""

    job: LoadedJob
    source: Source
    sink: Sink
    source_schema: pa.Schema
    estimate: Estimate
    destination: TableInfo | None
    mapping: MappingPlan
    spec: WriteSpec
    target: TargetPlan
    reject_path: str
    preview: list[PreviewRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hooks: dict[str, list[str]] = field(default_factory=dict)
    source_notes: list[str] = field(default_factory=list)
    verbatim: VerbatimPlan | None = None
    """Set when the source's text blocks go to the destination as they are (see engine.verbatim)."""
    verbatim_why_not: str = ""
    incremental: IncrementalPlan | None = None
    """The window an incremental source reads (see engine.incremental)."""
    checks: list[str] = field(default_factory=list)
    """The quality checks, one line each, as the plan shows them (see portl.quality)."""

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def job_hash(self) -> str:
        return hashlib.sha256(self.job.text.encode()).hexdigest()[:16]

    def resolved_config(self) -> dict[str, Any]:
        """The job as it will run, with every secret masked."""
        job = self.job.job
        data = job.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        data.pop("connections", None)
        ordered = {"name": self.name, "source": data.pop("source"), "destination": data.pop("destination"),
                   "mode": job.write_mode.value}
        ordered.update((k, v) for k, v in data.items() if k not in ordered)
        return _mask(ordered)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (``portl plan --format json``)."""
        return {
            "job": self.name,
            "file": self.job.path,
            "config": self.resolved_config(),
            "source": {
                "description": self.source.description,
                "schema": [{"name": f.name, "type": str(logical_of(f))} for f in self.source_schema],
                "estimate": dataclasses.asdict(self.estimate),
                "notes": self.source_notes,
                "incremental": self.incremental.to_json() if self.incremental is not None else None,
            },
            "destination": {
                "description": self.sink.description,
                "exists": self.destination is not None,
                "mode": self.spec.mode.value,
                "key": list(self.spec.key),
                "strategy": self.spec.strategy.value if self.spec.strategy else None,
                "bulk_method": self.sink.capabilities.bulk_method,
                "verbatim": ({"format": self.verbatim.format.kind, "columns": list(self.verbatim.columns),
                              "checks": {n: str(t) for n, t in self.verbatim.request.types},
                              "required": sorted(self.verbatim.request.required)}
                             if self.verbatim else None),
                "verbatim_not_used_because": self.verbatim_why_not or None,
            },
            "mapping": [
                {"source": list(c.sources), "transforms": [_transform_text(t) for t in c.transforms],
                 "destination": c.name, "type": str(c.logical), "required": c.required, "origin": c.origin,
                 "type_from": c.type_source}
                for c in self.mapping.columns
            ],
            "unmapped_source_columns": list(self.mapping.unmapped_source),
            "ddl": self.target.ddl,
            "per_batch": self.target.per_batch,
            "target_notes": self.target.notes,
            "preview": [dataclasses.asdict(r) for r in self.preview],
            "rejects_file": self.reject_path,
            "hooks": self.hooks,
            "checks": self.checks,
            "batch_size": self.job.job.batch.size,
            "workers": self.job.job.parallel.workers,
            "transaction": self.job.job.transaction,
            "warnings": self.warnings,
            "errors": self.errors,
        }

    def close(self) -> None:
        for part in (self.source, self.sink):
            try:
                part.close()
            except Exception:  # closing is best effort; the run's outcome is already decided
                pass


def _say_how_to_reuse(loaded: LoadedJob, sink: Sink) -> None:
    """A file destination that already holds data, and a job that does not say whether to add to
    it or write it anew: appending by default would double it on every re-run, replacing would
    lose what was there. Neither is done without being asked."""
    existing = sink.existing_data()  # type: ignore[attr-defined]
    if existing is None:
        return
    ways = ["mode: replace to write it anew"]
    if WriteMode.APPEND in sink.capabilities.modes:
        ways.append("mode: append to add the rows to it")
    else:
        ways[0] += f" ({sink.description} cannot be appended to)"
    raise ConfigError(loaded.located(("destination",), f"{existing} already exists and the job does not say what to do "
                                     f"with it: set {', or '.join(ways)}"))


def is_database_copy(loaded: LoadedJob) -> bool:
    """True for a job whose source names several tables (``tables:``)."""
    return bool(getattr(loaded.job.source, "tables", None))


def plan(loaded: LoadedJob, preview_rows: int = 5, full_refresh: bool = False) -> Plan:
    """Resolve a loaded job into a :class:`Plan`. Opens the source and the destination, reads at
    most ``preview_rows`` rows for the preview, and writes nothing. A whole-database copy
    (``tables:`` on the source) gives a :class:`~portl.engine.copy.DatabasePlan`. With
    ``full_refresh``, an incremental job reads its whole source again, as its first run did
    (:func:`~portl.engine.incremental.plan_incremental`)."""
    if full_refresh and getattr(loaded.job.source, "incremental", None) is None:
        raise ConfigError(f"--full-refresh reads an incremental job's whole source again, but job {loaded.name!r} is "
                          "not incremental (its source has no 'incremental:'): run it without --full-refresh")
    if is_database_copy(loaded):
        from portl.engine.copy import plan_database  # it brings the run's modules: imported only when needed

        return plan_database(loaded, preview_rows)
    job = loaded.job
    source = registry.open_source(job.source, loaded.base_dir)
    try:
        sink = registry.open_sink(job.destination, loaded.base_dir)
    except BaseException:
        source.close()
        raise
    try:
        return build_plan(loaded, source, sink, preview_rows, full_refresh)
    except BaseException:
        source.close()
        sink.close()
        raise


def build_plan(loaded: LoadedJob, source: Source, sink: Sink, preview_rows: int, full_refresh: bool = False) -> Plan:
    """The plan of one source into one destination, both already open."""
    job = loaded.job
    mode = job.write_mode
    caps = sink.capabilities
    if job.mode is None and caps.mode_to_reuse:
        _say_how_to_reuse(loaded, sink)
    if mode not in caps.modes:
        raise ConfigError(f"{sink.description} cannot {mode.value}; it supports: {', '.join(sorted(m.value for m in caps.modes))}")
    if mode == WriteMode.UPSERT and job.conflict.strategy not in caps.upsert_strategies:
        raise ConfigError(loaded.located(("conflict", "strategy"), f"{sink.description} does not support the conflict "
                                         f"strategy {job.conflict.strategy.value!r}; it supports: "
                                         + ", ".join(sorted(s.value for s in caps.upsert_strategies))))
    incremental = plan_incremental(loaded, source, sink, full_refresh)  # before anything is read: the source sees its window only
    schema = source.schema()
    destination = sink.table_info()
    if destination is None and caps.alters_tables and not job.mapping.create_missing_columns:
        raise ConfigError(
            f"destination table of {sink.description} does not exist and mapping.create_missing_columns is false; "
            "create the table first, or set create_missing_columns: true to let Portl create it" + _table_hint(job, sink)
        )
    mapping = resolve_mapping(job.mapping, schema, destination)
    key = tuple(job.conflict.key) if job.conflict else ()
    if key:
        mapping = _keys_required(mapping, key)
    spec = WriteSpec(mode, key, job.conflict.strategy if job.conflict else None, job.mapping.create_missing_columns)
    errors, warnings = (check_schema(mapping, destination, spec) if job.validation.schema_ else ([], []))
    if key:
        errors += _unmapped_keys(loaded, key, [c.name for c in mapping.columns])
    checks: list[str] = []
    if job.quality:
        checks, problems = _quality(loaded, mapping.schema, schema, sink)
        errors += problems
    target = sink.plan(mapping.schema, spec) if not errors else TargetPlan(sink.description)
    hooks = {e: describe_hooks(job.hooks, e) for e in HOOK_EVENTS if getattr(job.hooks, e)}
    result = Plan(
        job=loaded, source=source, sink=sink, source_schema=schema, estimate=source.estimate(),
        destination=destination, mapping=mapping, spec=spec, target=target,
        reject_path=_reject_path(loaded), warnings=list(mapping.warnings) + warnings + list(target.notes),
        errors=errors, hooks=hooks, source_notes=list(getattr(source, "notes", []) or []), incremental=incremental,
        checks=checks,
    )
    if not errors:
        used = {event for event in HOOK_EVENTS if getattr(job.hooks, event)}
        result.verbatim, result.verbatim_why_not = verbatim_plan(source, sink, mapping, spec, destination, hooks=used,
                                                                 transaction=job.transaction)
        if result.verbatim is not None:
            result.source_notes.append(result.verbatim.describe())
    if job.parallel.workers > 1 and caps.concurrent_writers == 1:
        result.warnings.append(
            f"{sink.description} takes one writer at a time: {job.parallel.workers} workers read and map in "
            "parallel, and their batches are written one after another"
        )
    if job.transaction == "job" and not caps.transactional:
        result.warnings.append(f"{sink.description} has no transactions: 'transaction: job' writes a temporary file renamed at the end")
    if (unwritable := default_path_warning(job, loaded.name, loaded.base_dir)) is not None:
        result.warnings.append(unwritable)
    if preview_rows > 0:
        result.preview, seen = _preview(source, mapping, preview_rows)
        result.warnings += [w for w in seen if w not in result.warnings]
    return result


def _quality(loaded: LoadedJob, mapped: pa.Schema, source_schema: pa.Schema, sink: Sink) -> tuple[list[str], list[str]]:
    """The plan's lines for the quality checks, and the problems of checks that cannot run (at
    their line in the job file)."""
    from portl.quality.gate import QualityGate, describe_check

    checks = list(loaded.job.quality)
    gate = QualityGate(checks, mapped, source_names=list(source_schema.names), sink=sink)
    try:
        found = gate.located_problems()
        if not found and sink.table_info() is not None:  # SQL rules are tried now, not after a 100 GB load
            found = gate.sql_problems()
        problems = [loaded.located(("quality", index), f"quality[{index}] ({checks[index].title}): {message}")
                    for index, message in found]
        return [describe_check(c) for c in checks], problems
    finally:
        gate.close()


def _table_hint(job: Any, sink: Sink) -> str:
    """A did-you-mean for a destination table that does not exist, from the sink's tables."""
    table, names = getattr(job.destination, "table", None), getattr(sink, "table_names", None)
    if not table or names is None:
        return ""
    hint = table_hint(split_qualified(table)[-1], names(), "the database")
    return f" ({hint.removeprefix('; ')})"


def _unmapped_keys(loaded: LoadedJob, key: tuple[str, ...], mapped: list[str]) -> list[str]:
    """A problem, at the ``conflict.key`` line, for each key column that nothing maps to."""
    out = []
    for k in key:
        if k not in mapped:
            close = difflib.get_close_matches(k, mapped, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the mapped columns are: {', '.join(mapped)}"
            out.append(loaded.located(("conflict", "key"), f"conflict.key: column {k} is not mapped{hint}"))
    return out


def _keys_required(mapping: MappingPlan, key: tuple[str, ...]) -> MappingPlan:
    columns = tuple(dataclasses.replace(c, required=True) if c.name in key else c for c in mapping.columns)
    return dataclasses.replace(mapping, columns=columns)


def _reject_path(loaded: LoadedJob) -> str:
    return reject_path(loaded.job, loaded.name, loaded.base_dir)


def _preview(source: Source, mapping: MappingPlan, rows: int) -> tuple[list[PreviewRow], list[str]]:
    out: list[PreviewRow] = []
    warnings: list[str] = []
    reader = source.read(rows, None)
    try:
        for chunk in reader:
            mapped: MappedBatch = apply_mapping(mapping, chunk.data)
            warnings += [w for w in mapped.warnings if w not in warnings]
            good = iter(mapped.data.to_pylist())
            errors = {e.index: e for e in mapped.rejects}
            kept = set(mapped.source_index.to_pylist())
            for i in range(chunk.data.num_rows):
                if i in errors:
                    e = errors[i]
                    out.append(PreviewRow(chunk.record_of(i), chunk.line_of(i), None, e.error, e.column))
                elif i in kept:
                    out.append(PreviewRow(chunk.record_of(i), chunk.line_of(i), _jsonable(next(good))))
            for r in chunk.rejects:
                out.append(PreviewRow(r.record, r.line, None, r.error, r.column))
            if len(out) >= rows:
                break
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()
    out.sort(key=lambda r: (r.record is None, r.record or 0))
    return out[:rows], warnings


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in row.items()}


def _transform_text(t) -> str:
    if t.args is None:
        return t.name
    return f"{t.name}({t.args!r}{', sep=' + repr(t.sep) if t.sep else ''})"


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if is_sensitive_name(k) and isinstance(v, str) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value
