"""A run's ``quality:`` checks: what the engine asks of the gate, batch by batch and at the end.

``screen`` runs on each prepared batch, after the mapping: the batch goes into the statistics,
the row checks run, and rows failing a check with ``action: reject`` leave the batch as rejects
named after the check. ``judge`` runs once the rows are written — inside the job's transaction
with ``transaction: job``, so that a critical failure rolls the load back; after the last commit
otherwise — and ``keep`` stores the report in the ledger, writes the files the job asks for and
records this run's counts for later anomaly checks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import Chunk, Reject
from portl.errors import ChecksFailed, PortlError
from portl.plural import counted
from portl.quality.gate import QualityGate, Verdict
from portl.quality.results import QualityReport


class RunQuality:
    """The gate of one run."""

    def __init__(self, plan: Any, ledger: Any):
        job = plan.job.job
        self.plan = plan
        checks = list(job.quality)
        first = QualityGate(checks, plan.mapping.schema)
        used = first.used_columns()  # profiled: the columns the checks read, as portl check does
        first.close()
        self.gate = QualityGate(checks, plan.mapping.schema, source_names=list(plan.source_schema.names),
                                job=plan.name, job_path=plan.job.path, source=plan.source.description,
                                destination=plan.sink.description, ledger=ledger, sink=plan.sink,
                                per_file=hasattr(plan.source, "files"), observed=used)
        # The source column each of them is read from (a verbatim block: one column each).
        self.fields = {f.name: f for f in plan.mapping.schema}
        self.sources = {c.name: c.sources[0] for c in plan.mapping.columns if c.name in used and len(c.sources) == 1}
        self.reasons: dict[str, int] = {}
        self._lock = threading.Lock()

    def adopt_earlier(self, reject_path: str, rows: int) -> None:
        """A resumed run: the rows its row checks rejected before, from the reject file (which holds
        exactly the committed batches' rejects), so their failures count once."""
        if not rows:
            return
        from portl.quality.reports.ledger_report import rejects_by_reason

        reasons, _ = rejects_by_reason(reject_path) if os.path.exists(reject_path) else ({}, None)
        by_check: dict[str, int] = {}
        for check in self.gate.row_checks:
            by_check[check.name] = sum(n for reason, n in reasons.items() if reason.startswith(f"check {check.name}:"))
        self.gate.add_earlier(by_check, rows)
        with self._lock:
            for reason, n in reasons.items():
                self.reasons[reason] = self.reasons.get(reason, 0) + n

    def screen(self, chunk: Chunk, data: pa.RecordBatch, index: pa.Array, source_name: str,
               originals: Callable[[Chunk, list[int]], dict[int, str]], mapping_rejects: list[Reject]
               ) -> tuple[pa.RecordBatch, pa.Array, list[Reject]]:
        """Observe a mapped batch; return it without the rows a check rejects, and their rejects."""
        verdict = self.inspect(chunk, data, index)
        return self.apply(verdict, chunk, data, index, source_name, originals, mapping_rejects)

    def inspect(self, chunk: Chunk, data: pa.RecordBatch, index: pa.Array | None) -> Verdict:
        """Observe a mapped batch (``index``: each row's place in ``chunk``; None: the chunk's rows
        in order) and run the row checks; the verdict names the rows to reject by their place."""
        first = chunk.first_record
        if index is None:
            records = None if first is None else pa.array(np.arange(first, first + data.num_rows, dtype=np.int64))
        else:
            records = None if first is None else pc.add(index.cast(pa.int64()), first)
        verdict = self.gate.observe(data, records, _file_of(chunk))
        if verdict.reject and index is not None:
            verdict.reject = index.take(pa.array(verdict.reject, pa.int64())).to_pylist()
        return verdict

    def apply(self, verdict: Verdict, chunk: Chunk, data: pa.RecordBatch, index: pa.Array, source_name: str,
              originals: Callable[[Chunk, list[int]], dict[int, str]], mapping_rejects: list[Reject]
              ) -> tuple[pa.RecordBatch, pa.Array, list[Reject]]:
        """``data`` (each row at ``index`` in ``chunk``) without the rows ``verdict`` rejects, and
        their rejects; the reasons of every reject of the chunk are tallied for the report."""
        tally: dict[str, int] = {}
        for r in list(chunk.rejects) + mapping_rejects:
            key = f"{r.column}: {r.error}" if r.column else r.error
            key = key.split(" (")[0][:120]
            tally[key] = tally.get(key, 0) + 1
        rejects: list[Reject] = []
        if verdict.reject:
            places = pa.array(verdict.reject, pa.int64())
            present = pc.is_in(places, value_set=index.cast(pa.int64())).to_pylist()
            chosen = [k for k, there in enumerate(present) if there]  # not already rejected by the mapping
            positions = [verdict.reject[k] for k in chosen]
            texts = originals(chunk, positions)
            for k, at in zip(chosen, positions):
                rejects.append(Reject(source_name, verdict.reasons[k], chunk.line_of(at), chunk.record_of(at),
                                      verdict.columns[k], _text(verdict.values[k]), texts.get(at)))
                name = verdict.reasons[k].split(":")[0]
                tally[name] = tally.get(name, 0) + 1
            keep = pc.invert(pc.is_in(index.cast(pa.int64()), value_set=places))
            data, index = data.filter(keep), index.filter(keep)
        if tally:
            with self._lock:
                for key, n in tally.items():
                    self.reasons[key] = self.reasons.get(key, 0) + n
        return data, index, rejects

    def checked_batch(self, chunk: Chunk) -> pa.RecordBatch | None:
        """The columns the checks read, from what a verbatim block's check parsed (typed and
        canonical, as the mapping would give them), by destination name; None when the source
        parsed nothing or not all of them."""
        table = chunk.checked
        if table is None or any(source not in table.column_names for source in self.sources.values()):
            return None
        arrays = []
        for name, source in self.sources.items():
            column = table.column(source)
            want = self.fields[name].type
            arrays.append(column.combine_chunks() if column.type == want else pc.cast(column, want).combine_chunks())
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([self.fields[n] for n in self.sources]))

    def judge(self, *, counts: Any, tx: Any, rows_delta: int | None, run_id: str, resumed_rows: int,
              in_one_transaction: bool) -> QualityReport:
        """Every check's result. The report's gate sentence says what the outcome means for the rows."""
        report = self.gate.judge(counts=counts, tx=tx, rows_delta=rows_delta, run_id=run_id, resumed_rows=resumed_rows,
                                 rejects_by_reason=self.reasons)
        loaded = counts.inserted + counts.updated
        if report.exit_code:
            report.gate = ("nothing was loaded: critical checks failed, so the load's one transaction was rolled back"
                           if in_one_transaction else
                           f"{loaded:,} rows are already loaded (batches committed as they went); the run is marked "
                           "failed_checks")
        else:
            report.gate = (f"{loaded:,} rows loaded in one transaction, committed after the checks passed"
                           if in_one_transaction else f"{loaded:,} rows loaded")
        self.gate.note("gate", report.gate)
        report.audit = list(self.gate.audit)
        return report

    def keep(self, report: QualityReport, ledger: Any, run_id: str, loaded: bool) -> dict[str, str]:
        """Store the report (ledger and the job's ``reports:`` files); record history when the rows
        stay loaded. Returns the files written, by format."""
        if ledger is not None:
            ledger.save_report(run_id, report.to_json())
            if loaded:
                self.gate.record_history(run_id)
        paths = report_paths(self.plan.job, run_id)
        if paths:
            from portl.quality.reports import write_reports

            write_reports(report, paths)
        return paths

    def finish(self, report: QualityReport | None, status: str, ledger: Any, run_id: str, loaded: bool,
               warnings: list[str]) -> dict[str, Any] | None:
        """At the run's end: keep the report (a file that cannot be written is a warning of the
        run, the report staying in the ledger) and give the run report's summary of it; None when
        the run failed before its checks were judged."""
        try:
            if report is None:
                return None
            report.run_status = status
            try:
                paths = self.keep(report, ledger, run_id, loaded)
            except (OSError, PortlError) as exc:  # the run's outcome stands
                warnings.append(f"the quality report could not be written: {exc}; portl report {run_id} writes it again")
                paths = {}
            return summary(report, paths)
        finally:
            self.close()

    def close(self) -> None:
        self.gate.close()


