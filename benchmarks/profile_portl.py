"""Profile one Portl run of a benchmark job with cProfile, every thread included.

    python benchmarks/profile_portl.py [--rows N] [--case append|coerce] [--top 25] [--out FILE.prof]
    python benchmarks/profile_portl.py --job JOB.yaml [--top 25] [--out FILE.prof]

``python -m cProfile`` only sees the main thread, and Portl reads and maps batches on a reader
thread while the main thread writes. This script runs the real CLI in a child process
(``portl run job.yaml --no-progress``, in process via ``portl.cli.app.main``) with a profiler on
the main thread and on every thread started, merges them into one ``.prof`` file and prints the
top functions by cumulative and by own (total) time. The times of the threads add up, so the
totals can exceed the wall time; C work that releases the GIL (Arrow's CSV parser, SQLite) is
charged to the Python call that waited on it.

``--job`` profiles any job file instead (run from its folder, ledger in a fresh state folder), for
instance one that ``bench_servers.py --keep`` left in ``benchmarks/.data/work/``: the destination
must be ready for it (an append into a table already loaded adds the rows a second time).
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402


def _child(out: str, argv: list[str]) -> None:
    import cProfile
    import threading

    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    from portl.cli.app import main

    sys.argv = ["portl", *argv]
    main_profile = cProfile.Profile()
    code = 0
    main_profile.enable()
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        main_profile.disable()
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        try:
            stats.add(profile)
        except TypeError:  # a thread that never ran Python code
            pass
    stats.dump_stats(out)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=c.DEFAULT_SEED)
    parser.add_argument("--case", choices=["append", "coerce"], default="append")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=None, help="where to write the merged .prof (default benchmarks/.data/work/profile/)")
    parser.add_argument("--job", default=None, help="profile this job file instead of the CSV -> SQLite benchmark job")
    args = parser.parse_args(argv)
    if args.job:
        return _profile_job(Path(args.job).resolve(), args)
    data = c.dataset(args.rows, args.seed)
    work = c.workdir("profile")
    db, job = work / f"{args.case}.db", work / f"{args.case}.yaml"
    out = Path(args.out) if args.out else work / f"{args.case}-{args.rows}.prof"
    types, coerced = (c.PLAIN_TYPES, None) if args.case == "append" else (c.COERCED_TYPES, c.COERCED)
    c.fresh_database(db, types)
    c.write_job(job, f"profile_{args.case}", data.path, db, coerced)
    c.warm_cache(data.path)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    import shutil
    shutil.rmtree(work / ".portl", ignore_errors=True)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(out), "run", str(job),
                           "--no-progress"], cwd=work, env=env, capture_output=True, text=True)
    print((proc.stdout + proc.stderr).strip())
    rows = c.count_rows(db)
    c.remove_database(db)
    print(f"rows loaded: {rows:,} (expected {args.rows:,}); profile: {out}")
    if not out.exists():
        print("no profile was written")
        return 0
    _print_top(out, args.top)
    return 0


def _profile_job(job: Path, args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    out = Path(args.out) if args.out else c.workdir("profile") / f"{job.stem}.prof"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    with tempfile.TemporaryDirectory(prefix="portl-profile-") as state:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(out), "run", str(job),
                               "--no-progress", "--state-dir", state], cwd=job.parent, env=env, capture_output=True,
                              text=True)
        shutil.rmtree(state, ignore_errors=True)
    print((proc.stdout + proc.stderr).strip())
    print(f"profile: {out}")
    if out.exists():
        _print_top(out, args.top)
    return 0


def _print_top(path: Path, top: int) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n--- top {top} by {order} ---")
        pstats.Stats(str(path)).strip_dirs().sort_stats(order).print_stats(top)


if __name__ == "__main__":
    sys.exit(main())
