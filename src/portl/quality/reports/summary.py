"""What every report format says the same way: the outcome in words, the run's duration, and the
checks counted by severity and status."""

from __future__ import annotations

from datetime import datetime

from portl.quality.results import ERROR, FAILED, PASSED, SEVERITIES, SKIPPED, QualityReport

OUTCOME_WORDS = {"passed": "Passed", "passed_with_warnings": "Passed with warnings", "failed_checks": "Failed checks"}
STATUSES = (PASSED, FAILED, ERROR, SKIPPED)


def outcome_words(status: str) -> str:
    """``failed_checks`` reads ``Failed checks``; an unknown status reads as it is."""
    return OUTCOME_WORDS.get(status, status.replace("_", " ").capitalize())


def duration_s(report: QualityReport) -> float | None:
    """Seconds from ``started_at`` to ``finished_at``; None when either is missing or not an ISO time."""
    try:
        started = datetime.fromisoformat(report.started_at)
        finished = datetime.fromisoformat(report.finished_at)
        return max((finished - started).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def duration_words(seconds: float | None) -> str:
    """``0.4 s``, ``12.5 s``, ``3 min 07 s``, ``2 h 05 min``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def by_severity(report: QualityReport) -> dict[str, dict[str, int]]:
    """severity -> status -> number of checks, every severity and status present (zeros included)."""
    table = {severity: dict.fromkeys(STATUSES, 0) for severity in SEVERITIES}
    for result in report.results:
        row = table.setdefault(result.severity, dict.fromkeys(STATUSES, 0))
        row[result.status] = row.get(result.status, 0) + 1
    return table