def checks_failed(report: QualityReport, run_id: str, loaded: bool) -> ChecksFailed:
    """The error of a run whose critical checks failed, listing them and what became of the rows."""
    failed = [r for r in report.results if r.blocking]
    lines = "\n".join(f"  - {r.name}: {r.message}" for r in failed)
    what = ("the rows stay loaded (batches committed as they went): correct them in the destination, or fix the "
            "source and load it again" if loaded else "the load was rolled back: nothing was written")
    return ChecksFailed(f"{counted(len(failed), 'critical quality check')} failed; {what}. "
                        f"Report: portl report {run_id} --format html -o report.html\n{lines}", report, loaded)


def report_paths(loaded: Any, run_id: str) -> dict[str, str]:
    """The report files a job asks for, ``{job}`` and ``{run_id}`` filled in, relative to the job file."""
    reports = loaded.job.reports
    wanted = {"json": reports.json_, "junit": reports.junit, "html": reports.html}
    out = {}
    for fmt, path in wanted.items():
        if path:
            path = path.replace("{job}", loaded.name).replace("{run_id}", run_id)
            out[fmt] = path if os.path.isabs(path) else os.path.join(loaded.base_dir or ".", path)
    return out


def summary(report: QualityReport, paths: dict[str, str]) -> dict[str, Any]:
    """What the run report says of the checks."""
    return {"status": report.status, "summary": report.summary(), "gate": report.gate,
            "failed": [{"name": r.name, "severity": r.severity, "status": r.status, "message": r.message}
                       for r in report.results if r.status in ("failed", "error")],
            "reports": paths}


def _file_of(chunk: Chunk) -> str | None:
    return getattr(getattr(chunk, "_portl_source", None), "name", None)


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)
