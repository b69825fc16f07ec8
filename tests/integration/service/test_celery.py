"""The Celery executor: jobs sent through Redis run on real `portl worker` processes, sharing the
state database (a SQLite file, or PostgreSQL), are cancelled through it, and a job whose worker
was killed is delivered again and loads each row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from portl.service.executor import CeleryExecutor, executor_for
from portl.service.status import JobStatus
from tests.integration.service.apiserver import PORTL
from tests.integration.service.celeryworkers import Workers, flush, redis_broker
from tests.service_jobs import (add_job, add_tenant, batches, files, ids_in, job, people_job, postgres_store, rejected,
                                sqlite_store, wait_for, wait_rows_done, write_people, write_slow_hook)

REDIS_DATABASE = 11
SLOW_ROWS = 1500
SLOW_BATCH = 10  # 150 batches of 20 ms: seconds, far more than any test waits before acting
VISIBILITY_S = 3  # a killed worker's task goes back to the queue this soon


@pytest.fixture
def broker(monkeypatch):
    url = redis_broker(REDIS_DATABASE)
    monkeypatch.setenv("PORTL_BROKER", url)
    monkeypatch.setenv("PORTL_BROKER_VISIBILITY_TIMEOUT", str(VISIBILITY_S))
    yield url
    flush(url)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path, broker):
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        with postgres_store(tmp_path, url) as opened:
            yield opened
    else:
        with sqlite_store(tmp_path) as opened:
            yield opened


@pytest.fixture
def sqlite_only(tmp_path, broker):
    with sqlite_store(tmp_path) as opened:
        yield opened


def workers_for(store, broker) -> Workers:
    database = None if store.settings.is_sqlite else store.settings.database_url
    return Workers(store.settings.home, broker, database, VISIBILITY_S)


@pytest.fixture
def workers():
    made: list[Workers] = []

    def make(store, broker) -> Workers:
        made.append(workers_for(store, broker))
        return made[-1]

    yield make
    for w in made:
        w.stop_all()


@pytest.fixture
def executor():
    made: list[CeleryExecutor] = []

    def make(store) -> CeleryExecutor:
        made.append(executor_for(store))
        return made[-1]

    yield make
    for e in made:
        e.close()


def slow_tenant(store, name: str = "acme") -> int:
    tenant = add_tenant(store, name, code_hooks=True)
    write_people(files(store, tenant), SLOW_ROWS)
    write_slow_hook(files(store, tenant))
    return tenant


def slow_job(store, tenant: int, db: str = "out.db"):
    return add_job(store, tenant, people_job(batch=SLOW_BATCH, slow=True, db=db))


def test_a_job_sent_to_a_worker_runs_there_and_loads_each_row_once(store, broker, workers, executor):
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 200, bad_every=50)
    job_id = add_job(store, tenant, people_job(batch=64))
    pool = workers(store, broker)
    pool.start()
    sender = executor(store)

    sender.submit(job_id)

    done = wait_for(store, job_id, timeout=60)
    assert sender.kind == "celery"
    assert done.status == JobStatus.SUCCEEDED, f"{done.error}\n{pool.output()}"
    assert ids_in(files(store, tenant) / "out.db") == [i for i in range(1, 201) if i % 50]
    assert (done.counts["read"], done.counts["inserted"], done.counts["rejected"]) == (200, 196, 4)
    assert [e.source_location for e in rejected(store, job_id)] == [
        f"people.csv, line {n + 1}, record {n}" for n in (50, 100, 150, 200)]
    assert done.attempts == 1


def test_cancelling_a_running_job_stops_it_on_its_worker_after_a_whole_batch(sqlite_only, broker, workers, executor):
    store = sqlite_only
    tenant = slow_tenant(store)
    job_id = slow_job(store, tenant)
    workers(store, broker).start()
    sender = executor(store)
    sender.submit(job_id)
    wait_rows_done(store, job_id, 50, timeout=60)

    sender.cancel(job_id)

    assert job(store, job_id).status in (JobStatus.CANCELLING, JobStatus.CANCELLED)
    done = wait_for(store, job_id, timeout=30)
    assert done.status == JobStatus.CANCELLED
    loaded = ids_in(files(store, tenant) / "out.db")
    assert 50 <= len(loaded) < SLOW_ROWS
    assert len(loaded) % SLOW_BATCH == 0
    assert loaded == list(range(1, len(loaded) + 1))
    assert done.counts["read"] == len(loaded) == done.rows_done


def test_a_cancelled_queued_job_is_cancelled_at_once_and_its_task_runs_nothing(sqlite_only, broker, workers, executor):
    store = sqlite_only
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 30)
    cancelled = add_job(store, tenant, people_job(db="cancelled.db"))
    after = add_job(store, tenant, people_job(db="after.db"))
    sender = executor(store)
    sender.submit(cancelled)
    sender.submit(after)

    sender.cancel(cancelled)

    assert job(store, cancelled).status == JobStatus.CANCELLED
    workers(store, broker).start()  # one job at a time, in the order sent
    assert wait_for(store, after, timeout=60).status == JobStatus.SUCCEEDED
    assert job(store, cancelled).status == JobStatus.CANCELLED
    assert job(store, cancelled).attempts == 0
    assert not (files(store, tenant) / "cancelled.db").exists()


def test_a_job_whose_worker_is_killed_runs_again_on_another_and_loads_each_row_once(sqlite_only, broker, workers,
                                                                                     executor):
    store = sqlite_only
    tenant = slow_tenant(store)
    job_id = slow_job(store, tenant)
    pool = workers(store, broker)
    first = pool.start()
    executor(store).submit(job_id)
    wait_rows_done(store, job_id, 100, timeout=60)

    pool.kill(first)
    stopped_at = len(ids_in(files(store, tenant) / "out.db"))
    assert job(store, job_id).status == JobStatus.RUNNING
    assert 100 <= stopped_at < SLOW_ROWS
    pool.start()

    done = wait_for(store, job_id, timeout=90)
    assert done.status == JobStatus.SUCCEEDED, f"{done.error}\n{pool.output()}"
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, SLOW_ROWS + 1))
    assert done.counts["read"] == SLOW_ROWS == done.counts["inserted"]
    # The job started once; its one batch was taken over by the second worker.
    assert done.attempts == 1 and [b.attempts for b in batches(store, job_id)] == [2]


def test_the_worker_says_to_set_the_broker_when_it_is_unset(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PORTL_HOME": str(tmp_path / "home")}

    result = subprocess.run([*PORTL, "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "PORTL_BROKER is not set: set it to the Redis broker" in result.stderr


def test_the_worker_says_which_broker_it_cannot_reach(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PORTL_HOME": str(tmp_path / "home"), "PORTL_BROKER": "redis://127.0.0.1:1/0"}

    result = subprocess.run([*PORTL, "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "cannot reach the broker redis://127.0.0.1:1/0 (PORTL_BROKER)" in result.stderr
    assert "start Redis there, or fix PORTL_BROKER" in result.stderr


def test_a_worker_stopped_with_sigterm_finishes_its_running_job_first(sqlite_only, broker, workers, executor):
    store = sqlite_only
    tenant = slow_tenant(store)
    job_id = slow_job(store, tenant)
    pool = workers(store, broker)
    worker = pool.start()
    executor(store).submit(job_id)
    wait_rows_done(store, job_id, 100, timeout=60)

    os.kill(worker.pid, signal.SIGTERM)

    assert worker.wait(timeout=60) == 0
    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED, f"{done.error}\n{pool.output()}"
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, SLOW_ROWS + 1))


def test_a_worker_stopped_at_once_by_a_second_ctrl_c_leaves_its_job_to_the_next(sqlite_only, broker, workers,
                                                                                 executor):
    store = sqlite_only
    tenant = slow_tenant(store)
    job_id = slow_job(store, tenant)
    pool = workers(store, broker)
    worker = pool.start()
    executor(store).submit(job_id)
    wait_rows_done(store, job_id, 100, timeout=60)

    os.kill(worker.pid, signal.SIGINT)
    time.sleep(0.2)  # the second Ctrl-C of someone in a hurry
    os.kill(worker.pid, signal.SIGINT)
    worker.wait(timeout=30)
    assert job(store, job_id).status == JobStatus.RUNNING
    assert len(ids_in(files(store, tenant) / "out.db")) < SLOW_ROWS
    pool.start()

    done = wait_for(store, job_id, timeout=60)
    assert done.status == JobStatus.SUCCEEDED, f"{done.error}\n{pool.output()}"
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, SLOW_ROWS + 1))
    assert done.counts["read"] == SLOW_ROWS == done.counts["inserted"]
    assert done.attempts == 1 and [b.attempts for b in batches(store, job_id)] == [2]
