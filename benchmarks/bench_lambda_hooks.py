"""What a ``before_row`` lambda hook costs: a CSV -> SQLite load with it, one invocation per row
and with ``batch: true``, beside the same load with a ``python`` hook doing the same work in
process (the reference: both convert every row to JSON and back) and without hooks, in one run.

    python benchmarks/bench_lambda_hooks.py [--rows N] [--per-row-rows N] [--repeat R]

The function (``benchmarks/hook_functions.py``) lower-cases each row's email; the python hook
calls it directly, the lambda hooks through the local Lambda Invoke API (``tests/fakes/lambda_server.py``) in its own process, reached through
boto3 as AWS would be. The local server answers in about a millisecond, where AWS takes tens of
milliseconds: against AWS one invocation per row is slower still, while ``batch: true`` pays that
round trip once per ``batch_rows`` rows.

Target: the load with a batched lambda hook (``batch: true``, 1000 rows per invocation) runs at
>= 10x the throughput of the load invoking once per row (medians of the repeats), the reason
``batch:`` exists. The python hook and the load without hooks are printed beside them: what is
left between the python hook and the batched lambda hook is JSON both ways, HTTP, and the
function's own work, here on the same machine (``concurrency:`` overlaps AWS's round trips; on a
local server it only adds contention, so it is not used here). Each load must leave every row
with its email lower-cased, else it fails.
Prints PASS/FAIL and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402
from bench_flow import Server  # noqa: E402

TARGET = 10.0
MODES = ("none", "python", "batch", "per-row")


def job_file(work: Path, mode: str, csv_path: Path, lambda_url: str) -> tuple[Path, Path]:
    """The job of ``mode`` and its database (created fresh by the run)."""
    db = work / f"{mode}.db"
    c.remove_database(db)
    job = work / f"{mode}.yaml"
    c.write_job(job, f"hooks_{mode.replace('-', '_')}", csv_path, db)
    if mode == "python":
        with open(job, "a", encoding="utf-8") as handle:
            handle.write("hooks:\n  before_row: {type: python, function: 'hook_functions:lower_email_in_place'}\n")
    elif mode != "none":
        function = "lower-emails" if mode == "batch" else "lower-email"
        batch = ", batch: true, batch_rows: 1000" if mode == "batch" else ""
        with open(job, "a", encoding="utf-8") as handle:
            handle.write(f"hooks:\n  before_row: {{type: lambda, function: {function}, endpoint_url: {json.dumps(lambda_url)}, "
                         f"access_key_id: bench, secret_access_key: bench{batch}}}\n")
    return job, db


def check(db: Path, rows: int) -> str | None:
    """Why the load is wrong, or None: every row, every email lower-case (when a hook ran)."""
    with sqlite3.connect(db) as conn:
        loaded, upper = conn.execute(f"SELECT count(*), sum(email <> lower(email)) FROM {c.TABLE}").fetchone()
    if loaded != rows:
        return f"{loaded:,} rows loaded of {rows:,}"
    return None if not upper or "none" in db.name else f"{upper:,} emails not lower-cased"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the loads without hooks and batched")
    parser.add_argument("--per-row-rows", type=int, default=5_000, help="rows of the load invoking once per row")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    print(c.environment_line())
    if warning := c.load_warning():
        print(warning)
    summary = c.Summary("bench_lambda_hooks.py")
    data = {"none": c.dataset(options.rows), "python": c.dataset(options.rows), "batch": c.dataset(options.rows),
            "per-row": c.dataset(options.per_row_rows)}
    work = c.workdir("lambda_hooks")
    shutil.copy(c.HERE / "hook_functions.py", work / "hook_functions.py")  # the python hook's module, beside its job
    lam = Server("tests.fakes.lambda_server", "--function", "lower-email=benchmarks.hook_functions:lower_email",
                 "--function", "lower-emails=benchmarks.hook_functions:lower_emails")
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for _ in range(options.repeat):
            for mode in MODES:
                job, db = job_file(work, mode, data[mode].path, lam.url)
                measured = c.run_portl(job, work)
                problem = measured.failure() if measured.returncode else check(db, data[mode].rows)
                if problem:
                    print(f"{mode}: {problem}")
                    summary.add("L1", f"batched lambda hook >= {TARGET:g}x one invocation per row", "ERROR", f"{mode}: {problem}")
                    summary.print()
                    return
                times[mode].append(measured.seconds)
    finally:
        lam.close()

    seconds = {mode: c.median(times[mode]) for mode in MODES}
    for mode in MODES:
        rows = data[mode].rows
        print(f"{mode:<8} {c.short(rows):>6} rows  {seconds[mode]:6.2f} s  {c.rate(rows, seconds[mode]):>14}   "
              f"runs: {', '.join(f'{t:.2f}' for t in times[mode])} s")
    per_row = options.per_row_rows / seconds["per-row"]
    ratio = options.rows / seconds["batch"] / per_row
    print(f"batched lambda hook: {ratio:.1f}x the throughput of one invocation per row (target >= {TARGET:g}x); "
          f"{seconds['python'] / seconds['batch']:.2f}x the python hook's, {seconds['none'] / seconds['batch']:.2f}x "
          "the load without hooks")
    summary.add("L1", f"batched lambda hook >= {TARGET:g}x one invocation per row", c.verdict(ratio >= TARGET), f"{ratio:.1f}x")
    summary.print()


if __name__ == "__main__":
    main()
