"""The report of a run in the ledger: the one it kept, or one built from its ledger record.

A run with ``quality:`` checks keeps its report (:meth:`Ledger.save_report`). Any other run (no
checks, or from before checks existed) still gets a report from what the ledger knows: status,
counts, duration, error, and its rejects counted by reason from the reject file, when that file
still holds this run's rejects (the next run of the job replaces it).
"""

from __future__ import annotations

import csv
import re
import sys
from datetime import datetime, timezone
from typing import Any

from portl.quality.results import REPORT_PASSED, QualityReport
from portl.state.ledger import FAILED, FAILED_CHECKS, INTERRUPTED, REJECT_LIMIT, RUNNING, SUCCEEDED, Ledger, RunRecord

# A reason is the reject's error with the values in it blanked, so rows failing the same way count
# together: quoted values ('abc') and the key of a duplicate-key message (=(42)).
_QUOTED = re.compile(r"'[^']{0,200}'")
_KEY_VALUE = re.compile(r"=\([^)]{0,200}\)")
_REASON_CHARS = 300


def report_for_run(ledger: Ledger, record: RunRecord) -> QualityReport:
    """The report ``record``'s run kept, or one built from its ledger record (no checks)."""
    kept = ledger.report(record.id)
    if kept is not None:
        return QualityReport.from_json(kept)
    return report_from_record(record, current=_is_latest(ledger, record))


def _is_latest(ledger: Ledger, record: RunRecord) -> bool:
    latest = ledger.latest(record.job, record.job_path)
    return latest is None or latest.id == record.id


def report_from_record(record: RunRecord, current: bool = True) -> QualityReport:
    """A report of a run without checks. ``current``: the run is its job's latest, so the reject
    file (replaced by each new run) still holds its rejects."""
    counts = dict(record.counts or {})
    audit: list[dict[str, Any]] = [{"at": _iso(record.started_at), "event": "run_started",
                                    "detail": f"job {record.job} ({record.job_path})"}]
    rejects: dict[str, int] = {}
    path = (record.meta or {}).get("rejects_file")
    rejected = counts.get("rejected") or 0
    if rejected and path:
        if not current:
            audit.append({"at": _iso(record.ended_at or record.started_at), "event": "rejects_not_counted",
                          "detail": f"the reject file {path} now holds the rejects of a later run of the job"})
        else:
            rejects, note = rejects_by_reason(path)
            if note:
                audit.append({"at": _iso(record.ended_at or record.started_at), "event": "rejects_not_counted",
                              "detail": note})
    if record.ended_at is not None:
        detail = record.status + (f": {record.error}" if record.error else "")
        audit.append({"at": _iso(record.ended_at), "event": "run_finished", "detail": detail})
    return QualityReport(
        job=record.job, run_id=record.id, source=(record.meta or {}).get("source") or record.job_path,
        destination=(record.meta or {}).get("destination"), started_at=_iso(record.started_at),
        finished_at=_iso(record.ended_at) if record.ended_at is not None else "", status=REPORT_PASSED,
        gate=_gate(record, counts), rows=int(counts.get("read") or 0), counts=counts or None,
        rejects_by_reason=rejects, audit=audit, run_status=record.status)


def _iso(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat() if seconds is not None else ""


def _gate(record: RunRecord, counts: dict[str, Any]) -> str:
    loaded = int(counts.get("inserted") or 0) + int(counts.get("updated") or 0)
    rows = f"{loaded:,} row{'' if loaded == 1 else 's'} loaded"
    words = {
        SUCCEEDED: f"it succeeded: {rows}.",
        FAILED: f"it failed ({record.error or 'no error recorded'}); {rows} in batches committed before the failure.",
        INTERRUPTED: f"it was interrupted after {rows}; continue it with `portl run {record.job_path} --resume`.",
        REJECT_LIMIT: f"it stopped at validation.max_rejects, with {rows}.",
        FAILED_CHECKS: f"it failed its quality checks but kept no report; {rows}.",
        RUNNING: f"it is still running; {rows} so far.",
    }
    return "No quality checks ran for this run; " + words.get(record.status, f"its status is {record.status}; {rows}.")


def rejects_by_reason(path: str) -> tuple[dict[str, int], str | None]:
    """Rejected rows of a reject file by reason (its ``error`` column, values blanked, after the
    ``column`` at fault), read a row at a time. Returns the counts and, when the file cannot be read to its end, why."""
    counts: dict[str, int] = {}
    # One reject's original row can be long (a whole JSON document); the csv module's default
    # limit of 128 KiB per field would stop the count there.
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or "error" not in header:
                return counts, f"the reject file {path} has no error column; its rejects are not counted by reason"
            error = header.index("error")
            column = header.index("column") if "column" in header else None
            try:
                for row in reader:
                    reason = reason_of(row[error] if error < len(row) else "",
                                       row[column] if column is not None and column < len(row) else "")
                    counts[reason] = counts.get(reason, 0) + 1
            except csv.Error as exc:
                return counts, f"the reject file {path} cannot be read past line {reader.line_num}: {exc}"
    except FileNotFoundError:
        return counts, f"the reject file {path} is gone (moved or deleted); its rejects are not counted by reason"
    except OSError as exc:
        return counts, f"the reject file {path} cannot be read: {exc.strerror or exc}"
    return counts, None


def reason_of(error: str, column: str = "") -> str:
    """A reject's reason: its error with quoted values blanked, so rows failing alike count together,
    after the column at fault when the error does not name it (``qty: required value is missing``)."""
    reason = _KEY_VALUE.sub("=(…)", _QUOTED.sub("'…'", error.strip())) or "no reason given"
    if column and not re.search(rf"(?<!\w){re.escape(column)}(?!\w)", reason):
        reason = f"{column}: {reason}"
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"
