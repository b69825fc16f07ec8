"""An incremental job's second run beside its first: only what changed moves.

    python benchmarks/bench_incremental.py [--rows N] [--changed N] [--repeat R] [--keep]

A PostgreSQL table of 1M rows (id, six data columns, ``updated_at`` with an index) is loaded into
a PostgreSQL table of another database by a job with ``incremental: {cursor: updated_at,
lookback: 10m}`` and ``conflict: {key: [id]}``. The first run loads every row (an upsert into the
empty table); then 1,000 rows are changed (``updated_at`` moved past the mark, a new name) and the
job runs again. Target: the second run takes less than 5% of the first.

The second run is repeated ``--repeat`` times (the median is taken), 1,000 other rows changed
before each. Each run starts with an empty run ledger: the mark is found in the destination.
After each run the destination is checked: every row there once, and the changed rows changed.
Prints both times, their ratio, PASS/FAIL and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402
from bench_servers import Pg  # noqa: E402

import bench_servers  # noqa: E402

TARGET = 0.05
COLUMNS = ("id bigint PRIMARY KEY, name text, email text, city text, amount numeric(12,2), quantity integer, "
           "notes text, updated_at timestamp NOT NULL")


def fill(pg: Pg, rows: int) -> None:
    """``rows`` rows whose ``updated_at`` spreads over a year before 2024-06-01, one a few seconds."""
    pg.run(f"CREATE TABLE orders ({COLUMNS})")
    pg.run(f"""INSERT INTO orders
               SELECT i, 'name ' || i, 'user' || i || '@example.com', (ARRAY['London','Paris','Tokyo','Lima'])[1 + i % 4],
                      (i % 100000) / 100.0, i % 50, repeat('note ', 1 + i % 8),
                      timestamp '2023-06-01' + (i * interval '1 second') * (31536000.0 / {rows})
               FROM generate_series(1, {rows}) AS i""")
    pg.run("CREATE INDEX orders_updated_at ON orders (updated_at); ANALYZE orders")


def change(pg: Pg, count: int, round_no: int) -> None:
    """Change ``count`` rows spread over the table: a new name, and ``updated_at`` past every mark."""
    pg.run(f"""UPDATE orders SET name = 'changed {round_no}',
                      updated_at = (SELECT max(updated_at) FROM orders) + interval '1 hour'
               WHERE id IN (SELECT (g * 7919 + {round_no} * 104729) % (SELECT count(*) FROM orders) + 1
                            FROM generate_series(1, {count}) AS g)""")


def job(work: Path, source: Pg, dest: Pg) -> Path:
    path = work / "orders_incremental.yaml"
    path.write_text(f"""name: orders_incremental
source:
  type: postgres
  url: '{source.url}'
  table: orders
  incremental: {{cursor: updated_at, lookback: 10m}}
destination: {{type: postgres, url: '{dest.url}', table: orders}}
conflict: {{key: [id]}}
validation: {{max_rejects: 0}}
""")
    return path


def run(path: Path, work: Path) -> tuple[c.Measured, float]:
    """One run as a user starts it (a new process, an empty run ledger: the mark is found in the
    destination); its wall time, and the run's own time as Portl reports it (after the plan)."""
    shutil.rmtree(work / ".portl", ignore_errors=True)
    done = c.measure([*c.portl_command(), "run", str(path), "--no-progress", "--format", "json"], cwd=work,
                     env=c.portl_env())
    if done.returncode != 0:
        raise RuntimeError(f"a run failed: {done.failure()}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return done, float(report["duration_s"])


def check(dest: Pg, rows: int, changed_name: str | None, changed: int) -> None:
    total, distinct = dest.run("SELECT count(*), count(DISTINCT id) FROM orders").strip().split("|")
    if int(total) != rows or int(distinct) != rows:
        raise RuntimeError(f"the destination holds {total} rows ({distinct} distinct ids), expected {rows:,}")
    if changed_name is not None:
        got = int(dest.run(f"SELECT count(*) FROM orders WHERE name = '{changed_name}'").strip())
        if got != changed:
            raise RuntimeError(f"{got:,} rows are '{changed_name}' in the destination, expected {changed:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the scratch databases and the job file")
    args = parser.parse_args()
    bench_servers.KEEP = args.keep
    print(c.environment_line())
    summary = c.Summary(f"incremental PostgreSQL -> PostgreSQL, {c.short(args.rows)} rows, {args.changed:,} changed")
    source, dest, work = Pg(), Pg(), c.workdir("incremental")
    try:
        fill(source, args.rows)
        path = job(work, source, dest)
        first, first_engine = run(path, work)
        check(dest, args.rows, None, 0)
        print(f"first run   {first.seconds:7.2f} s  ({c.rate(args.rows, first.seconds)}, every row; "
              f"the run itself {first_engine:.2f} s)", flush=True)
        seconds, engine = [], []
        for round_no in range(1, args.repeat + 1):
            change(source, args.changed, round_no)
            again, again_engine = run(path, work)
            check(dest, args.rows, f"changed {round_no}", args.changed)
            seconds.append(again.seconds)
            engine.append(again_engine)
        second, second_engine = c.median(seconds), c.median(engine)
        ratio, engine_ratio = second / first.seconds, second_engine / first_engine
        ok = ratio < TARGET
        print(f"second run  {second:7.2f} s  (median of {'/'.join(f'{s:.2f}' for s in seconds)} s; the run itself "
              f"{second_engine:.2f} s; {args.changed:,} rows changed before each)", flush=True)
        print(f"ratio       {100 * ratio:6.2f}% of the first run, whole process (target < {100 * TARGET:.0f}%)  "
              f"{c.verdict(ok)}")
        print(f"            {100 * engine_ratio:6.2f}% counting the runs only, after start-up and plan "
              f"(start-up and plan: {second - second_engine:.2f} s of each run)")
        summary.add("1", f"second run < {100 * TARGET:.0f}% of the first", c.verdict(ok),
                    f"{100 * ratio:.2f}% ({second:.2f} s vs {first.seconds:.2f} s); runs only "
                    f"{100 * engine_ratio:.2f}% ({second_engine:.2f} s vs {first_engine:.2f} s)")
    except Exception as exc:  # the summary says what failed; the benchmark always exits 0
        print(f"error: {exc}")
        summary.add("1", f"second run < {100 * TARGET:.0f}% of the first", "ERROR", str(exc)[:200])
    finally:
        source.drop()
        dest.drop()
    summary.print()


if __name__ == "__main__":
    main()
