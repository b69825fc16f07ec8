"""A realistic quality report built by hand, covering every kind of check detail, for the tests of
the report renderers (and the screenshot in the docs)."""

from __future__ import annotations

import datetime as dt

from portl.quality.results import CheckResult, ColumnProfile, QualityReport

XSS_NAME = "orders <script>alert('x')</script> & co"


def _days(start: dt.date, count: int) -> list[str]:
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(count)]


def sample_report() -> QualityReport:
    """A run of an ``orders`` load whose checks failed: two missing dates, a volume spike, duplicate
    keys, an SQL check returning rows, row-level rejects, an info check, an error and a skip."""
    days = _days(dt.date(2024, 3, 1), 21)
    missing = ["2024-03-05", "2024-03-12"]
    per_day = {d: 1000 + (i * 37) % 120 for i, d in enumerate(days) if d not in missing}
    per_day["2024-03-18"] = 2450  # the spike the anomaly check finds
    points = []
    for d, rows in sorted(per_day.items()):
        expected = 1060.0
        points.append({"key": d, "observed": rows, "expected": expected, "low": 900.0, "high": 1220.0,
                       "anomalous": rows > 1220, "z": round((rows - expected) / 53.0, 2)})
    results = [
        CheckResult("order dates complete", "date_completeness", "critical", "failed",
                    "2 of 21 business days have no rows", ["order_date"], "19 of 21 dates", "21 of 21", 0,
                    {"grain": "day", "start": days[0], "end": days[-1], "expected": 21, "present": 19,
                     "missing": missing, "skipped": {"weekends": 0, "holidays": 0, "excluded": 0}}),
        CheckResult("daily volume", "volume_anomaly", "warning", "failed", "1 date outside the expected range",
                    ["order_date"], "2,450 rows on 2024-03-18", "900–1,220", 0,
                    {"points": points, "history_runs": 14, "method": "median ± 3 MAD over 14 earlier runs"}),
        CheckResult("order id unique", "unique", "critical", "failed", "3 keys appear more than once", ["order_id"],
                    "3 duplicate keys", "0", 7,
                    {"duplicate_keys": 3, "duplicate_rows": 7,
                     "examples": [{"key": [10452], "count": 3, "records": [88, 91, 120]},
                                  {"key": [10467], "count": 2, "records": [140, 141]}]}),
        CheckResult("refunds match", "sql", "warning", "failed", "the query returned 2 rows", [], "2 rows", "0 rows", 0,
                    {"query": "SELECT order_id, amount FROM orders WHERE amount < 0 AND refund_id IS NULL",
                     "columns": ["order_id", "amount"], "rows": [[10501, -12.5], [10533, -3.0]], "total": 2}),
        CheckResult("email present", "not_null", "critical", "passed", "no nulls", ["email"], "0 nulls", "0", 0,
                    {"action": "reject", "examples": []}),
        CheckResult("status known", "accepted_values", "warning", "failed", "4 rows have a status not in the list",
                    ["status"], "4 rows", "0", 4,
                    {"action": "warn", "examples": [{"record": 17, "line": 18, "value": "shiped"},
                                                    {"record": 230, "line": 231, "value": "<b>void</b>"}]}),
        CheckResult(XSS_NAME, "range", "info", "failed", "amount above 10,000 in 1 row", ["amount"], "max 12,990.00",
                    "<= 10000", 1, {"action": "warn", "checked": 20934,
                     "examples": [{"record": 999, "column": "amount", "value": "12990.00",
                                   "reason": "check range(amount): amount 12990.00 is above 10000"}]}),
        CheckResult("row count", "row_count", "critical", "passed", "20,934 rows", [], "20,934", ">= 1000"),
        CheckResult("customers exist", "referential", "warning", "error",
                    "the destination query failed: relation \"customers\" does not exist", ["customer_id"]),
        CheckResult("fresh enough", "freshness", "info", "skipped", "no timestamp column was read", ["updated_at"]),
    ]
    columns = [
        ColumnProfile("order_id", "int64", 20934, 0, "10001", "31002", 20931),
        ColumnProfile("order_date", "date32", 20934, 0, "2024-03-01", "2024-03-21", 19),
        ColumnProfile("email", "string", 20934, 0, "a.ali@example.com", "zoe@example.org", 18411),
        ColumnProfile("status", "string", 20934, 12, "cancelled", "shiped", 5),
        ColumnProfile("amount", "decimal128(10, 2)", 20934, 311, "-12.50", "12990.00", None),
        ColumnProfile("customer_id", "int64", 20934, 1450, "1", "9987", 7310),
    ]
    throughput = [[0.0, 0.0], [0.5, 5000.0], [1.0, 10000.0], [1.6, 15000.0], [2.1, 20934.0]]
    audit = [
        {"at": "2024-03-22T06:00:00+00:00", "event": "run_started", "detail": "job orders, 1 partition"},
        {"at": "2024-03-22T06:00:02.100000+00:00", "event": "load_finished", "detail": {"read": 20950, "rejected": 16}},
        {"at": "2024-03-22T06:00:02.900000+00:00", "event": "checks_finished", "detail": "3 critical checks failed"},
        {"at": "2024-03-22T06:00:03+00:00", "event": "run_finished", "detail": "failed_checks"},
    ]
    return QualityReport(
        job="orders", run_id="20240322-060000-a1b2c3", source="orders.csv", destination="postgres orders (public.orders)",
        started_at="2024-03-22T06:00:00+00:00", finished_at="2024-03-22T06:00:03+00:00", status="failed_checks",
        gate="2 critical checks failed: the 20,934 rows loaded stay in public.orders (batches commit as they go); "
             "fix the source and load again.",
        rows=20950, results=results, columns=columns,
        counts={"read": 20950, "inserted": 20934, "updated": 0, "skipped": 0, "skipped_by_reason": {}, "rejected": 16},
        per_date={"order_date": per_day},
        rejects_by_reason={"value 'abc' does not fit column amount (decimal(10,2))": 9, "required value is missing": 5,
                           "refused by the destination: value too long for type character varying(3)": 2},
        throughput=throughput, audit=audit, run_status="failed_checks")


def empty_report() -> QualityReport:
    """A run without ``quality:`` checks: counts and status only."""
    return QualityReport(job="plain", run_id="20240101-000000-000000", source="in.csv", destination="sqlite out.db",
                         started_at="2024-01-01T00:00:00+00:00", finished_at="2024-01-01T00:00:01.500000+00:00",
                         status="passed", gate="No quality checks ran; the run succeeded.", rows=3,
                         counts={"read": 3, "inserted": 3, "updated": 0, "skipped": 0, "rejected": 0},
                         run_status="succeeded")
