"""The in-process executor: submitted jobs run on its threads within each tenant's limit, cancel
stops them after a whole batch, and a new executor takes back what a stopped one left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from portl.errors import ServiceError
from portl.service.executor import InProcessExecutor, executor_for
from portl.service.status import JobStatus
from tests.service_jobs import (add_job, add_tenant, files, ids_in, job, people_job, postgres_store, rejected,
                                set_status, sqlite_store, wait_for, wait_rows_done, write_people, write_slow_hook)

SLOW_ROWS = 1500
SLOW_BATCH = 10  # 150 batches of 20 ms: several seconds, far more than any test waits before acting


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTL_BROKER", raising=False)
    with sqlite_store(tmp_path) as opened:
        yield opened


@pytest.fixture
def executors(store):
    """``make(workers=4)``: an executor taking back what is left; every one is closed after the test."""
    made: list[InProcessExecutor] = []

    def make(workers: int = 4) -> InProcessExecutor:
        made.append(executor_for(store, workers))
        return made[-1]

    yield make
    for executor in made:
        executor.close()


def slow_tenant(store, name: str, **limits) -> int:
    tenant = add_tenant(store, name, code_hooks=True, **limits)
    write_people(files(store, tenant), SLOW_ROWS)
    write_slow_hook(files(store, tenant))
    return tenant


def slow_job(store, tenant: int, db: str = "out.db"):
    return add_job(store, tenant, people_job(batch=SLOW_BATCH, slow=True, db=db))


def test_a_submitted_job_runs_to_success(store, executors):
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 200, bad_every=50)
    job_id = add_job(store, tenant, people_job(batch=64))

    executors().submit(job_id)

    done = wait_for(store, job_id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in(files(store, tenant) / "out.db") == [i for i in range(1, 201) if i % 50]
    assert (done.counts["read"], done.counts["inserted"], done.counts["rejected"]) == (200, 196, 4)
    assert len(rejected(store, job_id)) == 4


def test_cancelling_a_queued_job_cancels_it_at_once_and_it_never_runs(store, executors):
    tenant = slow_tenant(store, "acme", max_running_jobs=1)
    first, second = slow_job(store, tenant), slow_job(store, tenant, db="second.db")
    executor = executors()
    executor.submit(first)
    wait_for(store, first, (JobStatus.RUNNING,))
    executor.submit(second)
    assert executor.waiting() == [second]

    executor.cancel(second)

    assert job(store, second).status == JobStatus.CANCELLED
    assert executor.waiting() == []
    executor.cancel(first)
    wait_for(store, first)
    assert job(store, second).attempts == 0
    assert not (files(store, tenant) / "second.db").exists()


def test_cancelling_a_running_job_stops_it_after_a_whole_batch(store, executors):
    tenant = slow_tenant(store, "acme")
    job_id = slow_job(store, tenant)
    executor = executors()
    executor.submit(job_id)
    wait_rows_done(store, job_id, 50)

    executor.cancel(job_id)

    assert job(store, job_id).status in (JobStatus.CANCELLING, JobStatus.CANCELLED)
    done = wait_for(store, job_id)
    assert done.status == JobStatus.CANCELLED
    loaded = ids_in(files(store, tenant) / "out.db")
    assert 50 <= len(loaded) < SLOW_ROWS
    assert len(loaded) % SLOW_BATCH == 0
    assert loaded == list(range(1, len(loaded) + 1))
    assert done.counts["read"] == len(loaded) == done.rows_done
    assert done.finished_at is not None


def test_a_tenant_at_its_limit_waits_while_another_tenants_job_starts(store, executors):
    acme = slow_tenant(store, "acme", max_running_jobs=1)
    globex = add_tenant(store, "globex")
    write_people(files(store, globex), 20)
    acme_jobs = [slow_job(store, acme, db=f"out{i}.db") for i in range(3)]
    globex_job = add_job(store, globex, people_job())
    executor = executors(workers=4)

    for job_id in acme_jobs + [globex_job]:
        executor.submit(job_id)

    assert wait_for(store, globex_job).status == JobStatus.SUCCEEDED
    # The other tenant's job may still be leaving the executor's books after its status was written.
    assert [j for j in executor.running() if j != globex_job] == [acme_jobs[0]]
    assert executor.waiting() == acme_jobs[1:]
    assert [job(store, j).status for j in acme_jobs[1:]] == [JobStatus.QUEUED] * 2
    for job_id in acme_jobs:
        executor.cancel(job_id)
    assert [wait_for(store, j).status for j in acme_jobs] == [JobStatus.CANCELLED] * 3


def test_a_job_left_running_by_a_stopped_executor_is_resumed_by_the_next_exactly_once(store, executors):
    tenant = slow_tenant(store, "acme")
    job_id = slow_job(store, tenant)
    first = executors()
    first.submit(job_id)
    wait_rows_done(store, job_id, 50)

    first.close()

    assert job(store, job_id).status == JobStatus.RUNNING
    stopped_at = len(ids_in(files(store, tenant) / "out.db"))
    assert 50 <= stopped_at < SLOW_ROWS
    executors()
    done = wait_for(store, job_id, timeout=60)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, SLOW_ROWS + 1))
    assert done.counts["read"] == SLOW_ROWS == done.counts["inserted"]
    assert done.attempts == 2


def test_queued_jobs_of_a_stopped_executor_run_on_the_next_one(store, executors):
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 10)
    job_id = add_job(store, tenant, people_job())

    executors()

    assert wait_for(store, job_id).status == JobStatus.SUCCEEDED
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, 11))


def test_a_job_left_cancelling_is_cancelled_by_the_next_executor(store, executors):
    tenant = add_tenant(store, "acme")
    job_id = add_job(store, tenant, people_job())
    set_status(store, job_id, JobStatus.CANCELLING)
    executors()

    assert job(store, job_id).status == JobStatus.CANCELLED


def test_a_broker_that_cannot_be_reached_is_refused_naming_it(store, monkeypatch):
    monkeypatch.setenv("PORTL_BROKER", "redis://127.0.0.1:1/0")

    with pytest.raises(ServiceError, match=r"cannot reach the broker redis://127\.0\.0\.1:1/0 \(PORTL_BROKER\)"):
        executor_for(store)


def test_a_closed_executor_takes_no_more_jobs_and_they_stay_queued(store, executors):
    tenant = add_tenant(store, "acme")
    job_id = add_job(store, tenant, people_job())
    executor = InProcessExecutor(store, 1)
    executor.close()

    with pytest.raises(ServiceError, match="closed"):
        executor.submit(job_id)
    assert job(store, job_id).status == JobStatus.QUEUED


def test_jobs_run_with_the_state_database_on_postgresql(tmp_path, pg_url, monkeypatch):
    monkeypatch.delenv("PORTL_BROKER", raising=False)
    with postgres_store(tmp_path, pg_url) as store:
        tenant = add_tenant(store, "acme")
        write_people(files(store, tenant), 100, bad_every=25)
        job_id = add_job(store, tenant, people_job(batch=30))
        executor = executor_for(store, 2)
        try:
            executor.submit(job_id)
            done = wait_for(store, job_id)
        finally:
            executor.close()
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert (done.counts["read"], done.counts["inserted"], done.counts["rejected"]) == (100, 96, 4)
        assert [e.source_location for e in rejected(store, job_id)] == [
            f"people.csv, line {n + 1}, record {n}" for n in (25, 50, 75, 100)]
        assert ids_in(files(store, tenant) / "out.db") == [i for i in range(1, 101) if i % 25]


KILLED_SERVICE = """
import sys, threading
from pathlib import Path
from portl.service.executor import executor_for
from portl.service.settings import ServiceSettings
from portl.service.store import open_store

