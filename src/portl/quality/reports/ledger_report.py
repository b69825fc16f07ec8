"""The report of a run in the ledger: the one it kept, or one built from its ledger record.

A run with ``quality:`` checks keeps its report (:meth:`Ledger.save_report`). Any other run (no
checks, or from before checks existed) still gets a report from what the ledger knows: status,
counts, duration, error, and its rejects counted by reason from the reject file, when that file
still holds this run's rejects (the next run of the job replaces it).
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from typing import Any

from portl.plural import counted
from portl.quality.results import REPORT_PASSED, QualityReport
from portl.state.ledger import FAILED, FAILED_CHECKS, INTERRUPTED, REJECT_LIMIT, RUNNING, SUCCEEDED, Ledger, RunRecord

# A reason is the reject's error with the values in it blanked, so rows failing the same way count
# together: quoted values ('abc') and the key of a duplicate-key message (=(42)).
_QUOTED = re.compile(r"'[^']{0,200}'")
_KEY_VALUE = re.compile(r"=\([^)]{0,200}\)")
_REASON_CHARS = 300
UNREADABLE = "a line of the reject file that is not a reject"
# Blocks of 1 MiB keep Arrow's buffers near 35 MB whatever the file's size; larger blocks are no
# faster here (benchmarks/bench_report_rejects.py).
_BLOCK = 1 << 20


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
    ``column`` at fault), read in blocks: memory stays bounded whatever the file's size. Returns
    the counts and, when some lines could not be counted, why."""
    try:
        header = _header(path)
        if "error" not in header:
            return {}, f"the reject file {path} has no error column; its rejects are not counted by reason"
        try:
            pairs, ragged = _count_by_blocks(path, header)
        except _BlockTooSmall:
            pairs, ragged = _count_row_by_row(path, header)
    except FileNotFoundError:
        return {}, f"the reject file {path} is gone (moved or deleted); its rejects are not counted by reason"
    except OSError as exc:
        return {}, f"the reject file {path} cannot be read: {exc.strerror or exc}"
    except csv.Error as exc:
        return {}, f"the reject file {path} is not a CSV file Portl wrote: {exc}"
    reasons = _reasons(pairs)
    if not ragged:
        return reasons, None
    reasons[UNREADABLE] = len(ragged)
    lines = ", ".join(str(n) for n in ragged[:5] if n >= 0)
    return reasons, (f"the reject file {path} has {counted(len(ragged), 'line')} without its columns"
                     + (f" (line {lines}{', …' if len(ragged) > 5 else ''})" if lines else "")
                     + f"; they are counted as {UNREADABLE!r}")


class _BlockTooSmall(Exception):
    """Arrow could not read the file in blocks (a reject longer than a block, bytes that are not UTF-8)."""


def _count_by_blocks(path: str, header: list[str]) -> tuple[dict[tuple[str, str], int], list[int]]:
    """(error with values blanked, column) -> rejects, and the lines without the file's columns.
    Arrow parses each block and blanks its values; Python sees only each distinct pair."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    pairs: dict[tuple[str, str], int] = {}
    ragged: list[int] = []

    def skip_ragged(row) -> str:  # a line edited by hand, or cut short: noted, and the count goes on
        ragged.append(row.number if row.number is not None else -1)
        return "skip"

    wanted = ["error"] + (["column"] if "column" in header else [])
    try:
        reader = pcsv.open_csv(
            path, read_options=pcsv.ReadOptions(block_size=_BLOCK, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip_ragged),
            convert_options=pcsv.ConvertOptions(include_columns=wanted, column_types=dict.fromkeys(wanted, pa.string()),
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
        for batch in reader:
            errors = pc.utf8_trim_whitespace(batch.column("error"))
            errors = pc.replace_substring_regex(errors, _QUOTED.pattern, "'…'")
            errors = pc.replace_substring_regex(errors, _KEY_VALUE.pattern, "=(…)")
            columns = batch.column("column") if "column" in wanted else pa.array([""] * len(errors), pa.string())
            found = pa.table({"error": errors, "column": columns}).group_by(["error", "column"]).aggregate(
                [([], "count_all")])
            for row in found.to_pylist():
                key = (row["error"], row["column"])
                pairs[key] = pairs.get(key, 0) + row["count_all"]
    except pa.ArrowInvalid as exc:
        raise _BlockTooSmall(str(exc)) from exc
    return pairs, ragged


def _count_row_by_row(path: str, header: list[str]) -> tuple[dict[tuple[str, str], int], list[int]]:
    """The same count with the csv module, a row at a time: slower, but any row length and any
    bytes (undecodable ones replaced) are read."""
    pairs: dict[tuple[str, str], int] = {}
    ragged: list[int] = []
    error = header.index("error")
    column = header.index("column") if "column" in header else None
    # One reject's original row can be long (a whole JSON document): past the csv module's
    # default of 128 KiB per field it would stop there.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != len(header):
                ragged.append(reader.line_num)
                continue
            # Blanked here, not once per distinct error: every value makes its own error text.
            key = (_KEY_VALUE.sub("=(…)", _QUOTED.sub("'…'", row[error].strip())), row[column] if column is not None else "")
            pairs[key] = pairs.get(key, 0) + 1
    return pairs, ragged


def _header(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle), [])


def _reasons(pairs: dict[tuple[str, str], int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (error, column), n in pairs.items():
        reason = reason_of(error, column)
        counts[reason] = counts.get(reason, 0) + n
    return counts


def reason_of(error: str, column: str = "") -> str:
    """A reject's reason: its error with quoted values blanked, so rows failing alike count together,
    after the column at fault when the error does not name it (``qty: required value is missing``)."""
    reason = _KEY_VALUE.sub("=(…)", _QUOTED.sub("'…'", error.strip())) or "no reason given"
    if column and not re.search(rf"(?<!\w){re.escape(column)}(?!\w)", reason):
        reason = f"{column}: {reason}"
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"
