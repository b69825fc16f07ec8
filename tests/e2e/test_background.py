"""Runs in the background: ``portl run --detach``, ``portl runs --watch``, ``portl logs`` and ``portl stop``.

The job loads a generated CSV into SQLite in batches of 100 rows, each slowed by a ``before_batch``
hook while the file ``slow`` exists, so that a run lasts long enough to be watched and stopped.
Every test reads the outcome from the ledger (``portl runs --format json``) and the destination.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PORTL, query

ROWS = 2_000


@pytest.fixture
def slow_job(write, tmp_path: Path) -> Path:
    write("orders.csv", "id,name\n" + "".join(f"{i},name {i}\n" for i in range(1, ROWS + 1)))
    write("slowhooks.py", """
        import os
        import time

        def before_batch(payload):
            # While the file 'slow' is there, each batch takes the seconds it holds (default 0.15).
            if os.path.exists("slow"):
                with open("slow") as seconds:
                    time.sleep(float(seconds.read() or 0.15))
    """)
    write("job.yaml", """
        name: orders
        source: {type: csv, path: orders.csv}
        destination: {type: sqlite, path: out.db, table: orders}
        batch: {size: 100}
        mapping: {auto: true, columns: {id: {type: bigint}}}
        hooks: {before_batch: {type: python, function: 'slowhooks:before_batch'}}
    """)
    (tmp_path / "slow").write_text("")
    return tmp_path / "out.db"


@pytest.fixture
def portl(portl):
    """The CLI; after the test, a background run still going is stopped (by its recorded pid)."""
    yield portl
    listed = portl("runs", "--format", "json")
    for run in json.loads(listed.stdout or "[]") if listed.code == 0 else []:
        owner = run["meta"].get("process") or {}
        if run["status"] == "running" and owner.get("pid"):
            try:
                os.kill(owner["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass


def run_of(portl, run_id: str) -> dict[str, Any]:
    shown = portl("runs", "show", run_id, "--format", "json")
    assert shown.code == 0, shown.log
    return json.loads(shown.stdout)


def wait_for(portl, run_id: str, done, timeout: float = 60) -> dict[str, Any]:
    """The run as the ledger shows it, once ``done(run)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        run = run_of(portl, run_id)
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout} s: {run}"
        time.sleep(0.2)


def ended(run: dict[str, Any]) -> bool:
    return run["status"] != "running"


def detached(portl, *args: str) -> str:
    started = portl("run", "job.yaml", "--detach", *args)
    assert started.code == 0, started.log
    run_id = started.stdout.strip()
    assert run_id and "\n" not in run_id, started.log
    return run_id


def loaded_ids(db: Path) -> tuple[int, int, int, int]:
    """count(*), count(DISTINCT id), min(id), max(id) of the destination."""
    return query(db, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM orders")[0]


def test_detach_returns_at_once_with_the_run_id_and_the_run_finishes_in_the_background(portl, slow_job):
    started = portl("run", "job.yaml", "--detach")

    assert started.code == 0, started.log
    run_id = started.stdout.strip()
    # 20 batches of 0.15 s each: the command returned long before the run could have ended.
    assert started.duration_s < 2.5, started.log
    assert f"portl logs {run_id} --follow" in started.stderr, started.log
    assert run_of(portl, run_id)["status"] == "running"
    run = wait_for(portl, run_id, ended)
    assert run["status"] == "succeeded", run
    assert run["counts"]["read"] == ROWS and run["counts"]["inserted"] == ROWS, run
    assert loaded_ids(slow_job) == (ROWS, ROWS, 1, ROWS)
    assert (portl.state_dir / "logs" / f"{run_id}.log").is_file()


def test_a_bad_job_with_detach_exits_2_with_its_problems_and_records_no_run(portl, write):
    write("bad.yaml", """
        name: bad
        source: {type: csv, pth: orders.csv}
        destination: {type: sqlite, path: out.db, table: orders}
    """)

    started = portl("run", "bad.yaml", "--detach")

    assert started.code == 2, started.log
    assert started.stdout == "", started.log
    assert "bad.yaml:2:" in started.stderr and "unknown key 'pth' in source; did you mean 'path'?" in started.stderr, started.log
    listed = portl("runs", "--format", "json")
    assert listed.code != 0 or json.loads(listed.stdout) == [], listed.log
    logs = portl.state_dir / "logs"
    assert not logs.exists() or list(logs.iterdir()) == [], list(logs.iterdir())


def test_detach_refuses_a_dry_run_and_a_job_from_standard_input(portl, slow_job):
    dry = portl("run", "job.yaml", "--detach", "--dry-run")
    piped = portl("run", "-", "--detach")

    assert dry.code == 2 and "--dry-run and --detach exclude each other" in dry.stderr, dry.log
    assert piped.code == 1 and "--detach cannot read the job from standard input" in piped.stderr, piped.log


def test_logs_shows_the_events_and_the_summary_of_a_detached_run(portl, slow_job):
    (portl.cwd / "slow").unlink()
    run_id = detached(portl)
    wait_for(portl, run_id, ended)

    text = portl("logs", run_id)
    as_json = portl("logs", run_id[:15], "--format", "json")

    assert text.code == 0, text.log
    lines = text.stdout.splitlines()
    assert " info     run_started  " in lines[0], text.log
    committed = [line for line in lines if " batch_committed  batch " in line]
    batches = run_of(portl, run_id)["counts"]["batches"]
    assert len(committed) == batches > 1, text.log
    assert f"(run so far: read {ROWS:,}, inserted {ROWS:,}," in committed[-1], text.log
    assert any(" run_finished  status succeeded" in line for line in lines), text.log
    assert f"summary  run {run_id} succeeded: read {ROWS:,}, inserted {ROWS:,}" in lines[-1], text.log
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["event"] for e in events].count("batch_committed") == batches, as_json.log
    assert events[-1]["event"] == "report" and events[-1]["status"] == "succeeded", as_json.log


