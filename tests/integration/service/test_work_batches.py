"""Jobs as batches (service.work): a PostgreSQL job cut into partitions that several workers load,
a failing batch retried under the tenant's policy, dead-lettered when it keeps failing while the
rest of the job loads, replayed once fixed; cancel and retry. Each source row is in the
destination exactly once at the end, whatever happened on the way."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select

from portl.service import work
from portl.service.executor import executor_for
from portl.service.models import Batch, DeadLetter, RetryPolicy
from portl.service.status import BatchStatus, JobStatus, Outcome
from tests.service_jobs import (add_job, add_tenant, files, job, log_entries, people_job, sqlite_store, wait_for,
                                wait_rows_done, write_people, write_slow_hook)

ROWS = 20_000
CANCEL_ROWS = 8000  # 4 partitions of 100 engine batches of 20 rows, each batch held 20 ms by a hook


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTL_BROKER", raising=False)
    monkeypatch.setenv("PORTL_JOB_PARTITIONS", "4")
    with sqlite_store(tmp_path) as opened:
        yield opened


@pytest.fixture
def executor(store):
    made = executor_for(store, 3)
    yield made
    made.close()


@pytest.fixture
def pg(pg_url):
    conn = psycopg.connect(pg_url, autocommit=True)
    yield conn
    conn.close()


def pg_job(pg_url: str, *, batch: int = 1000, extra: str = "", mode: str = "append") -> str:
    return people_job(pg_url=pg_url, batch=batch, extra=extra, mode=mode)


def tenant_with_people(store, rows: int = ROWS, **allowances) -> int:
    tenant = add_tenant(store, "acme", private_network=True, **allowances)
    write_people(files(store, tenant), rows, bad_every=1000)
    return tenant


def batches_of(store, job_id) -> list[Batch]:
    with store.sessions() as session:
        return list(session.scalars(select(Batch).where(Batch.job_id == job_id).order_by(Batch.partition)))


def ids_in_pg(pg) -> tuple[int, int]:
    return pg.execute("SELECT count(*), count(DISTINCT id) FROM people").fetchone()


def refuse_ids(pg, low: int, high: int, *, times: int | None = None) -> None:
    """Make the destination refuse to write ids low..high (as a transient failure): always, or the
    first ``times`` writes that reach them."""
    pg.execute("CREATE TABLE IF NOT EXISTS people (id bigint, name text, age int)")
    pg.execute("CREATE TABLE broken (low int, high int, always boolean)")
    pg.execute("CREATE SEQUENCE refusals")
    pg.execute("INSERT INTO broken VALUES (%s, %s, %s)", (low, high, times is None))
    pg.execute(f"""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM broken WHERE NEW.id BETWEEN low AND high
                     AND (always OR nextval('refusals') <= {times or 0})) THEN
            RAISE EXCEPTION 'row % refused for the test', NEW.id USING ERRCODE = '40001';
          END IF;
          RETURN NEW;
        END $$""")
    pg.execute("CREATE TRIGGER refuse BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION refuse()")


def set_policy(store, tenant: int, attempts: int) -> None:
    with store.sessions() as session:
        session.add(RetryPolicy(tenant_id=tenant, max_attempts=attempts, backoff_s=0.05, max_backoff_s=0.05,
                                retry_on=["transient"]))
        session.commit()


def test_a_postgres_job_is_cut_into_partitions_that_several_workers_load_each_row_once(store, executor, pg, pg_url):
    tenant = tenant_with_people(store)
    job_id = add_job(store, tenant, pg_job(pg_url))

    executor.submit(job_id)
    done = wait_for(store, job_id, timeout=60)

    assert done.status == JobStatus.SUCCEEDED, done.error
    batches = batches_of(store, job_id)
    assert [(b.kind, b.status, b.attempts) for b in batches] == [("part", BatchStatus.SUCCEEDED, 1)] * 4
    assert len({b.run_id for b in batches}) == 1
    assert sum(b.counts["read"] for b in batches) == ROWS
    assert (done.counts["read"], done.counts["inserted"], done.counts["rejected"]) == (ROWS, ROWS - 20, 20)
    assert ids_in_pg(pg) == (ROWS - 20, ROWS - 20)
    assert len(log_entries(store, job_id, Outcome.LOADED)) == 4
    assert len(log_entries(store, job_id, Outcome.REJECTED)) == 20
    # The run finished in the destination too: one ~finished checkpoint.
    assert pg.execute("SELECT count(*) FROM _portl_checkpoints WHERE partition = '~finished'").fetchone() == (1,)


def test_a_batch_failing_once_is_retried_after_its_backoff_and_the_job_succeeds(store, executor, pg, pg_url):
    tenant = tenant_with_people(store)
    set_policy(store, tenant, attempts=3)
    refuse_ids(pg, 100, 200, times=3)  # the engine's three write attempts of the first try
    job_id = add_job(store, tenant, pg_job(pg_url))

    executor.submit(job_id)
    done = wait_for(store, job_id, timeout=60)

    assert done.status == JobStatus.SUCCEEDED, done.error
    attempts = sorted(b.attempts for b in batches_of(store, job_id))
    assert attempts == [1, 1, 1, 2]
    assert ids_in_pg(pg) == (ROWS - 20, ROWS - 20)
    with store.sessions() as session:
        assert session.scalars(select(DeadLetter)).all() == []


def test_a_batch_that_always_fails_is_dead_lettered_the_rest_loads_and_a_replay_loads_it_once(store, executor, pg,
                                                                                                pg_url):
    tenant = tenant_with_people(store)
    set_policy(store, tenant, attempts=2)
    refuse_ids(pg, 100, 200)
    job_id = add_job(store, tenant, pg_job(pg_url))

    executor.submit(job_id)
    partial = wait_for(store, job_id, timeout=60)

    assert partial.status == JobStatus.PARTIAL
    assert "1 batch in the dead-letter queue" in partial.error and "row 100 refused for the test" in partial.error
    [dead] = [b for b in batches_of(store, job_id) if b.status == BatchStatus.DEAD]
    assert dead.attempts == 2 and dead.next_retry_at is None
    with store.sessions() as session:
        [letter] = session.scalars(select(DeadLetter)).all()
    assert letter.batch_id == dead.id and "refused for the test" in letter.error
    loaded, distinct = ids_in_pg(pg)
    assert loaded == distinct and 0 < loaded < ROWS - 20  # the other partitions, not the dead one

    pg.execute("UPDATE broken SET always = false")  # the cause fixed
    assert work.retry_batch(store, dead.id, executor, tenant) is None
    done = wait_for(store, job_id, timeout=60)

    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in_pg(pg) == (ROWS - 20, ROWS - 20)
    assert (done.counts["read"], done.counts["inserted"], done.counts["rejected"]) == (ROWS, ROWS - 20, 20)
    with store.sessions() as session:
        assert session.get(DeadLetter, letter.id).replayed_at is not None
    assert work.retry_batch(store, dead.id, executor, tenant).startswith(f"batch {dead.id} is succeeded")


def test_a_job_whose_every_batch_fails_has_failed_and_a_job_retry_replays_them(store, executor, pg, pg_url):
    tenant = tenant_with_people(store, rows=500)
    set_policy(store, tenant, attempts=1)
    refuse_ids(pg, 1, 10_000)
    job_id = add_job(store, tenant, pg_job(pg_url, batch=100))

    executor.submit(job_id)
    failed = wait_for(store, job_id, timeout=60)
    assert failed.status == JobStatus.FAILED
    assert {b.status for b in batches_of(store, job_id)} == {BatchStatus.DEAD}
    assert ids_in_pg(pg) == (0, 0)

    pg.execute("DROP TRIGGER refuse ON people")
    assert work.retry_job(store, job_id, executor)
    done = wait_for(store, job_id, timeout=60)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in_pg(pg) == (500, 500)
    assert done.attempts == 2


def test_cancel_in_the_middle_then_retry_loads_each_row_once(store, executor, pg, pg_url):
    tenant = tenant_with_people(store, rows=CANCEL_ROWS, code_hooks=True)
    write_slow_hook(files(store, tenant))
    text = pg_job(pg_url, batch=20, extra="hooks:\n  before_batch: {type: python, function: 'slowhook:pause'}\n")
    job_id = add_job(store, tenant, text)

    executor.submit(job_id)
    wait_rows_done(store, job_id, 200)
    executor.cancel(job_id)
    cancelled = wait_for(store, job_id, timeout=30)

    assert cancelled.status == JobStatus.CANCELLED
    assert BatchStatus.CANCELLED in {b.status for b in batches_of(store, job_id)}
    loaded, distinct = ids_in_pg(pg)
    assert loaded == distinct and 0 < loaded < CANCEL_ROWS - CANCEL_ROWS // 1000
    assert cancelled.counts["inserted"] == loaded

    # One cancelled batch run again on its own: it loads, and the job is cancelled again, not stuck.
    one = next(b for b in batches_of(store, job_id) if b.status == BatchStatus.CANCELLED)
    assert work.retry_batch(store, one.id, executor, tenant) is None
    again = wait_for(store, job_id, timeout=60)
    assert again.status == JobStatus.CANCELLED
    assert next(b for b in batches_of(store, job_id) if b.id == one.id).status == BatchStatus.SUCCEEDED

    assert work.retry_job(store, job_id, executor)
    done = wait_for(store, job_id, timeout=60)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in_pg(pg) == (CANCEL_ROWS - CANCEL_ROWS // 1000, CANCEL_ROWS - CANCEL_ROWS // 1000)
    assert (done.counts["read"], done.counts["inserted"]) == (CANCEL_ROWS, CANCEL_ROWS - CANCEL_ROWS // 1000)


def test_the_jobs_own_retry_wins_over_the_tenants_policy(store):
    tenant = add_tenant(store, "acme")
    set_policy(store, tenant, attempts=7)
    with store.sessions() as session:
        own = work.policy_for(session, tenant, "name: a\nretry: {attempts: 2, backoff_ms: 500}\n", "a")
        tenants = work.policy_for(session, tenant, "name: a\n", "a")
        other = work.policy_for(session, tenant + 1, "name: a\n", "a")
    assert (own.max_attempts, own.backoff_s, own.source) == (2, 0.5, "the job's retry:")
    assert (tenants.max_attempts, tenants.backoff_s, tenants.source) == (7, 0.05, "the tenant's policy")
    assert other == work.DEFAULT_POLICY
    assert [work.DEFAULT_POLICY.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_a_sqlite_job_is_one_whole_batch(store, executor):
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 50)
    job_id = add_job(store, tenant, people_job())

    executor.submit(job_id)
    assert wait_for(store, job_id).status == JobStatus.SUCCEEDED
    assert [(b.kind, b.status) for b in batches_of(store, job_id)] == [("whole", BatchStatus.SUCCEEDED)]
    assert job(store, job_id).counts["inserted"] == 50


def test_a_full_record_log_names_every_record_written_and_each_reject_by_its_key(store, executor, pg, pg_url):
    tenant = tenant_with_people(store, rows=3000)
    text = pg_job(pg_url, mode="upsert", extra="conflict: {key: [id]}\nservice: {record_log: full}\n")
    job_id = add_job(store, tenant, text)

    executor.submit(job_id)
    done = wait_for(store, job_id, timeout=60)

    assert done.status == JobStatus.SUCCEEDED, done.error
    loaded = [e for e in log_entries(store, job_id, Outcome.LOADED) if e.record_key is not None]
    assert sorted(int(e.record_key) for e in loaded) == [i for i in range(1, 3001) if i % 1000]
    assert all(e.batch_id is not None and e.source_location.startswith("partition ") for e in loaded)
    rejected = log_entries(store, job_id, Outcome.REJECTED)
    assert sorted(e.record_key for e in rejected) == ["1000", "2000", "3000"]


def test_rejects_carry_their_key_when_the_job_names_one_without_a_full_log(store, executor):
    tenant = add_tenant(store, "acme")
    write_people(files(store, tenant), 30, bad_every=10)
    job_id = add_job(store, tenant, people_job(extra="service: {record_key: id}\n"))

    executor.submit(job_id)
    assert wait_for(store, job_id).status == JobStatus.SUCCEEDED

    assert [e.record_key for e in log_entries(store, job_id, Outcome.REJECTED)] == ["10", "20", "30"]
    assert [e.record_key for e in log_entries(store, job_id, Outcome.LOADED)] == [None]  # the batch's own entry


@pytest.mark.parametrize("left", ["finishing, its process gone", "between two steps, nothing moving it"])
def test_a_job_whose_process_died_between_its_steps_is_taken_up_by_the_sweeper(store, executor, pg, pg_url, left):
    import socket
    import subprocess
    from datetime import timedelta

    from sqlalchemy import update

    from portl.service.models import Job, now

    tenant = tenant_with_people(store, rows=2000)
    job_id = add_job(store, tenant, pg_job(pg_url))
    executor.submit(job_id)
    assert wait_for(store, job_id, timeout=60).status == JobStatus.SUCCEEDED
    gone = subprocess.Popen(["true"])
    gone.wait()
    if left.startswith("finishing"):  # its batches loaded, and the process finishing it was killed
        state = {"stage": 1, "worker": f"{socket.gethostname()}:{gone.pid}/1", "heartbeat_at": now()}
    else:  # its last batch ended, and its process died before moving the job on
        state = {"stage": 0, "worker": None, "heartbeat_at": now() - timedelta(minutes=5)}
    with store.sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING, finished_at=None,
                                                                   **state))
        session.commit()

    done = wait_for(store, job_id, timeout=30)

    assert done.status == JobStatus.SUCCEEDED and done.worker is None, done.error
    assert ids_in_pg(pg) == (2000 - 2, 2000 - 2)


def test_a_full_record_log_of_an_append_names_each_record_inserted(store, executor, pg, pg_url):
    """An append from CSV to PostgreSQL may send its blocks' text as it is (unparsed): with a full
    record log, its rows are parsed so that each one's key is known."""
    tenant = tenant_with_people(store, rows=2000)
    job_id = add_job(store, tenant, pg_job(pg_url, extra="service: {record_log: full, record_key: id}\n"))

    executor.submit(job_id)
    assert wait_for(store, job_id, timeout=60).status == JobStatus.SUCCEEDED

    inserted = log_entries(store, job_id, Outcome.INSERTED)
    assert sorted(int(e.record_key) for e in inserted) == [i for i in range(1, 2001) if i % 1000]
    assert ids_in_pg(pg) == (1998, 1998)
