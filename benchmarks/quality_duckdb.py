"""The quality benchmark's reference: the job's checks as SQL in DuckDB over the same TSV file.

    python benchmarks/quality_duckdb.py --file FILE [--temp DIR] [--threads N] [--memory-limit SIZE]

The checks of ``bench_quality.py``'s job, in one read of the file: not_null on id, day and
customer, unique id, both range checks (amount 0–100000, qty 1–1000), the rows per date, all
from one ``GROUP BY GROUPING SETS ((day), (id))`` over ``read_csv`` (the id set keeps only the
ids found more than once). Then, on the few hundred dates only: date completeness (weekdays
from the first date to the last, less the US federal holidays of the ``holidays`` package, as
Portl's calendar has them) and volume anomalies (per weekday, the robust z-score Portl uses:
median and 1.4826 × MAD, threshold 3.5, at least 100 rows away from the median; the pool here
includes the date itself, which moves nothing for a few spikes among hundreds of dates).

Prints one JSON object: the findings (for the benchmark to compare with what was planted) and
the seconds spent. DuckDB is a benchmark-only tool: ``.venv/bin/python -m pip install duckdb``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

COLUMNS = {"id": "BIGINT", "day": "DATE", "customer": "VARCHAR", "email": "VARCHAR", "amount": "DECIMAL(12,2)",
           "qty": "INTEGER", "status": "VARCHAR", "country": "VARCHAR", "price": "DOUBLE", "note": "VARCHAR"}

ONE_PASS = """
CREATE TEMP TABLE agg AS
SELECT GROUPING(id) AS by_day, day, id, count(*) AS n,
       count(*) FILTER (WHERE id IS NULL OR day IS NULL OR customer IS NULL) AS not_null_failing,
       count(*) FILTER (WHERE amount < 0 OR amount > 100000) AS amount_failing,
       count(*) FILTER (WHERE qty < 1 OR qty > 1000) AS qty_failing
FROM read_csv($file, delim = '\t', header = true, quote = '', escape = '', nullstr = '', columns = $columns)
GROUP BY GROUPING SETS ((day), (id))
HAVING GROUPING(id) = 1 OR (id IS NOT NULL AND count(*) > 1)
"""

TOTALS = """
SELECT sum(n), sum(not_null_failing), sum(amount_failing), sum(qty_failing), min(day), max(day)
FROM agg WHERE by_day = 1
"""

DUPLICATES = "SELECT count(*), coalesce(sum(n), 0) FROM agg WHERE by_day = 0"

ANOMALIES = """
WITH d AS (SELECT day, n, isodow(day) AS wd FROM agg WHERE by_day = 1 AND day IS NOT NULL),
     m AS (SELECT wd, median(n) AS med FROM d GROUP BY wd),
     s AS (SELECT d.wd, any_value(m.med) AS med, 1.4826 * median(abs(d.n - m.med)) AS spread
           FROM d JOIN m USING (wd) GROUP BY d.wd)
SELECT strftime(day, '%Y-%m-%d') FROM d JOIN s USING (wd)
WHERE abs(n - med) > 3.5 * spread AND abs(n - med) >= 100
ORDER BY day
"""

MISSING = """
SELECT strftime(e.day, '%Y-%m-%d') FROM expected e
WHERE NOT EXISTS (SELECT 1 FROM agg WHERE agg.by_day = 1 AND agg.day = e.day)
ORDER BY e.day
"""


def expected_days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Weekdays from ``first`` to ``last`` that are not US federal holidays."""
    import holidays

    off = holidays.country_holidays("US", years=list(range(first.year, last.year + 1)))
    days, day = [], first
    while day <= last:
        if day.weekday() < 5 and day not in off:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", required=True, help="the TSV file")
    parser.add_argument("--temp", help="where DuckDB may spill (default: its own choice)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: every core)")
    parser.add_argument("--memory-limit", help="DuckDB's memory limit, e.g. 4GB (default: its own, 80%% of the RAM)")
    args = parser.parse_args()
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    if args.temp:
        con.execute(f"SET temp_directory = '{args.temp}'")
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(ONE_PASS, {"file": args.file, "columns": COLUMNS})
    scanned = time.perf_counter()
    rows, not_null, amount, qty, first, last = con.execute(TOTALS).fetchone()
    duplicate_keys, duplicate_rows = con.execute(DUPLICATES).fetchone()
    spikes = [r[0] for r in con.execute(ANOMALIES).fetchall()]
    con.execute("CREATE TEMP TABLE expected (day DATE)")
    con.executemany("INSERT INTO expected VALUES (?)", [(d,) for d in expected_days(first, last)])
    missing = [r[0] for r in con.execute(MISSING).fetchall()]
    con.close()
    print(json.dumps({
        "rows": int(rows), "not_null_failing": int(not_null), "duplicate_keys": int(duplicate_keys),
        "duplicate_rows": int(duplicate_rows), "amount_failing": int(amount), "qty_failing": int(qty),
        "missing": missing, "spikes": spikes, "scan_seconds": round(scanned - started, 3),
        "seconds": round(time.perf_counter() - started, 3), "duckdb": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