def test_logs_follow_streams_until_the_run_ends_and_exits_with_its_code(portl, slow_job):
    run_id = detached(portl)

    followed = portl("logs", run_id, "--follow")

    assert followed.code == 0, followed.log
    assert run_of(portl, run_id)["status"] == "succeeded"
    assert followed.stdout.count(" batch_committed  ") == run_of(portl, run_id)["counts"]["batches"], followed.log
    assert f"summary  run {run_id} succeeded" in followed.stdout.splitlines()[-1], followed.log


def test_logs_of_a_run_that_ran_in_the_foreground_says_it_has_no_log(portl, slow_job):
    (portl.cwd / "slow").unlink()
    ran = portl("run", "job.yaml", "--log-format", "json")
    run_id = ran.report["run_id"]

    shown = portl("logs", run_id)

    assert shown.code == 1, shown.log
    assert f"run {run_id} has no log: it ran in the foreground" in shown.stderr, shown.log


@pytest.mark.slow
def test_stop_ends_a_long_run_interrupted_and_resume_loads_every_row_once(portl, slow_job):
    run_id = detached(portl)
    wait_for(portl, run_id, lambda run: run["counts"].get("read", 0) >= 300)

    stopped = portl("stop", run_id)

    assert stopped.code == 0, stopped.log
    run = run_of(portl, run_id)
    assert run["status"] == "interrupted", run
    committed = run["counts"]["read"]
    assert 300 <= committed < ROWS, run
    assert f"run {run_id} interrupted: {committed:,} source rows committed" in stopped.stderr, stopped.log
    assert "--resume" in stopped.stderr, stopped.log
    assert loaded_ids(slow_job) == (committed, committed, 1, committed)
    log = portl("logs", run_id).stdout
    assert "Ctrl-C received: stopping after the current batch" in log, log

    (portl.cwd / "slow").unlink()
    resumed = portl("run", "job.yaml", "--resume")
    assert resumed.code == 0, resumed.log
    assert loaded_ids(slow_job) == (ROWS, ROWS, 1, ROWS)
    assert run_of(portl, run_id)["status"] == "succeeded"


@pytest.mark.slow
def test_stop_asked_twice_waits_for_the_batch_instead_of_aborting_it(portl, slow_job):
    run_id = detached(portl)
    wait_for(portl, run_id, lambda run: run["counts"].get("read", 0) >= 100)
    (portl.cwd / "slow").write_text("1.5")  # batches long enough to outlast the first stop's wait

    first = portl("stop", run_id, "--timeout", "0")
    second = portl("stop", run_id)

    assert first.code == 1 and f"run {run_id} is still running after 0 s" in first.stderr, first.log
    assert second.code == 0, second.log
    assert f"run {run_id} (pid " in second.stderr and "was asked to stop at" in second.stderr, second.log
    run = run_of(portl, run_id)
    assert run["status"] == "interrupted", run
    log = portl("logs", run_id).stdout
    assert "stopped by the user after" in log and "aborted" not in log, log  # the batch in flight committed
    committed = run["counts"]["read"]
    assert loaded_ids(slow_job) == (committed, committed, 1, committed)


