"""CSV -> SQLite append: Portl beside the ``sqlite3`` command line's ``.import`` (targets 1 and 2).

    python benchmarks/bench_csv_sqlite.py [--rows N] [--repeat R] [--case append|coerce|all]

Both sides load the same generated file into the same table of a fresh database file on the same
disk: ``sqlite3 db ".mode csv" ".import --skip 1 file t"`` and ``portl run job.yaml --no-progress``
(a job this script writes). Both tables are created beforehand with the same columns, outside the
timing. Times are wall clock of the whole command, Portl's interpreter start included; the peak
RSS is the Portl process's own. Afterwards both tables must hold exactly N rows.

Target 1: Portl's throughput >= 0.50x ``.import``, and Portl's peak RSS < 300 MB.
Target 2: with a mapping that converts 4 columns from text (bigint, decimal(12,2), date, bool),
          >= 0.40x ``.import`` into the same table (those 4 columns declared with their types).

Prints PASS/FAIL per target and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402


@dataclass(frozen=True)
class Case:
    key: str
    number: str
    label: str
    types: dict[str, str]
    coerced: dict[str, str] | None
    min_ratio: float
    max_rss_mb: float | None


CASES = [
    Case("append", "1", "csv->sqlite append", c.PLAIN_TYPES, None, 0.50, 300.0),
    Case("coerce", "2", "csv->sqlite coerce 4", c.COERCED_TYPES, c.COERCED, 0.40, None),
]


@dataclass
class Side:
    seconds: list[float]
    rss_mb: list[float]
    rows: int
    note: str = ""
    cpu: list[float] | None = None
    reported: list[float] | None = None
    """Portl's own run times, from its summary."""


def run_portl_side(case: Case, data: c.Dataset, work: Path, keep: bool) -> Side:
    db = work / f"portl-{case.key}.db"
    job = work / f"portl-{case.key}.yaml"
    c.fresh_database(db, case.types)
    c.write_job(job, f"bench_{case.key}", data.path, db, case.coerced)
    m = c.run_portl(job, work)
    if m.returncode != 0:
        raise RuntimeError(f"portl run failed, {m.failure()}")
    rows = c.count_rows(db)
    note = ""
    reported = c.portl_reported_seconds(m)
    if case.coerced:
        storage = c.column_storage(db, list(case.coerced))
        shown = ", ".join(f"{k} {'/'.join(v)}" for k, v in storage.items())
        note = f"stored as {shown}"
        expected = {"id": {"integer"}, "active": {"integer"}, "amount": {"integer", "real"}}
        wrong = [k for k, allowed in expected.items() if not set(storage.get(k, [])) <= allowed]
        if wrong:
            raise RuntimeError(f"portl did not convert column(s) {', '.join(wrong)}: {shown}")
    if not keep:
        c.remove_database(db)
    return Side([m.seconds], [m.peak_rss_mb or 0.0], rows, note, [m.cpu_seconds or 0.0],
                [] if reported is None else [reported])


def run_sqlite_side(cli: str, case: Case, data: c.Dataset, work: Path, keep: bool) -> Side:
    db = work / f"sqlite3-{case.key}.db"
    c.fresh_database(db, case.types)
    m = c.run_sqlite_import(cli, db, data.path)
    problem = c.import_problems(m)
    if problem:
        raise RuntimeError(f"sqlite3 .import failed, {problem}")
    rows = c.count_rows(db)
    if not keep:
        c.remove_database(db)
    return Side([m.seconds], [m.peak_rss_mb or 0.0], rows, "", [m.cpu_seconds or 0.0])


def merge(a: Side | None, b: Side) -> Side:
    if a is None:
        return b
    return Side(a.seconds + b.seconds, a.rss_mb + b.rss_mb, b.rows if a.rows == b.rows else -1, b.note or a.note,
                (a.cpu or []) + (b.cpu or []), (a.reported or []) + (b.reported or []))


