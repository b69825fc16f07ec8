"""Rows the destination refuses cost little: a load with a few bad rows beside the same load without.

    python benchmarks/bench_rejects.py [--rows N] [--bad B] [--repeat R] [--keep]

The generated CSV (1M rows x 10 columns by default) is loaded into Postgres twice per run, by the
same job: once as it is, once with B rows (10 by default) spread over the file whose quantity
breaks the table's CHECK (quantity < 1000), which only the server knows. Portl then rejects each
of those rows (with its line) and loads the others; the batches holding one are written again in
parts (see docs/rejects.md). Target: the load with bad rows takes at most 1/0.7 of the time of the
clean one (ratio = clean time / time with bad rows >= 0.70x). Each run checks the rows left in
the table and the rejects reported. Prints both times, the ratio and PASS/FAIL; always exits 0.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_servers  # noqa: E402
import common as c  # noqa: E402
from bench_servers import PG_COLUMNS, Pg, job_file, typed_mapping  # noqa: E402

TARGET = 0.70
CHECKED = PG_COLUMNS.replace("quantity integer", "quantity integer CHECK (quantity < 1000)")
BAD_QUANTITY = "5000"


def with_bad_rows(data: c.Dataset, bad: int, work: Path) -> tuple[Path, list[int]]:
    """A copy of the file whose rows at ``bad`` evenly spread positions have a quantity the table
    refuses; returns it and the file lines changed."""
    path = work / f"{data.path.stem}-bad-{bad}.csv"
    step = data.rows // (bad + 1)
    rows = {step * (k + 1) + 7 * k for k in range(bad)}  # spread, not on batch boundaries
    quantity = c.COLUMNS.index("quantity")
    lines = []
    with open(data.path, encoding="utf-8", newline="") as src, open(path, "w", encoding="utf-8", newline="") as out:
        out.write(src.readline())
        for number, line in enumerate(src, 1):
            if number in rows:
                fields = line.split(",", quantity + 1)  # the fields up to quantity hold no comma or quote
                fields[quantity] = BAD_QUANTITY
                line = ",".join(fields)
                lines.append(number + 1)
            out.write(line)
    return path, lines


def run_load(pg: Pg, job: Path, work: Path, expected_rows: int, expected_lines: list[int]) -> c.Measured:
    pg.run(f"DROP TABLE IF EXISTS t; CREATE TABLE t ({CHECKED})")
    measured = c.run_portl(job, work)
    if measured.returncode != 0:
        raise RuntimeError(f"{job.name}: {measured.failure()}")
    rows = pg.count()
    if rows != expected_rows:
        raise RuntimeError(f"{job.name}: {rows:,} rows in the table, expected {expected_rows:,}")
    rejects = work / f"{job.stem}.rejects.csv"
    got = []
    if rejects.exists():
        with open(rejects, encoding="utf-8", newline="") as handle:
            got = [int(r["line"]) for r in csv.DictReader(handle)]
    if got != expected_lines:
        raise RuntimeError(f"{job.name}: rejects at lines {got[:20]}, expected {expected_lines}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated file (default 1,000,000)")
    parser.add_argument("--bad", type=int, default=10, help="rows the destination refuses (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, alternating which goes first (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and job files afterwards")
    args = parser.parse_args()
    bench_servers.KEEP = args.keep
    print(c.environment_line())
    summary = c.Summary(f"rows the destination refuses ({args.bad} of {c.short(args.rows)})")
    text = f"CSV -> Postgres with {args.bad} refused rows >= {TARGET:.2f}x the clean load"
    data = c.dataset(args.rows)
    work = c.workdir("rejects")
    pg = Pg()
    try:
        dirty, lines = with_bad_rows(data, args.bad, work)
        c.warm_cache(data.path)
        c.warm_cache(dirty)
        destination = f"{{type: postgres, url: '{pg.url}', table: t}}"
        clean_job = job_file(work, "clean", f"{{type: csv, path: '{data.path}'}}", destination, typed_mapping())
        dirty_job = job_file(work, "dirty", f"{{type: csv, path: '{dirty}'}}", destination, typed_mapping())
        for job in (clean_job, dirty_job):  # the benchmark's jobs take no reject limit
            job.write_text(job.read_text().replace("validation: {max_rejects: 0}\n", ""))
        times: dict[str, list[float]] = {"clean": [], "dirty": []}
        for attempt in range(args.repeat):
            order = ["clean", "dirty"] if attempt % 2 == 0 else ["dirty", "clean"]
            for side in order:
                if side == "clean":
                    m = run_load(pg, clean_job, work, data.rows, [])
                else:
                    m = run_load(pg, dirty_job, work, data.rows - args.bad, lines)
                times[side].append(m.seconds)
        clean_s, dirty_s = c.median(times["clean"]), c.median(times["dirty"])
        ratio = clean_s / dirty_s if dirty_s > 0 else 0.0
        ok = ratio >= TARGET
        print(f"clean load     {clean_s:6.2f} s ({c.rate(data.rows, clean_s)})   runs {'/'.join(f'{t:.2f}' for t in times['clean'])} s")
        print(f"with {args.bad} bad rows {dirty_s:6.2f} s ({c.rate(data.rows, dirty_s)})   runs "
              f"{'/'.join(f'{t:.2f}' for t in times['dirty'])} s")
        print(f"ratio {ratio:.2f}x (target >= {TARGET:.2f}x)  {c.verdict(ok)}")
        print(f"  each run rejected exactly the bad rows, with their file lines ({', '.join(str(n) for n in lines)}), "
              f"and loaded the {data.rows - args.bad:,} others")
        summary.add("", text, c.verdict(ok), f"{ratio:.2f}x ({dirty_s:.2f} s vs {clean_s:.2f} s)")
    except Exception as exc:  # a benchmark reports and exits 0
        print(f"ERROR: {exc}")
        summary.add("", text, "ERROR", str(exc)[:200])
    finally:
        if args.keep:
            print(f"  kept {work} and Postgres database {pg.name}")
        else:
            pg.drop()
    summary.print()


if __name__ == "__main__":
    main()
