"""A glob of many files into PostgreSQL with two workers: Portl beside one worker and beside psql.

    python benchmarks/bench_glob.py [--rows N] [--split-bytes B] [--repeat R] [--keep]

The generated CSV (2M rows x 10 columns by default, about 250 MB, shared with the other
benchmarks) is cut into ten files in benchmarks/.data/glob-N/: two large plain files (30% of the
rows each), four gzip files (8% each) and four small plain files (2% each). They are loaded into
table t of a scratch PostgreSQL database by three sides, each its own process, in the same run:

  portl w1    portl run of a job reading data/*.csv* (six columns typed), parallel.workers: 1
  portl w2    the same job with parallel.workers: 2: each file a partition, the two large files
              cut into byte ranges (PORTL_SPLIT_BYTES, 16 MiB by default here), largest first
  psql x2     two psql sessions at once, each running \\copy for half of the files (dealt largest
              first, alternately), gzip files through \\copy ... FROM PROGRAM 'gzip -dc'

Target H1: portl w2 >= 0.85x psql x2 (the ratio asked of two workers on one large file, asked
here of a glob); portl w2 against portl w1 is printed beside. Ratio = the
other side's median time / portl w2's. The sides rotate which goes first; each run starts from an
empty table and is checked for the row count. Always exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_servers  # noqa: E402
import common as c  # noqa: E402
from bench_servers import Pg, job_file, psql, typed_mapping  # noqa: E402

DEFAULT_ROWS = 2_000_000
DEFAULT_SPLIT = 16 << 20
TARGET = 0.85
SIDES = ("portl w1", "portl w2", "psql x2")
SHARES = [("big-1.csv", 30), ("big-2.csv", 30)] + [(f"packed-{k}.csv.gz", 8) for k in range(1, 5)] + \
    [(f"small-{k}.csv", 2) for k in range(1, 5)]
"""The files and their percent of the rows."""


def cut_files(data: c.Dataset) -> Path:
    """The dataset's rows cut into :data:`SHARES`, each file with the header; reused when present."""
    folder = c.DATA_DIR / f"glob-{data.rows}-seed-{data.seed}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"data: cutting {data.path.name} into {len(SHARES)} files in {folder} ...", flush=True)
    with open(data.path, "rb") as source:
        header = source.readline()
        left = data.rows
        for n, (name, percent) in enumerate(SHARES):
            rows = left if n == len(SHARES) - 1 else data.rows * percent // 100
            left -= rows
            lines = b"".join(source.readline() for _ in range(rows))
            if name.endswith(".gz"):
                (folder / name).write_bytes(gzip.compress(header + lines, compresslevel=6))
            else:
                (folder / name).write_bytes(header + lines)
    done.write_text("")
    return folder


def copy_commands(pg: Pg, folder: Path) -> str:
    """Two psql sessions at once, the files dealt to them largest first, for ``bash -c``."""
    files = sorted((p for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz"))), key=lambda p: -p.stat().st_size)
    sessions = []
    for half in (files[0::2], files[1::2]):
        statements = []
        for path in half:
            if path.suffix == ".gz":
                statements.append(f"\\copy t FROM PROGRAM 'gzip -dc {path}' CSV HEADER")
            else:
                statements.append(f"\\copy t FROM '{path}' CSV HEADER")
        sessions.append(" && ".join(shlex.join(psql(pg.name, "-c", s)) for s in statements))
    return " & ".join(f"({s})" for s in sessions) + " & wait"


def run_portl(job: Path, work: Path, env: dict[str, str]) -> c.Measured:
    """``portl run job.yaml --no-progress`` with ``env``, its run ledger starting empty."""
    shutil.rmtree(work / ".portl", ignore_errors=True)
    return c.measure([*c.portl_command(), "run", str(job), "--no-progress"], cwd=work, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows over all the files (default {DEFAULT_ROWS:,})")
    parser.add_argument("--split-bytes", type=int, default=DEFAULT_SPLIT,
                        help=f"PORTL_SPLIT_BYTES for portl w2 (default {DEFAULT_SPLIT:,}: the large files in ranges)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, rotating which goes first (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and job files afterwards")
    args = parser.parse_args()
    bench_servers.KEEP = args.keep
    print(c.environment_line())
    busy = c.load_warning()
    if busy:
        print(busy)
    summary = c.Summary(f"a glob of {len(SHARES)} files, CSV -> PostgreSQL, {c.short(args.rows)} rows")
    text = f"portl w2 >= {TARGET:.2f}x two psql \\copy sessions over the same files"
    work = c.workdir("glob")
    pg = Pg()
    try:
        folder = cut_files(c.dataset(args.rows))
        stored = sum(p.stat().st_size for p in folder.iterdir())
        print(f"files: {len(SHARES)} in {folder}, {stored / 1e6:,.1f} MB as stored; PORTL_SPLIT_BYTES={args.split_bytes:,}")
        for path in folder.iterdir():
            c.warm_cache(path)
        destination = f"{{type: postgres, url: '{pg.url}', table: t}}"
        source = f"{{type: csv, path: '{folder}/*.csv*'}}"
        jobs = {workers: job_file(work, f"glob-{workers}", source, destination,
                                  typed_mapping() + f"parallel: {{workers: {workers}}}\n") for workers in (1, 2)}
        env = {**c.portl_env(), "PORTL_SPLIT_BYTES": str(args.split_bytes)}
        two = copy_commands(pg, folder)
        commands = {
            "portl w1": lambda: run_portl(jobs[1], work, env),
            "portl w2": lambda: run_portl(jobs[2], work, env),
            "psql x2": lambda: c.measure(["bash", "-c", two]),
        }
        times: dict[str, list[float]] = {side: [] for side in SIDES}
        for attempt in range(args.repeat):
            order = SIDES[attempt % len(SIDES):] + SIDES[:attempt % len(SIDES)]
            for side in order:
                pg.table()
                m = commands[side]()
                if m.returncode != 0:
                    raise RuntimeError(f"{side} failed: {m.failure()}")
                rows = pg.count()
                if rows != args.rows:
                    raise RuntimeError(f"{side} left {rows:,} rows in the table, expected {args.rows:,}")
                times[side].append(m.seconds)
                print(f"run {attempt + 1} {side:<9} {m.seconds:6.2f} s  client CPU {m.cpu_seconds or 0:5.2f} s  "
                      f"peak RSS {m.peak_rss_mb or 0:5.0f} MB", flush=True)
        med = {side: c.median(times[side]) for side in SIDES}
        print()
        for side in SIDES:
            print(f"{side:<9} median {med[side]:6.2f} s ({c.rate(args.rows, med[side])})  runs "
                  f"{'/'.join(f'{t:.2f}' for t in times[side])} s")
        over_psql = med["psql x2"] / med["portl w2"]
        over_one = med["portl w1"] / med["portl w2"]
        print(f"portl w2 against psql x2:  {over_psql:.2f}x (target >= {TARGET:.2f}x)  {c.verdict(over_psql >= TARGET)}")
        print(f"portl w2 against portl w1: {over_one:.2f}x (no target: what the second worker gives here)")
        summary.add("H1", text, c.verdict(over_psql >= TARGET),
                    f"{over_psql:.2f}x ({med['portl w2']:.2f} s vs {med['psql x2']:.2f} s)")
    except Exception as exc:  # a benchmark reports and exits 0
        print(f"ERROR: {exc}")
        summary.add("H1", text, "ERROR", str(exc)[:200])
    finally:
        if args.keep:
            print(f"  kept {work} and Postgres database {pg.name}")
        else:
            pg.drop()
    summary.print()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
