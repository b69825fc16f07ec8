"""Crashes and Ctrl-C on a real load: 200,000 CSV rows into SQLite in batches of 5,000.

``kill -9`` at random moments, then ``portl run --resume``, must leave every source row loaded
exactly once; Ctrl-C must stop after a whole batch with exit code 130 and resume cleanly.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from .conftest import assert_balanced, query

ROWS = 200_000
BATCH = 5_000


@dataclass(frozen=True)
class Source:
    """The generated CSV file and what a complete load of it must add up to."""

    path: Path
    qty_sum: int
    amount_cents_sum: int


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Source:
    """200,000 rows, 8 columns, unique ids 1..200000, the same every time (seeded)."""
    rng = random.Random(20261122)
    path = tmp_path_factory.mktemp("resume") / "orders.csv"
    lines = ["id,customer,email,amount,qty,ordered_on,paid,country"]
    qty_sum = cents_sum = 0
    countries = ("us", "gb", "de", "fr", "nl")
    for i in range(1, ROWS + 1):
        cents, qty = rng.randrange(0, 10_000_000), rng.randrange(0, 1000)
        qty_sum += qty
        cents_sum += cents
        ordered_on = f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        lines.append(
            f"{i},customer {rng.randrange(1, 50_000)},user{i}@example.com,{cents // 100}.{cents % 100:02d},{qty},"
            f"{ordered_on},{rng.choice(('yes', 'no'))},{rng.choice(countries)}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Source(path, qty_sum, cents_sum)


def job_text(source: Source, db: str, upsert: bool) -> str:
    text = f"""\
name: orders
source: {{type: csv, path: "{source.path}"}}
destination: {{type: sqlite, path: {db}, table: orders}}
batch: {{size: {BATCH}}}
mapping:
  auto: true
  columns:
    id: {{type: bigint}}
    amount: {{type: "decimal(12,2)"}}
    qty: {{type: int}}
    ordered_on: {{type: date}}
    paid: {{type: bool}}