@pytest.mark.slow
def test_stop_now_rolls_back_the_batch_in_flight_and_resume_loads_every_row_once(portl, slow_job):
    run_id = detached(portl)
    wait_for(portl, run_id, lambda run: run["counts"].get("read", 0) >= 100)
    (portl.cwd / "slow").write_text("3")

    stopped = portl("stop", run_id, "--now")

    assert stopped.code == 0, stopped.log
    assert "to abort the batch in flight (rolled back)" in stopped.stderr, stopped.log
    run = run_of(portl, run_id)
    assert run["status"] == "interrupted", run
    log = portl("logs", run_id).stdout
    assert "aborted: the batch in flight was rolled back" in log, log
    (portl.cwd / "slow").unlink()
    resumed = portl("run", "job.yaml", "--resume")
    assert resumed.code == 0, resumed.log
    assert loaded_ids(slow_job) == (ROWS, ROWS, 1, ROWS)


def test_stop_of_a_finished_run_says_it_is_not_running_and_exits_1(portl, slow_job):
    (portl.cwd / "slow").unlink()
    run_id = detached(portl)
    wait_for(portl, run_id, ended)

    stopped = portl("stop", run_id)

    assert stopped.code == 1, stopped.log
    assert f"run {run_id} is not running: it ended succeeded" in stopped.stderr, stopped.log
    assert "nothing to stop" in stopped.stderr, stopped.log


def test_stop_never_signals_a_process_that_took_the_pid_of_a_run(portl, tmp_path):
    """A run recorded as running whose pid now belongs to another process (other start time)."""
    from portl.state.ledger import Ledger, this_process

    other = subprocess.Popen(["sleep", "30"])
    try:
        ledger = Ledger(str(portl.state_dir))
        record = ledger.start_run("orders", str(tmp_path / "job.yaml"), "hash", {})
        owner = {**this_process(), "pid": other.pid, "pid_started": "1"}  # not sleep's start time
        ledger._conn.execute("UPDATE runs SET meta = ? WHERE id = ?", (json.dumps({"process": owner}), record.id))
        ledger.close()

        stopped = portl("stop", record.id)

        assert stopped.code == 1, stopped.log
        assert f"run {record.id} is not running: it ended interrupted" in stopped.stderr, stopped.log
        assert other.poll() is None, "the unrelated process was signalled"
    finally:
        other.kill()
        other.wait()


def test_runs_watch_off_a_terminal_prints_the_table_once_with_rows_per_second(portl, slow_job):
    run_id = detached(portl)
    wait_for(portl, run_id, lambda run: run["counts"].get("read", 0) >= 100)

    watched = portl("runs", "--watch")

    assert watched.code == 0, watched.log
    header, row = watched.stdout.splitlines()[:2]
    assert "rows/s" in header.split(), watched.log
    assert row.startswith(run_id) and " running " in row, watched.log
    rate = int(row.split()[header.split().index("rows/s") + 1].replace(",", ""))  # "started" holds a space
    assert rate > 0, watched.log


def test_runs_watch_on_a_terminal_refreshes_until_the_run_ends(portl, slow_job):
    import pexpect

    run_id = detached(portl)
    wait_for(portl, run_id, lambda run: run["counts"].get("read", 0) >= 100)
    # A terminal that moves the cursor (the table is redrawn in place), wide enough for the table.
    watch = pexpect.spawn(PORTL[0], [*PORTL[1:], "runs", "--watch"], cwd=str(portl.cwd), env=portl.env(TERM="xterm"),
                          encoding="utf-8", timeout=60, dimensions=(40, 250))
    try:
        watch.expect_exact("rows/s")
        watch.expect_exact(" running ")
        watch.expect(pexpect.EOF)  # it ends by itself once the run has
    finally:
        watch.close()

    assert watch.exitstatus == 0, watch.before
    assert run_of(portl, run_id)["status"] == "succeeded"
    assert " succeeded " in watch.before, watch.before


def test_logs_on_a_terminal_go_through_the_pager(portl, slow_job):
    import pexpect

    (portl.cwd / "slow").unlink()
    run_id = detached(portl)
    wait_for(portl, run_id, ended)
    paged = portl.cwd / "paged.txt"
    shown = pexpect.spawn(PORTL[0], [*PORTL[1:], "logs", run_id], cwd=str(portl.cwd), encoding="utf-8", timeout=60,
                          env=portl.env(PAGER=f"tee {paged}", TERM="dumb"), dimensions=(40, 250))
    shown.expect(pexpect.EOF)
    shown.close()

    assert shown.exitstatus == 0, shown.before
    text = paged.read_text()
    assert text.splitlines()[0].endswith(" run_started  resumed False, partitions 1, target sqlite out.db:orders"), text
    assert f"summary  run {run_id} succeeded" in text.splitlines()[-1], text
