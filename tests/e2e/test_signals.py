"""Stopping a run from outside: SIGTERM, a second Ctrl-C, and ``kill -9``.

Each test loads a CSV into SQLite in small batches, each slowed by a ``before_batch`` hook so that
signals land mid-run, then checks the exit code, the message, what the destination holds, what
``portl runs`` says, and that ``--resume`` loads every row exactly once.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from .conftest import query
from .test_resume import Running

ROWS = 2_000


@pytest.fixture
def slow_job(write, tmp_path: Path) -> Path:
    write("orders.csv", "id,name\n" + "".join(f"{i},name {i}\n" for i in range(1, ROWS + 1)))
    write("slowhooks.py", """
        import os
        import time

        def before_batch(payload):
            # While the file 'slow' is there, batch 3 and later take long enough for two signals
            # to land while one is in flight.
            if os.path.exists("slow"):
                time.sleep(0.2 if payload["batch"] < 3 else 1.5)
    """)
    write("job.yaml", """
        name: orders
        source: {type: csv, path: orders.csv}
        destination: {type: sqlite, path: out.db, table: orders}
        batch: {size: 100}
        mapping: {auto: true, columns: {id: {type: bigint}}}
        hooks: {before_batch: {type: python, function: 'slowhooks:before_batch'}}
    """)
    return tmp_path / "out.db"


def ids(db: Path) -> list[int]:
    return sorted(r[0] for r in query(db, "SELECT id FROM orders"))


def started(portl) -> Running:
    slow = portl.cwd / "slow"
    slow.write_text("")
    running = Running(portl.start("run", "job.yaml", "--log-format", "json"))
    assert running.wait_for(lambda e: e.get("event") == "batch_committed" and e["batch"] >= 2) is not None, \
        running.log
    running.finish = _then_fast(running.finish, slow)
    return running


def _then_fast(finish, slow: Path):
    def finished(*args, **kwargs):
        code = finish(*args, **kwargs)
        slow.unlink()  # the resumed run goes at full speed
        return code

    return finished


def resume_completes(portl, db: Path) -> None:
    resumed = portl("run", "job.yaml", "--resume")
    assert resumed.code == 0, resumed.log
    assert ids(db) == list(range(1, ROWS + 1))


def test_sigterm_stops_after_the_current_batch_with_exit_143_and_the_run_resumes(portl, slow_job):
    running = started(portl)
    running.proc.send_signal(signal.SIGTERM)

    code = running.finish()

    assert code == 143, running.log
    assert "SIGTERM received: stopping after the current batch" in running.stderr, running.log
    stopped = re.search(r"stopped by the user after \d+ committed batch(?:es)? \(([\d,]+) source rows?\)", running.stderr)
    assert stopped, running.log
    committed = int(stopped.group(1).replace(",", ""))
    assert ids(slow_job) == list(range(1, committed + 1))
    listed = portl("runs", "--format", "json")
    assert '"interrupted"' in listed.stdout, listed.log
    resume_completes(portl, slow_job)


def test_a_second_ctrl_c_says_the_batch_in_flight_was_rolled_back_and_what_is_kept(portl, slow_job):
    second_ctrl_c(portl, lambda: ids(slow_job))


def test_a_second_ctrl_c_rolls_back_the_batches_in_flight_of_a_pipelined_postgres_load(portl, slow_job, pg_url):
    """Postgres takes several writers: a lone partition writes two batches at once (engine.pipeline)."""
    import psycopg

    job = slow_job.parent / "job.yaml"
    job.write_text(job.read_text().replace("{type: sqlite, path: out.db, table: orders}",
                                           f"{{type: postgres, url: '{pg_url}', table: orders}}"))

    def pg_ids() -> list[int]:
        with psycopg.connect(pg_url) as conn:
            return sorted(r[0] for r in conn.execute("SELECT id FROM orders"))

    second_ctrl_c(portl, pg_ids)


def second_ctrl_c(portl, loaded) -> None:
    running = started(portl)
    time.sleep(0.1)
    running.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    running.proc.send_signal(signal.SIGINT)

    code = running.finish()

    assert code == 130, running.log
    said = " ".join(running.stderr.split())
    aborted = re.search(r"aborted: the batch in flight was rolled back; ([\d,]+) committed batch(?:es)? \(([\d,]+) "
                        r"source rows?\) are kept, each with its checkpoint\. Continue with: portl run \S+ --resume", said)
    assert aborted, running.log
    assert loaded() == list(range(1, int(aborted.group(2).replace(",", "")) + 1))
    resumed = portl("run", "job.yaml", "--resume")
    assert resumed.code == 0, resumed.log
    assert loaded() == list(range(1, ROWS + 1))


def test_a_run_killed_with_sigkill_is_listed_as_interrupted_with_what_it_committed(portl, slow_job):
    running = started(portl)
    running.proc.send_signal(signal.SIGKILL)
    assert running.finish() == -signal.SIGKILL
    committed = len(ids(slow_job))
    assert 0 < committed < ROWS

    listed = portl("runs", "--format", "json")

    assert listed.code == 0, listed.log
    runs = listed_runs(listed.stdout)
    assert runs[0]["status"] == "interrupted", listed.log
    # The ledger's copy of the checkpoints is written behind the commits: at most one batch behind.
    assert committed - 100 <= runs[0]["counts"]["read"] <= committed, listed.log
    shown = portl("runs", "show", runs[0]["run_id"])
    assert "interrupted" in shown.stdout and "killed" in " ".join(shown.stdout.split()), shown.log
    resume_completes(portl, slow_job)


def listed_runs(stdout: str) -> list[dict]:
    import json

    data = json.loads(stdout)
    return data["runs"] if isinstance(data, dict) else data