"""
    return text + ("conflict: {key: id, strategy: overwrite}\n" if upsert else "")


class Running:
    """A ``portl run --log-format json`` in progress; its events are collected as they arrive."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._closed = False
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        self.stderr = self.proc.stderr.read()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60,
                 *, must: bool = True) -> dict[str, Any] | None:
        """The first event ``wanted`` accepts, or None when the output ends without one (or, unless
        ``must``, when ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.events if wanted(e)), None)
                if found is not None or self._closed:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    assert not must, f"no such event within {timeout} s; events so far: {self.events}"
                    return None
                self._changed.wait(left)

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=10)
        return code

    @property
    def log(self) -> str:
        return "\n".join(json.dumps(e) for e in self.events) + "\n--- stderr\n" + self.stderr


def destination_totals(db: Path) -> tuple[int, int, int, int]:
    """count(*), count(DISTINCT id), sum(qty), sum(amount) in cents."""
    ((rows, ids, qty, cents),) = query(
        db, "SELECT count(*), count(DISTINCT id), sum(qty), sum(CAST(round(amount * 100) AS INTEGER)) FROM orders"
    )
    return rows, ids, qty or 0, cents or 0


def committed_rows(db: Path) -> int:
    if not db.exists() or not query(db, "SELECT 1 FROM sqlite_master WHERE name = 'orders'"):
        return 0
    return query(db, "SELECT count(*) FROM orders")[0][0]


def _run_duration(portl, write, source: Source, upsert: bool) -> float:
    """One uninterrupted run into its own database: seconds from run_started to the end."""
    write("measure.yaml", job_text(source, "measure.db", upsert))
    result = portl("run", "measure.yaml", "--log-format", "json")
    assert result.code == 0, result.log
    assert result.report["counts"]["inserted"] == ROWS
    return result.report["duration_s"]


@pytest.mark.slow
@pytest.mark.parametrize("upsert", [False, True], ids=["append", "upsert-overwrite"])
def test_kill_9_at_random_moments_then_resume_loads_every_row_exactly_once(portl, write, tmp_path, source, upsert):
    window = max(0.5, _run_duration(portl, write, source, upsert))
    rng = random.Random(4242 + upsert)
    write("job.yaml", job_text(source, "out.db", upsert))
    db = tmp_path / "out.db"

    args = ["run", "job.yaml", "--log-format", "json"]
    kills: list[tuple[float, int, int]] = []  # (seconds after run_started, exit code, rows in the destination)
    mid_load = lambda: [k for k in kills if k[1] == -signal.SIGKILL and 0 < k[2] < ROWS]  # noqa: E731
    while len(kills) < 6 and len(mid_load()) < 3:
        # A random moment between 0.2 s and the expected time of the work still to do. This run may go
        # faster than the measured one, so it is also killed once it has done 90% of that work: the
        # kill lands in the middle of the load, in a batch or between two.
        done = committed_rows(db)
        left = window * (1 - done / ROWS)
        delay = rng.uniform(0.2, max(0.3, left))
        cap = done + 0.9 * (ROWS - done)
        running = Running(portl.start(*args))
        started = running.wait_for(lambda e: e["event"] in ("run_started", "nothing_to_resume"))
        assert started is not None, running.log
        if started["event"] == "nothing_to_resume":  # the previous kill came after the run had finished
            assert running.finish() == 0, running.log
            break
        t0 = time.monotonic()
        running.wait_for(lambda e: e["event"] == "batch_committed" and e["details"]["totals"]["read"] >= cap,
                         timeout=delay, must=False)
        running.proc.kill()
        code = running.finish()
        assert code in (0, -signal.SIGKILL), running.log
        kills.append((round(time.monotonic() - t0, 2), code, committed_rows(db)))
        if code == 0:
            break
        args = ["run", "job.yaml", "--resume", "--log-format", "json"]

    result = portl("run", "job.yaml", "--resume", "--log-format", "json")

    assert result.code == 0, result.log
    assert mid_load(), f"no kill landed in the middle of the load, so no resume was tested: {kills}, window {window} s"
    assert destination_totals(db) == (ROWS, ROWS, source.qty_sum, source.amount_cents_sum)
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["updated"], counts["rejected"]) == (ROWS, ROWS, 0, 0)


@pytest.mark.slow
def test_plain_run_after_a_killed_append_run_refuses_and_names_resume_and_restart(portl, write, tmp_path, source):
    write("job.yaml", job_text(source, "out.db", upsert=False))
    db = tmp_path / "out.db"
    running = Running(portl.start("run", "job.yaml", "--log-format", "json"))
    assert running.wait_for(lambda e: e["event"] == "batch_committed") is not None, running.log
    running.proc.kill()
    assert running.finish() == -signal.SIGKILL, running.log
    rows = committed_rows(db)
    assert 0 < rows < ROWS

    result = portl("run", "job.yaml")

    assert result.code == 2, result.log
    assert "Traceback" not in result.stderr, result.log
    assert f"stopped after committing {rows:,} source rows" in result.stderr, result.log
    assert "--resume" in result.stderr and "--restart" in result.stderr, result.log
    assert committed_rows(db) == rows


@pytest.mark.slow
def test_ctrl_c_stops_after_a_whole_batch_with_exit_130_and_resume_completes(portl, write, tmp_path, source):
    write("job.yaml", job_text(source, "out.db", upsert=False))
    db = tmp_path / "out.db"
    running = Running(portl.start("run", "job.yaml", "--log-format", "json"))
    assert running.wait_for(lambda e: e["event"] == "batch_committed" and e["batch"] == 2) is not None, running.log
    running.proc.send_signal(signal.SIGINT)

    code = running.finish()

    assert code == 130, running.log
    assert "stopping after the current batch" in running.stderr, running.log
    stopped = re.search(r"stopped by the user after (\d+) committed batches \(([\d,]+) source rows\)", running.stderr)
    assert stopped, running.log
    assert "portl run" in running.stderr and "--resume" in running.stderr, running.log
    batches = [e for e in running.events if e["event"] == "batch_committed"]
    finished = next(e for e in running.events if e["event"] == "run_finished")["details"]
    assert finished["status"] == "interrupted"
    # The destination holds exactly the batches that were reported committed, each one whole.
    rows = committed_rows(db)
    assert int(stopped.group(1)) == len(batches) and int(stopped.group(2).replace(",", "")) == rows
    assert rows == sum(e["details"]["rows"] for e in batches) == finished["counts"]["inserted"]
    assert 0 < rows < ROWS
    assert all(abs(e["details"]["rows"] - BATCH) <= BATCH // 10 for e in batches), batches

    result = portl("run", "job.yaml", "--resume", "--log-format", "json")

    assert result.code == 0, result.log
    assert result.report["resumed"] is True
    assert_balanced(result.report["counts"])
    assert destination_totals(db) == (ROWS, ROWS, source.qty_sum, source.amount_cents_sum)
