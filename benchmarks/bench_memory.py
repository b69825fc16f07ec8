"""Memory is flat: Portl's peak RSS on a 10M-row file within 20% of the 1M-row file (target 3).

    python benchmarks/bench_memory.py [--rows N] [--big-rows M] [--case append|coerce|both]

Runs the same CSV -> SQLite append job as bench_csv_sqlite.py (``portl run job.yaml
--no-progress``, a fresh database each time) on the N-row and the M-row file, and compares the
peak RSS of the two Portl processes. Portl only; there is no reference here. Both files are
generated once into benchmarks/.data/ and reused (the 10M-row file is about 1.2 GB, and its
database as much again while the run lasts). Afterwards each table must hold exactly its row count.

Prints PASS/FAIL per target and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

TOLERANCE = 0.20
CASES = {"append": (c.PLAIN_TYPES, None), "coerce": (c.COERCED_TYPES, c.COERCED)}


def peak(case: str, data: c.Dataset) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, rows in the table) of one Portl run on ``data``."""
    types, coerced = CASES[case]
    work = c.workdir("memory")
    db, job = work / f"{case}-{data.rows}.db", work / f"{case}-{data.rows}.yaml"
    c.fresh_database(db, types)
    c.write_job(job, f"memory_{case}_{data.rows}", data.path, db, coerced)
    c.warm_cache(data.path)
    try:
        m = c.run_portl(job, work)
        if m.returncode != 0:
            raise RuntimeError(f"portl run failed on {data.rows:,} rows, {m.failure()}")
        if m.peak_rss_mb is None:
            raise RuntimeError("the peak RSS could not be measured")
        return m.peak_rss_mb, m.seconds, c.count_rows(db)
    finally:
        c.remove_database(db)


def bench_case(case: str, small: c.Dataset, big: c.Dataset, summary: c.Summary) -> None:
    label = f"memory flat ({case})"
    s_rss, s_sec, s_rows = peak(case, small)
    b_rss, b_sec, b_rows = peak(case, big)
    ratio = b_rss / s_rss
    rows_ok = s_rows == small.rows and b_rows == big.rows
    ok = rows_ok and ratio <= 1 + TOLERANCE
    print(f"{label:<22}   portl {small.rows:,} rows peak RSS {s_rss:.0f} MB ({s_sec:.1f} s, {c.rate(small.rows, s_sec)})"
          f"   {big.rows:,} rows peak RSS {b_rss:.0f} MB ({b_sec:.1f} s, {c.rate(big.rows, b_sec)})"
          f"   ratio {ratio:.2f}x (target <= {1 + TOLERANCE:.2f}x)  {c.verdict(ok)}", flush=True)
    print(f"    rows: {s_rows:,} of {small.rows:,} and {b_rows:,} of {big.rows:,}", flush=True)
    if not rows_ok:
        print("    row count mismatch: each table must hold exactly its file's rows", flush=True)
    summary.add("3", f"{label}: peak RSS at {c.short(big.rows)} rows <= {1 + TOLERANCE:.2f}x at {c.short(small.rows)}",
                c.verdict(ok), f"{ratio:.2f}x ({s_rss:.0f} MB -> {b_rss:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the smaller file (default 1,000,000)")
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows of the bigger file (default 10,000,000)")
    parser.add_argument("--seed", type=int, default=c.DEFAULT_SEED, help="generator seed")
    parser.add_argument("--case", choices=["append", "coerce", "both"], default="append",
                        help="the plain append job (default), the 4-column coercing job, or both")
    args = parser.parse_args(argv)
    summary = c.Summary(f"memory, {args.rows:,} vs {args.big_rows:,} rows")
    try:
        print(c.environment_line())
        small = c.dataset(args.rows, args.seed)
        big = c.dataset(args.big_rows, args.seed)
        if warning := c.load_warning():
            print(warning.replace("; CPU times are shown beside them", ""))
        for case in (["append", "coerce"] if args.case == "both" else [args.case]):
            try:
                bench_case(case, small, big, summary)
            except Exception as exc:
                print(f"memory flat ({case})   ERROR: {exc}", flush=True)
                summary.add("3", f"memory flat ({case})", "ERROR", str(exc).splitlines()[0][:160])
    except SystemExit as exc:
        print(f"cannot run the benchmark: {exc}")
    except Exception:
        traceback.print_exc()
        print("the benchmark stopped on an unexpected error")
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
