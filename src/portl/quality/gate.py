"""The checks of one pass over the data: fed each mapped batch, judged at the end.

:class:`QualityGate` is what the engine (and ``portl check``) holds: ``problems()`` before anything
is read (a check that cannot run is a validation problem, not a surprise at the end);
``observe(batch)`` for every batch — the profile is updated, the uniqueness index fed, the row
checks run, and the rows to reject are returned; ``judge()`` at the end gives the
:class:`~portl.quality.results.QualityReport`.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.plural import counted
from portl.quality import aggregate
from portl.quality.calendar import check_calendar
from portl.quality.filters import FilterError, compile_filter, keep
from portl.quality.profile import Profile
from portl.quality.results import ERROR, FAILED, PASSED, SKIPPED, CheckResult, QualityReport, report_status
from portl.quality.rowchecks import RowCheck
from portl.quality.uniqueness import KeyIndex
from portl.spec.quality import ROW_CHECKS

_WORDS = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_.]*)')
#: Checks that read the destination with SQL, after the load.
DESTINATION_CHECKS = ("sql", "referential")


@dataclass
class RowTally:
    checked: int = 0
    failing: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    unseen: int = 0
    """Rows an earlier process of a resumed run checked whose failures this pass cannot count
    (``action: warn`` keeps no record of them)."""


@dataclass
class Verdict:
    """What a batch's row checks decided: rows to reject (indexes into the batch) with their reasons."""

    reject: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