def bench_case(case: Case, data: c.Dataset, cli: str | None, repeat: int, keep: bool, summary: c.Summary) -> None:
    work = c.workdir("csv_sqlite")
    portl: Side | None = None
    ref: Side | None = None
    for attempt in range(repeat):
        order = ["sqlite3", "portl"] if attempt % 2 == 0 else ["portl", "sqlite3"]
        for side in order:
            if side == "portl":
                portl = merge(portl, run_portl_side(case, data, work, keep))
            elif cli:
                ref = merge(ref, run_sqlite_side(cli, case, data, work, keep))
    assert portl is not None
    n = data.rows
    p_s = c.median(portl.seconds)
    p_rss = max(portl.rss_mb)
    parts = [f"{case.label:<22}", f"portl {p_s:.2f} s ({c.rate(n, p_s)})"]
    ok = portl.rows == n
    ratio = None
    if ref is not None:
        r_s = c.median(ref.seconds)
        ratio = r_s / p_s
        ok = ok and ref.rows == n
        parts.append(f"sqlite3 .import {r_s:.2f} s")
        parts.append(f"ratio {ratio:.2f}x (target >= {case.min_ratio:.2f}x)")
    else:
        parts.append("sqlite3 .import skipped")
        parts.append(f"ratio n/a (target >= {case.min_ratio:.2f}x)")
    if case.max_rss_mb is not None:
        parts.append(f"peak RSS {p_rss:.0f} MB (target < {case.max_rss_mb:.0f} MB)")
    else:
        parts.append(f"peak RSS {p_rss:.0f} MB")
    ratio_ok = ratio is not None and ratio >= case.min_ratio
    rss_ok = case.max_rss_mb is None or p_rss < case.max_rss_mb
    if not ok:
        status = "FAIL"
    elif ratio is None:
        status = "SKIP" if case.max_rss_mb is None else f"{c.verdict(rss_ok)} (RSS only)"
    else:
        status = c.verdict(ratio_ok and rss_ok)
    print("   ".join(parts[:3]) + "   " + "  ".join(parts[3:]) + f"  {status}", flush=True)

    details = [f"rows: portl {portl.rows:,}" + (f", sqlite3 {ref.rows:,}" if ref else "") + f" (expected {n:,})"]
    if repeat > 1:
        details.append("portl runs " + ", ".join(f"{s:.2f}" for s in portl.seconds) + " s")
        if ref:
            details.append("sqlite3 runs " + ", ".join(f"{s:.2f}" for s in ref.seconds) + " s")
    details.append(f"CPU time portl {c.median(portl.cpu or [0.0]):.2f} s"
                   + (f", sqlite3 {c.median(ref.cpu or [0.0]):.2f} s" if ref else ""))
    if ref:
        details.append(f"sqlite3 peak RSS {max(ref.rss_mb):.0f} MB")
    if portl.reported:
        details.append(f"portl's own run time {c.median(portl.reported):.2f} s (its summary; start-up and planning excluded)")
    if portl.note:
        details.append(portl.note)
    print("    " + "; ".join(details), flush=True)
    if portl.rows != n or (ref is not None and ref.rows != n):
        print(f"    row count mismatch: the table must hold exactly {n:,} rows", flush=True)

    rows_ok = portl.rows == n and (ref is None or ref.rows == n)
    if ref is None:
        summary.add(case.number, f"{case.label}: throughput >= {case.min_ratio:.2f}x sqlite3 .import", "SKIP",
                    "sqlite3 command line not installed")
    else:
        summary.add(case.number, f"{case.label}: throughput >= {case.min_ratio:.2f}x sqlite3 .import",
                    c.verdict(ratio_ok and rows_ok), f"{ratio:.2f}x ({p_s:.2f} s vs {c.median(ref.seconds):.2f} s)")
    if case.max_rss_mb is not None:
        summary.add(case.number, f"{case.label}: Portl peak RSS < {case.max_rss_mb:.0f} MB",
                    c.verdict(rss_ok and rows_ok), f"{p_rss:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated file (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=c.DEFAULT_SEED, help="generator seed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, alternating which side goes first; the median times are compared (default 3)")
    parser.add_argument("--case", choices=["append", "coerce", "all"], default="all", help="which target(s) to run")
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases in benchmarks/.data/work/")
    args = parser.parse_args(argv)
    summary = c.Summary(f"csv->sqlite, {args.rows:,} rows")
    try:
        print(c.environment_line())
        data = c.dataset(args.rows, args.seed)
        summary.title += f", {data.megabytes:,.1f} MB CSV, repeat {args.repeat}"
        cli = c.sqlite3_cli()
        if cli is None:
            print("sqlite3 command line not found on PATH: the sqlite3 .import comparison is SKIPPED "
                  "(install sqlite3 to measure the throughput targets); Portl is still run and its RSS measured")
        c.warm_cache(data.path)
        if warning := c.load_warning():
            print(warning)
        for case in CASES:
            if args.case not in ("all", case.key):
                continue
            try:
                bench_case(case, data, cli, max(1, args.repeat), args.keep, summary)
            except Exception as exc:
                print(f"{case.label:<22}   ERROR: {exc}", flush=True)
                summary.add(case.number, f"{case.label}", "ERROR", str(exc).splitlines()[0][:160])
    except SystemExit as exc:
        print(f"cannot run the benchmark: {exc}")
    except Exception:
        traceback.print_exc()
        print("the benchmark stopped on an unexpected error")
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
