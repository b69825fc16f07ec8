"""Exactly once from any folder: the ledger follows the job file, and the destination's own
checkpoints decide whether a job has a run to continue.

A job is interrupted after two committed batches, then run again from another folder (relative
and absolute paths to the job file), with another ledger, or resumed from there. For every sink
that commits its checkpoints with its batches (SQLite, CSV, JSON lines, PostgreSQL, MySQL), no
source row is ever loaded twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CrashHook

from .conftest import PORTL, Result

ROWS, BATCH = 3_000, 1_000  # the crash hook fails batch 3: two batches committed


@dataclass
class Target:
    """Where a test job writes, and how to read back the ids that landed there."""

    destination: str
    ids: Callable[[], list[int]]


def _sqlite_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM orders")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _csv_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:] if line]


def _jsonl_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line]


def _pg_ids(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('public.orders')").fetchone()[0] is None:
            return []
        return [r[0] for r in conn.execute("SELECT id FROM orders")]


def _mysql_ids(url: str) -> list[int]:
    import pymysql

    database = url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=database)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'orders'")
            if not cur.fetchall():
                return []
            cur.execute("SELECT id FROM orders")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


SINKS = ["sqlite", "csv", "jsonl", "postgres", "mysql"]


@pytest.fixture
def target(request, tmp_path: Path) -> Callable[[str], Target]:
    def make(kind: str) -> Target:
        jobs = tmp_path / "jobs"
        if kind == "sqlite":
            return Target("{type: sqlite, path: out.db, table: orders}", lambda: _sqlite_ids(jobs / "out.db"))
        if kind == "csv":
            return Target("{type: csv, path: out.csv}", lambda: _csv_ids(jobs / "out.csv"))
        if kind == "jsonl":
            return Target("{type: jsonl, path: out.jsonl}", lambda: _jsonl_ids(jobs / "out.jsonl"))
        if kind == "postgres":
            url = request.getfixturevalue("pg_url")
            return Target(f"{{type: postgres, url: '{url}', table: orders}}", lambda: _pg_ids(url))
        url = request.getfixturevalue("mysql_url")
        return Target(f"{{type: mysql, url: '{url}', table: orders}}", lambda: _mysql_ids(url))

    return make


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, CrashHook]:
    """``jobs/`` (the job, its source and its crash hook) and ``elsewhere/`` (an unrelated folder)."""
    jobs, elsewhere = tmp_path / "jobs", tmp_path / "elsewhere"
    jobs.mkdir()
    elsewhere.mkdir()
    lines = ["id,name,amount"] + [f"{i},name {i},{i}.50" for i in range(1, ROWS + 1)]
    (jobs / "orders.csv").write_text("\n".join(lines) + "\n")
    return jobs, elsewhere, CrashHook(jobs, monkeypatch)


def portl(cwd: Path, *args: str, **env: str) -> Result:
    """``portl`` in ``cwd`` with no ledger setting of its own: the default place is under test."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PORTL_STATE_DIR", "PORTL_HOME", "PORTL_DEBUG")}
    environ.update(COLUMNS="400", NO_COLOR="1", **env)
    done = subprocess.run([*PORTL, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=environ)
    return Result(list(args), done.returncode, done.stdout, done.stderr, 0.0)


def write_job(jobs: Path, destination: str, upsert: bool = False) -> Path:
    text = f"""\
        name: orders
        source: {{type: csv, path: orders.csv}}
        destination: {destination}
        batch: {{size: {BATCH}}}
        mapping: {{auto: true, columns: {{id: {{type: bigint}}, amount: {{type: "decimal(10,2)"}}}}}}
        hooks: {{before_batch: {{type: python, function: 'crashhooks:before_batch'}}}}
        """
    text = textwrap.dedent(text) + ("conflict: {key: id, strategy: overwrite}\n" if upsert else "")
    path = jobs / "job.yaml"
    path.write_text(text)
    return path


def interrupted(jobs: Path, crash: CrashHook, target: Target) -> list[int]:
    """Run the job until its crash hook stops it; returns the ids it committed (a prefix of the file)."""
    crash.arm()
    first = portl(jobs, "run", "job.yaml")
    crash.disarm()
    assert first.code != 0, first.log
    committed = sorted(target.ids())
    assert 0 < len(committed) < ROWS and committed == list(range(1, len(committed) + 1)), first.log
    return committed


@pytest.mark.parametrize("kind", SINKS)
def test_an_interrupted_append_is_refused_from_any_folder_and_resumed_from_another_ledger(kind, folders, target):
    jobs, elsewhere, crash = folders
    where = target(kind)
    job = write_job(jobs, where.destination)
    committed = interrupted(jobs, crash, where)
    assert (jobs / ".portl" / "state.db").exists(), "the ledger lives beside the job file"

    for path in (os.path.relpath(job, elsewhere), str(job)):
        again = portl(elsewhere, "run", path)
        assert again.code == 2, again.log
        said = " ".join(again.stderr.split())
        assert "appending again would load them twice" in said and "--resume" in said, again.log
    other_ledger = portl(elsewhere, "run", str(job), "--state-dir", str(elsewhere / "other-ledger"))
    assert other_ledger.code == 2 and "--resume" in other_ledger.stderr, other_ledger.log
    assert sorted(where.ids()) == committed
    assert not (elsewhere / ".portl").exists(), "no ledger is left in the folder portl was started from"

    resumed = portl(elsewhere, "run", os.path.relpath(job, elsewhere), "--resume", PORTL_STATE_DIR=str(elsewhere / "fresh"))
    assert resumed.code == 0, resumed.log
    assert "continued from the checkpoints committed in" in " ".join(resumed.stderr.split()), resumed.log
    assert sorted(where.ids()) == list(range(1, ROWS + 1))

    # The first ledger still thinks its run unfinished; the destination knows better.
    finished = portl(jobs, "run", "job.yaml", "--resume")
    said = " ".join(finished.stderr.split())
    if kind in ("csv", "jsonl"):
        # A file keeps no checkpoint once its run has finished: it is a file that holds data, which
        # a job without mode: does not touch.
        assert finished.code == 2 and "already exists and the job does not say what to do with it" in said, finished.log
    else:
        assert finished.code == 0 and "already finished" in said, finished.log
    assert sorted(where.ids()) == list(range(1, ROWS + 1))


def test_a_resume_from_the_first_folder_after_a_refused_run_elsewhere_loads_each_row_once(folders, target):
    jobs, elsewhere, crash = folders
    where = target("sqlite")
    job = write_job(jobs, where.destination)
    interrupted(jobs, crash, where)
    assert portl(elsewhere, "run", str(job)).code == 2

    resumed = portl(jobs, "run", "job.yaml", "--resume")

    assert resumed.code == 0, resumed.log
    assert sorted(where.ids()) == list(range(1, ROWS + 1))


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_a_new_upsert_run_after_an_interrupted_one_says_what_it_does_and_duplicates_nothing(kind, folders, target):
    jobs, elsewhere, crash = folders
    where = target(kind)
    job = write_job(jobs, where.destination, upsert=True)
    committed = interrupted(jobs, crash, where)

    again = portl(elsewhere, "run", str(job), PORTL_STATE_DIR=str(elsewhere / "ledger"))

    assert again.code == 0, again.log
    said = " ".join(again.stderr.split())
    assert f"stopped after committing {len(committed):,} source rows" in said, again.log
    assert "keys already loaded are updated" in said, again.log
    assert sorted(where.ids()) == list(range(1, ROWS + 1))
    # The interrupted run can no longer be continued: a later append-style check finds nothing.
    third = portl(jobs, "run", "job.yaml")
    assert third.code == 0 and "stopped after committing" not in third.stderr, third.log


def test_a_resume_with_nothing_to_resume_leaves_no_ledger_behind(folders, target):
    jobs, elsewhere, _ = folders
    job = write_job(jobs, target("sqlite").destination)

    result = portl(elsewhere, "run", str(job), "--resume", PORTL_STATE_DIR=str(elsewhere / "ledger"))

    assert result.code == 2, result.log
    assert "nothing to resume" in result.stderr, result.log
    assert not (elsewhere / "ledger").exists()
    assert not (jobs / ".portl").exists()


def test_portl_home_holds_the_ledger_when_set(folders, target, tmp_path):
    jobs, elsewhere, _ = folders
    write_job(jobs, target("sqlite").destination)

    result = portl(jobs, "run", "job.yaml", PORTL_HOME=str(tmp_path / "home"))

    assert result.code == 0, result.log
    assert (tmp_path / "home" / "state.db").exists()
    assert not (jobs / ".portl").exists()