class QualityGate:
    """The ``quality:`` checks of a job, for one pass over its input."""

    def __init__(self, checks: list[Any], schema: pa.Schema, *, source_names: list[str] | None = None,
                 job: str = "", job_path: str = "", source: str = "", destination: str | None = None,
                 ledger: Any = None, sink: Any = None, per_file: bool = False, temp_dir: str | None = None,
                 loading: bool = True, observed: set[str] | None = None):
        self.checks = list(checks)
        self.loading = loading
        self.schema = schema
        self.source_names = list(source_names or schema.names)
        self.job, self.job_path, self.source, self.destination = job, job_path, source, destination
        self.ledger, self.sink = ledger, sink
        self.temp_dir = temp_dir
        self.problems_found = self._problems()
        usable = not self.problems_found
        self.row_checks = [RowCheck(c, schema) for c in self.checks if c.check in ROW_CHECKS] if usable else []
        self.row_tallies = {c.name: RowTally() for c in self.row_checks}
        self.where = {c.title: compile_filter(c.where, schema) for c in self.checks
                      if c.where and c.check not in ROW_CHECKS} if usable else {}
        # Distinct estimates hash every value: gathered for the columns whose values a check is
        # about (unique, accepted_values), not for every column a check names.
        distinct = {col for c in self.checks for col in c.columns if col in schema.names
                    and c.check in ("unique", "accepted_values")}
        ordered = {col for c in self.checks for col in c.columns if col in schema.names}
        dates = {c.columns[0] for c in self.checks if c.check in ("date_completeness", "freshness")
                 or (c.check == "volume_anomaly" and c.per == "date")}
        blanks = {col for c in self.checks if c.check == "missing" and c.empty_is_null for col in c.columns}
        self.filtered = {c.title for c in self.checks if c.where and c.check not in ROW_CHECKS}
        # The columns batches bring: every mapped column in a load; the ones the checks read in
        # portl check, which maps only those (``observed``).
        seen = schema if observed is None else pa.schema([f for f in schema if f.name in observed])
        self.profile = Profile(seen, distinct=distinct, dates=dates & set(schema.names), text_bounds=ordered,
                               blanks=blanks & set(schema.names),
                               per_file=per_file or any(c.check == "volume_anomaly" and c.per == "file" for c in self.checks))
        # A check with its own where: its own profile of the rows the filter keeps.
        self.filtered_profiles = {c.title: Profile(seen, dates={c.columns[0]} if c.check in ("date_completeness",
                                  "freshness", "volume_anomaly") and c.columns else set(),
                                  blanks=set(c.columns) if c.check == "missing" and c.empty_is_null else set())
                                  for c in self.checks if c.title in self.filtered}
        self.keys = {c.title: KeyIndex(c.columns, temp_dir=temp_dir) for c in self.checks
                     if c.check == "unique" and c.method == "spill"} if usable else {}
        self.started = time.monotonic()
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.throughput: list[list[float]] = []
        self._last_sample = 0.0
        self._lock = threading.Lock()
        self.audit: list[dict[str, Any]] = []
        self.note("checks", f"{len(self.checks)} quality checks: " + ", ".join(c.title for c in self.checks))

    # --- before anything is read ------------------------------------------------------------

    def problems(self) -> list[str]:
        """Checks that cannot run, each a sentence naming the check; empty when all can."""
        return [f"quality[{index}] ({self.checks[index].title}): {message}" for index, message in self.problems_found]

    def used_columns(self) -> set[str]:
        """The columns the checks read: their ``columns`` and those their filters name."""
        names = set(self.schema.names)
        used = {col for c in self.checks for col in c.columns if col in names}
        for check in self.checks:
            if check.where:
                words = {quoted.replace('""', '"') or plain for quoted, plain in _WORDS.findall(check.where)}
                used |= words & names
        return used

    def located_problems(self) -> list[tuple[int, str]]:
        """The same, as (index in the quality: list, message), to be placed at the check's line."""
        return list(self.problems_found)

    def _problems(self) -> list[tuple[int, str]]:
        out = []
        names = list(self.schema.names)
        for index, check in enumerate(self.checks):
            where = index
            unknown = [c for c in check.columns if c not in names]
            if unknown and check.check != "schema":
                out.append((where, f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                   f"the columns are: {', '.join(names)}"))
                continue
            if check.where:
                try:
                    compile_filter(check.where, self.schema)
                except FilterError as exc:
                    out.append((where, f"where: {exc}"))
                    continue
            if check.check in ROW_CHECKS:
                try:
                    RowCheck(check, self.schema)
                except (ValueError, pa.ArrowInvalid) as exc:
                    out.append((where, str(exc)))
            elif check.check == "date_completeness" and check.holidays is not None:
                try:
                    check_calendar(check.holidays.country, check.holidays.subdivision)
                except Exception as exc:  # a ConfigError naming the calendar
                    out.append((where, str(exc)))
            elif check.check in ("freshness", "date_completeness", "volume_anomaly") and check.columns:
                kind = self.schema.field(check.columns[0]).type
                if not (pa.types.is_temporal(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                    out.append((where, f"{check.columns[0]} is {kind}, not a date, time stamp or ISO date text"))
            if (check.check in DESTINATION_CHECKS or (check.check == "unique" and check.method == "destination")) \
                    and self.sink is not None and not hasattr(self.sink, "query"):
                out.append((where, f"{check.check} runs SQL in the destination, and "
                                   f"{getattr(self.sink, 'description', 'this destination')} does not answer SQL"))
        return out

    def sql_problems(self) -> list[tuple[int, str]]:
        """The ``sql`` checks the destination refuses to plan (``EXPLAIN``): a typo, an unknown
        column or function. Asked before the load, when the table exists already."""
        out = []
        if self.sink is None or not hasattr(self.sink, "query"):
            return out
        for index, check in enumerate(self.checks):
            if check.check != "sql":
                continue
            statement = check.query.replace("{table}", self.sink.loaded_table())
            try:
                self.sink.query("EXPLAIN " + statement, limit=1)
            except Exception as exc:  # the destination's own words about the query
                out.append((index, f"the destination cannot run the query: {exc}"))
        return out

    def note(self, event: str, detail: str) -> None:
        """Add a line to the audit trail the reports end with."""
        self.audit.append({"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                           "event": event, "detail": detail})

    # --- during the pass --------------------------------------------------------------------

    def observe(self, batch: pa.RecordBatch, records: pa.Array | None = None, file: str | None = None,
                lines: list[int | None] | None = None) -> Verdict:
        """Take one mapped batch into the statistics and run the row checks on it. ``records``
        numbers its rows in the source (for the reports' examples and the uniqueness check)."""
        verdict = Verdict()
        n = batch.num_rows
        if not n:
            return verdict
        self.profile.observe(batch, file)
        for title, profile in self.filtered_profiles.items():
            profile.observe(batch.filter(keep(self.where[title](batch))), file)
        if records is None:
            records = pa.array(range(n), pa.int64())
        for title, index in self.keys.items():
            where = self.where.get(title)
            if where is not None:
                mask = keep(where(batch))
                index.add(batch.filter(mask), records.filter(mask))
            else:
                index.add(batch, records)
        rejected: dict[int, tuple[str, str, Any]] = {}
        for check in self.row_checks:
            mask = check.failing(batch)
            failing = pc.sum(mask).as_py() or 0
            checked = n if check.where is None else (pc.sum(keep(check.where(batch))).as_py() or 0)
            tally = self.row_tallies[check.name]
            details = check.describe(batch, mask) if failing else None
            with self._lock:
                tally.checked += checked
                tally.failing += failing
                if details is not None and len(tally.examples) < 5:
                    for k, i in enumerate(details.indexes[: 5 - len(tally.examples)]):
                        tally.examples.append({"record": records[i].as_py(), "column": details.columns[k],
                                               "value": _plain(details.values[k]), "reason": details.reasons[k]})
            if details is not None and check.action == "reject":
                for k, i in enumerate(details.indexes):
                    rejected.setdefault(i, (details.reasons[k], details.columns[k], details.values[k]))
        for i in sorted(rejected):
            reason, column, value = rejected[i]
            verdict.reject.append(i)
            verdict.reasons.append(reason)
            verdict.columns.append(column)
            verdict.values.append(value)
        self._sample()
        return verdict

    def _sample(self) -> None:
        now = time.monotonic() - self.started
        with self._lock:
            if now - self._last_sample >= 0.5 or not self.throughput:
                self._last_sample = now
                self.throughput.append([round(now, 2), self.profile.rows])

    def add_earlier(self, rejected: dict[str, int], rows: int) -> None:
        """A resumed run: the rows an earlier process read (``rows``) and, by check name, the rows
        its row checks rejected (counted from the committed part of the reject file)."""
        for check in self.row_checks:
            tally = self.row_tallies[check.name]
            tally.checked += rows
            if check.action == "reject":
                tally.failing += rejected.get(check.name, 0)
            else:
                tally.unseen += rows
        if rows:
            self.note("resumed", f"{rows:,} rows were read by an earlier process; its rejects by check: "
                      + (", ".join(f"{k} {v:,}" for k, v in rejected.items()) or "none"))

    # --- at the end -------------------------------------------------------------------------

    def judge(self, *, counts: Any = None, tx: Any = None, rows_delta: int | None = None, run_id: str | None = None,
              resumed_rows: int = 0, gate: str = "", rejects_by_reason: dict[str, int] | None = None,
              run_status: str | None = None) -> QualityReport:
        """Every check's result, and the report. ``tx``: the job's open transaction (SQL checks
        see the rows it loaded); ``resumed_rows``: rows an earlier process loaded, whose
        statistics this pass did not see."""
        with self._lock:
            self.throughput.append([round(time.monotonic() - self.started, 2), self.profile.rows])
        results = [self._judge_one(check, counts, tx, rows_delta, resumed_rows) for check in self.checks]
        for r in results:
            self.note("check", f"{r.name}: {r.status} ({r.severity}) — {r.message}")
        per_date = {name: {d.isoformat(): n for d, n in self.profile.dates_of(name).items()}
                    for name, stats in self.profile.columns.items() if stats.per_date is not None}
        if self.profile.per_file:
            per_date["file"] = dict(sorted(self.profile.per_file.items()))
        report = QualityReport(
            job=self.job, run_id=run_id, source=self.source, destination=self.destination,
            started_at=self.started_at.isoformat(timespec="milliseconds"),
            finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            status=report_status(results), gate=gate, rows=self.profile.rows, results=results,
            columns=self.profile.column_profiles(), counts=counts.to_json() if counts is not None else None,
            per_date=per_date, rejects_by_reason=dict(rejects_by_reason or {}), throughput=list(self.throughput),
            audit=list(self.audit), run_status=run_status)
        return report

    def record_history(self, run_id: str) -> None:
        """Keep this pass's counts for the anomaly checks of later runs."""
        if self.ledger is None:
            return
        for check in self.checks:
            if check.check == "volume_anomaly":
                series, counts = self._series(check)
                self.ledger.record_history(self.job, self.job_path, series, counts, run_id)

    def _series(self, check: Any) -> tuple[str, dict[str, int]]:
        profile = self.filtered_profiles.get(check.title, self.profile)
        if check.per == "file":
            return f"{check.title}:rows_per_file", dict(profile.per_file or self.profile.per_file or {})
        column = check.columns[0]
        return f"{check.title}:rows_per_date:{column}", {d.isoformat(): n for d, n in profile.dates_of(column).items()}

    def _judge_one(self, check: Any, counts: Any, tx: Any, rows_delta: int | None, resumed_rows: int) -> CheckResult:
        try:
            return self._judge(check, counts, tx, rows_delta, resumed_rows)
        except Exception as exc:  # a check that fails to compute is reported, not a crash of the report
            return aggregate.result(check, ERROR, f"the check could not be computed: {exc}")

    def _judge(self, check: Any, counts: Any, tx: Any, rows_delta: int | None, resumed_rows: int) -> CheckResult:
        kind = check.check
        profile = self.filtered_profiles.get(check.title, self.profile)
        if kind in ROW_CHECKS:
            return self._row_result(check)
        if kind == "schema":
            return aggregate.schema(check, self.schema, self.source_names)
        if kind in DESTINATION_CHECKS or (kind == "unique" and check.method == "destination"):
            if self.sink is None:
                return aggregate.result(check, SKIPPED, f"{kind} reads the destination: it runs with the load, not "
                                        "on the source alone")
            if kind == "sql":
                return aggregate.sql(check, self.sink, tx)
            if kind == "referential":
                return aggregate.referential(check, self.sink, tx)
            return aggregate.unique_in_destination(check, self.sink, tx)
        if resumed_rows:
            return aggregate.result(check, SKIPPED, f"the run was resumed: {resumed_rows:,} rows were read by an earlier "
                                    "process whose statistics were not kept, so this check over the whole input "
                                    "cannot be judged. Run portl check on the source for it")
        if kind == "missing":
            return aggregate.missing(check, profile)
        if kind == "unique":
            return aggregate.unique(check, self.keys[check.title].duplicates())
        if kind == "row_count":
            return aggregate.row_count(check, profile.rows, counts, rows_delta)
        if kind == "freshness":
            return aggregate.freshness(check, profile)
        if kind == "date_completeness":
            return aggregate.date_completeness(check, profile)
        if kind == "volume_anomaly":
            series, current = self._series(check)
            history = self.ledger.history(self.job, self.job_path, series) if self.ledger is not None else {}
            return aggregate.volume_anomaly(check, current, history, "date" if check.per == "date" else "file")
        raise ValueError(f"unknown check {kind}")

    def _row_result(self, check: Any) -> CheckResult:
        tally = self.row_tallies[check.title]
        allowed = check.max_failures if check.max_failures is not None else 0
        percent = 100.0 * tally.failing / tally.checked if tally.checked else 0.0
        over = tally.failing > allowed if check.max_failures_percent is None else (
            percent > check.max_failures_percent and (check.max_failures is None or tally.failing > check.max_failures))
        if not self.loading:
            handled = "a load would reject them" if check.action == "reject" else "a load would keep them"
        else:
            handled = "rejected" if check.action == "reject" else "loaded and counted"
        details = {"action": check.action, "checked": tally.checked, "examples": tally.examples}
        observed = f"{tally.failing:,} of {tally.checked:,} rows ({percent:.2f}%)"
        expected = (f"at most {check.max_failures_percent}%" if check.max_failures_percent is not None
                    else f"at most {allowed:,}")
        if tally.unseen:
            details["unseen_rows"] = tally.unseen
            handled += f"; {tally.unseen:,} rows read before the run was resumed are not counted (action warn keeps no record)"
        if tally.failing and over:
            first = tally.examples[0]["reason"] if tally.examples else ""
            return CheckResult(check.title, check.check, check.severity, FAILED,
                               f"{counted(tally.failing, 'row')} failed ({handled}); first: {first}", list(check.columns),
                               observed, expected, tally.failing, details)
        message = ("every row passed" if not tally.failing
                   else f"{counted(tally.failing, 'row')} failed ({handled}), within the tolerance")
        return CheckResult(check.title, check.check, check.severity, PASSED, message, list(check.columns), observed,
                           expected, tally.failing, details)

    def close(self) -> None:
        for index in self.keys.values():
            index.close()


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def describe_check(check: Any) -> str:
    """One line for the plan: the check, its severity, what it does with failing rows, where it runs."""
    kind = check.check
    if kind in ROW_CHECKS:
        how = "rejects failing rows" if check.action == "reject" else "counts failing rows"
        where = "on each batch"
    elif kind in DESTINATION_CHECKS or (kind == "unique" and check.method == "destination"):
        how, where = "SQL in the destination", "after the load (before the commit with transaction: job)"
    elif kind == "schema":
        how, where = "columns and types", "before any row is read"
    else:
        how, where = "statistics of the load's own pass", "judged at the end"
    scope = f" where {check.where}" if check.where else ""
    return f"{check.title} [{check.severity}]: {how}{scope}, {where}"
