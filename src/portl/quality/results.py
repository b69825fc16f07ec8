"""The result model every quality report is rendered from (JSON, JUnit, HTML).

One :class:`QualityReport` per run (or per ``portl check``): what was checked, each check's
:class:`CheckResult`, a profile of every column (:class:`ColumnProfile`), rows per date, rejects by
reason, throughput over time and the run's audit trail. It is plain data: it goes to JSON and back
without loss, so ``portl report RUN`` renders a stored report exactly as the run wrote it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

SEVERITIES = ("critical", "warning", "info")
#: A check's outcome. ``error``: it could not be computed (a destination query failed...).
PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
#: The report's outcome: ``failed_checks`` when a critical check failed (or could not run).
REPORT_PASSED, REPORT_WARNINGS, REPORT_FAILED = "passed", "passed_with_warnings", "failed_checks"


@dataclass
class CheckResult:
    """One check's outcome.

    ``observed`` and ``expected`` are short texts for a table cell (``"12 nulls"``, ``"0"``);
    ``failing_rows`` counts the rows a row-level check failed (rejected or, with ``action: warn``,
    only counted); ``details`` holds what is particular to the check type, for the reports:

    - ``date_completeness``: ``{"grain", "start", "end", "expected": n, "present": n,
      "missing": ["2024-03-05", ...], "skipped": {"weekends": n, "holidays": n, "excluded": n}}``
    - ``volume_anomaly``: ``{"points": [{"key", "observed", "expected", "low", "high", "anomalous",
      "z"}], "history_runs": n, "method": "..."}``
    - ``unique``: ``{"duplicate_keys": n, "duplicate_rows": n, "examples": [{"key": [...], "count": n,
      "records": [..]}]}``
    - ``sql``: ``{"query": "...", "columns": [...], "rows": [[...], ...]}`` (at most 20 rows)
    - row-level checks: ``{"action": "reject"|"warn", "examples": [{"record", "line", "value"}]}``
    """

    name: str
    check: str
    severity: str
    status: str
    message: str
    columns: list[str] = field(default_factory=list)
    observed: str = ""
    expected: str = ""
    failing_rows: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """A critical check that failed or could not run: the run fails its checks."""
        return self.severity == "critical" and self.status in (FAILED, ERROR)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class ColumnProfile:
    """What the pass saw of one column: rows, nulls, min and max (as text), a distinct estimate."""

    name: str
    type: str
    rows: int = 0
    nulls: int = 0
    min: str | None = None
    max: str | None = None
    distinct: int | None = None
    """An estimate (exact below a few thousand values); None when not gathered for the column."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class QualityReport:
    """Everything the reports show about one run's (or one check's) data.

    ``gate`` says in a sentence what the outcome meant for the load: nothing loaded (rolled back),
    what is already loaded, or that nothing was loaded because only checks ran. ``per_date`` maps a
    date column to ``{"2024-01-02": rows, ...}``; ``throughput`` is ``[[seconds since start, rows
    so far], ...]``; ``audit`` is the run's trail of events, ``[{"at": iso time, "event", "detail"}]``.
    """

    job: str
    run_id: str | None
    source: str
    destination: str | None
    started_at: str
    finished_at: str
    status: str
    gate: str
    rows: int
    results: list[CheckResult] = field(default_factory=list)
    columns: list[ColumnProfile] = field(default_factory=list)
    counts: dict[str, Any] | None = None
    per_date: dict[str, dict[str, int]] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    throughput: list[list[float]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    run_status: str | None = None
    """The run's own status in the ledger (``succeeded``, ``failed_checks``...); None for ``portl check``."""

    @property
    def exit_code(self) -> int:
        """0 unless a critical check failed or could not run (then 1)."""
        return 1 if any(r.blocking for r in self.results) else 0

    def summary(self) -> dict[str, int]:
        """How many checks passed, failed (by severity), errored and were skipped."""
        out = {"checks": len(self.results), "passed": 0, "failed": 0, "error": 0, "skipped": 0,
               "critical_failed": 0, "warning_failed": 0, "info_failed": 0}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
            if r.status in (FAILED, ERROR):
                out[f"{r.severity}_failed"] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityReport:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["results"] = [CheckResult.from_json(r) for r in data.get("results", [])]
        values["columns"] = [ColumnProfile.from_json(c) for c in data.get("columns", [])]
        return cls(**values)


def report_status(results: list[CheckResult]) -> str:
    """The report's outcome from its checks' results."""
    if any(r.blocking for r in results):
        return REPORT_FAILED
    if any(r.status in (FAILED, ERROR) for r in results):
        return REPORT_WARNINGS
    return REPORT_PASSED