home = Path(sys.argv[1])
store = open_store(ServiceSettings(home, f"sqlite:///{home / 'service.db'}"))
executor_for(store, 1)
threading.Event().wait()
"""


def test_a_job_of_a_killed_service_is_resumed_by_the_next_exactly_once(store, tmp_path):
    tenant = slow_tenant(store, "acme")
    job_id = slow_job(store, tenant)
    service = subprocess.Popen([sys.executable, "-c", KILLED_SERVICE, str(store.settings.home)])
    try:
        wait_rows_done(store, job_id, 50)
    finally:
        os.kill(service.pid, signal.SIGKILL)
        service.wait(timeout=10)
    assert job(store, job_id).status == JobStatus.RUNNING

    executor = executor_for(store, 1)
    try:
        done = wait_for(store, job_id, timeout=60)
    finally:
        executor.close()

    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in(files(store, tenant) / "out.db") == list(range(1, SLOW_ROWS + 1))
    assert done.counts["read"] == SLOW_ROWS == done.counts["inserted"]
    assert done.attempts == 2


def test_several_jobs_of_one_tenant_and_one_name_run_at_once_each_with_its_own_rejects(store, executors):
    tenant = add_tenant(store, "acme", max_running_jobs=3)
    write_people(files(store, tenant), 500, bad_every=100)
    jobs = [add_job(store, tenant, people_job(db=f"out{i}.db", batch=20)) for i in range(3)]
    executor = executors(workers=3)

    for job_id in jobs:
        executor.submit(job_id)

    for i, job_id in enumerate(jobs):
        done = wait_for(store, job_id)
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert (done.counts["inserted"], done.counts["rejected"]) == (495, 5)
        assert len(rejected(store, job_id)) == 5
        assert ids_in(files(store, tenant) / f"out{i}.db") == [n for n in range(1, 501) if n % 100]
