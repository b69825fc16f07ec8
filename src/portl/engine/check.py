"""``portl check``: a job's quality checks run on its source alone, nothing loaded.

The source is read once, by partitions in parallel (a glob's files, a large file's byte ranges),
each batch mapped as the load would map it (without a destination: types come from the mapping
and the source), then handed to the same :class:`~portl.quality.gate.QualityGate` a load uses.
Rows the mapping cannot convert are counted as the load would reject them. Checks that read the
destination (``sql``, ``referential``, ``unique`` in the destination) are reported as skipped.
Memory is batch size × workers, whatever the size of the input.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors import registry
from portl.engine.events import Events
from portl.engine.executor import LocalExecutor
from portl.engine.mapping import apply_mapping, resolve_mapping
from portl.errors import ConfigError
from portl.quality.gate import QualityGate
from portl.quality.results import QualityReport
from portl.state import ledger as L

MAPPING_REJECT = "the value could not be converted to the mapped type"


@dataclass
class CheckOptions:
    workers: int | None = None
    """Partitions read at once (default: the job's parallel.workers, at least 2)."""
    batch_rows: int | None = None
    events: Events | None = None
    stop: threading.Event | None = None
    state_dir: str | None = None
    """Where the ledger is (for anomaly history and for keeping the report); None: beside the job."""
    keep: bool = True
    """Keep the report in the ledger (``portl report``) and this pass's counts as anomaly history."""


def check_job(loaded: Any, options: CheckOptions | None = None) -> QualityReport:
    """Run the ``quality:`` checks of a loaded job on its source."""
    options = options or CheckOptions()
    job = loaded.job
    if not job.quality:
        raise ConfigError(f"job {loaded.name!r} has no quality: checks to run; add a quality: list (see docs/quality.md), "
                          "or give checks with --checks FILE")
    return check_source(job.source, job.mapping, list(job.quality), loaded.base_dir, name=loaded.name,
                        path=loaded.path, batch_rows=options.batch_rows or job.batch.size,
                        workers=options.workers or max(2, job.parallel.workers), options=options)


def check_source(source_config: Any, mapping_spec: Any, checks: list[Any], base_dir: str, *, name: str, path: str,
                 batch_rows: int, workers: int, options: CheckOptions) -> QualityReport:
    """Run ``checks`` on the source ``source_config`` (mapped by ``mapping_spec``)."""
    events = options.events or Events()
    stop = options.stop or threading.Event()
    source = registry.open_source(source_config, base_dir)
    ledger = None
    try:
        schema = source.schema()
        mapping = resolve_mapping(mapping_spec, schema, None)
        if options.keep:
            ledger = L.Ledger(L.state_dir_for(base_dir, options.state_dir))
        gate = QualityGate(checks, mapping.schema, source_names=list(schema.names), job=name, job_path=path,
                           source=source.description, destination=None, ledger=ledger,
                           per_file=hasattr(source, "files"), loading=False)
        problems = gate.problems()
        if problems:
            raise ConfigError("the checks cannot run, nothing was read:\n" + "\n".join(f"  - {p}" for p in problems))
        # Only the columns the checks read are converted and profiled: a column no check reads
        # costs nothing (a schema check judges every column's type from the mapping, not the rows).
        used = gate.used_columns()
        gate.close()
        gate = QualityGate(checks, mapping.schema, source_names=list(schema.names), job=name, job_path=path,
                           source=source.description, destination=None, ledger=ledger,
                           per_file=hasattr(source, "files"), loading=False, observed=used)
        mapping = _only(mapping, used)
        estimate = source.estimate()
        events.emit("check_started", checks=len(checks), bytes=estimate.bytes, rows=estimate.rows)
        tally = _Tally()
        starts = source.partitions(workers)

        def read_partition(start: Any, abort: threading.Event) -> None:
            for chunk in source.read(batch_rows, start):
                if abort.is_set() or stop.is_set():
                    return
                _observe(gate, mapping, chunk, tally)
                events.emit("batch_checked", rows=chunk.rows_read, bytes=chunk.size_bytes,
                            partition=chunk.checkpoint.partition)

        LocalExecutor(workers).map(read_partition, starts, threading.Event())
        if stop.is_set():
            from portl.errors import Interrupted

            raise Interrupted("stopped by the user; no report was written")
        gate.note("read", f"{tally.read:,} rows read, {tally.unconvertible:,} could not be converted by the mapping")
        run_id = L.new_run_id()
        report = gate.judge(run_id=run_id, gate="checks only: nothing was loaded",
                            rejects_by_reason=dict(tally.reasons))
        report.counts = {"read": tally.read, "rejected": tally.unconvertible}
        if ledger is not None:
            ledger.start_run(name, path, "check", {"kind": "check"}, run_id=run_id)
            status = L.FAILED_CHECKS if report.exit_code else L.SUCCEEDED
            ledger.finish_run(run_id, status, {"read": tally.read, "rejected": tally.unconvertible})
            report.run_status = status
            ledger.save_report(run_id, report.to_json())
            gate.record_history(run_id)
        events.emit("check_finished", status=report.status, rows=report.rows)
        return report
    finally:
        source.close()
        if ledger is not None:
            ledger.close()


def _only(mapping: Any, columns: set[str]) -> Any:
    """The mapping plan restricted to ``columns`` (in its own order)."""
    kept = tuple(c for c in mapping.columns if c.name in columns)
    return dataclasses.replace(mapping, columns=kept, schema=pa.schema([c.field for c in kept]))


class _Tally:
    def __init__(self) -> None:
        self.read = 0
        self.unconvertible = 0
        self.reasons: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, read: int, unconvertible: dict[str, int], failing: dict[str, int]) -> None:
        with self._lock:
            self.read += read
            for reason, n in list(unconvertible.items()) + list(failing.items()):
                self.reasons[reason] = self.reasons.get(reason, 0) + n
            self.unconvertible += sum(unconvertible.values())


def _observe(gate: QualityGate, mapping: Any, chunk: Any, tally: _Tally) -> None:
    mapped = apply_mapping(mapping, chunk.data)
    reasons: dict[str, int] = {}
    for r in chunk.rejects:
        reasons[_reason(r.error)] = reasons.get(_reason(r.error), 0) + 1
    for e in mapped.rejects:
        key = f"{e.column}: {MAPPING_REJECT}"
        reasons[key] = reasons.get(key, 0) + 1
    verdict = gate.observe(mapped.data, _records(chunk, mapped.source_index), _file_of(chunk))
    failing: dict[str, int] = {}
    for reason in verdict.reasons:  # "check NAME: column ...": counted by check
        key = reason.split(":")[0]
        failing[key] = failing.get(key, 0) + 1
    tally.add(chunk.rows_read, reasons, failing)


def _reason(error: str) -> str:
    return error.split(":")[0][:80]


def _records(chunk: Any, index: pa.Array) -> pa.Array | None:
    if chunk.first_record is None:
        return None
    return pc.add(index.cast(pa.int64()), chunk.first_record)


def _file_of(chunk: Any) -> str | None:
    source = getattr(chunk, "_portl_source", None)
    return getattr(source, "name", None)

