"""One submitted job run through the engine by ``run_job``: what it writes, and what the state
database then says of it (status, counts, progress, rejected records, errors)."""

from __future__ import annotations

import threading

import pytest

from portl.secrets import MASK
from portl.service.runner import run_job
from portl.service.status import JobStatus, Outcome
from tests.service_jobs import (add_job, batches, add_tenant, files, ids_in, job, people_job, rejected,
                                set_status, sqlite_store, write_people)


@pytest.fixture
def store(tmp_path):
    with sqlite_store(tmp_path) as opened:
        yield opened


@pytest.fixture
def acme(store):
    return add_tenant(store, "acme")


def test_a_csv_job_loads_its_rows_and_succeeds_with_balanced_counts(store, acme):
    folder = files(store, acme)
    write_people(folder, 120)
    job_id = add_job(store, acme, people_job(batch=50))

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.error is None
    assert done.attempts == 1
    assert done.started_at is not None and done.finished_at >= done.started_at
    assert ids_in(folder / "out.db") == list(range(1, 121))
    assert done.counts["read"] == 120 and done.counts["inserted"] == 120
    assert done.counts["batches"] == 3
    assert done.rows_done == 120
    assert done.bytes_done > 0
    assert done.bytes_total == (folder / "people.csv").stat().st_size


def test_rejected_rows_go_to_the_record_log_with_their_line_column_value_and_error(store, acme):
    folder = files(store, acme)
    write_people(folder, 30, bad_every=10)
    job_id = add_job(store, acme, people_job())

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED
    counts = done.counts
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (30, 27, 3)
    assert counts["inserted"] + counts["updated"] + counts["skipped"] + counts["rejected"] == counts["read"]
    entries = rejected(store, job_id)
    assert [e.outcome for e in entries] == [Outcome.REJECTED] * 3
    # person 10 is on line 11 of the file (after the header)
    assert [e.source_location for e in entries] == [f"people.csv, line {n + 1}, record {n}" for n in (10, 20, 30)]
    assert {e.column_name for e in entries} == {"age"}
    assert {e.value for e in entries} == {"old"}
    assert all("int" in e.error for e in entries), [e.error for e in entries]
    assert {e.tenant_id for e in entries} == {acme}
    assert ids_in(folder / "out.db") == [i for i in range(1, 31) if i % 10]


def test_a_job_whose_source_is_missing_fails_with_the_engines_sentence_and_no_service_folder(store, acme):
    job_id = add_job(store, acme, people_job(csv="nowhere.csv"))

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.FAILED
    assert "nowhere.csv" in done.error
    assert str(store.settings.home) not in done.error
    assert done.finished_at is not None


def test_a_password_in_a_failing_jobs_url_is_not_in_its_error(store, pg_url):
    tenant = add_tenant(store, "globex", private_network=True)
    write_people(files(store, tenant), 5)
    text = people_job().replace(
        "destination: {type: sqlite, path: out.db, table: people}",
        "destination: {type: postgres, url: 'postgresql://postgres:hunter2secret@127.0.0.1:5432/no_such_db_here', "
        "table: people}")
    job_id = add_job(store, tenant, text)

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.FAILED
    assert "no_such_db_here" in done.error
    assert "hunter2secret" not in done.error


def test_a_password_in_a_rejected_value_is_masked_in_the_record_log(store, acme):
    folder = files(store, acme)
    (folder / "people.csv").write_text("id,name,age\n1,a,postgresql://bob:hunter2secret@db.example.com/x\n2,b,30\n")
    job_id = add_job(store, acme, people_job())

    run_job(store, job_id, threading.Event())

    [entry] = rejected(store, job_id)
    assert entry.value == f"postgresql://bob:{MASK}@db.example.com/x"
    assert "hunter2secret" not in (entry.error or "")


def test_a_code_hook_the_tenant_may_not_run_fails_the_job_before_anything_is_written(store, acme):
    folder = files(store, acme)
    write_people(folder, 5)
    job_id = add_job(store, acme, people_job(slow=True))

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.FAILED
    assert "job.yaml:" in done.error and "python" in done.error
    assert not (folder / "out.db").exists()


def test_a_flow_of_steps_runs_as_one_batch_through_the_steps_engine(store, acme):
    flow = ("version: 2\nname: f\nsteps:\n  - {id: a, type: csv.read, path: people.csv}\n"
            "  - {id: load, type: migrate, job: {source: {type: csv, path: people.csv}, "
            "destination: {type: sqlite, path: out.db, table: people}}}\n")
    job_id = add_job(store, acme, flow)
    write_people(files(store, acme), 3)

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in(files(store, acme) / "out.db") == [1, 2, 3]
    assert [b.kind for b in batches(store, job_id)] == ["flow"]


def test_a_flow_calling_a_private_address_is_refused_before_it_runs(store, acme):
    flow = ("version: 2\nname: f\nconnections:\n  db: {type: postgres, url: 'postgresql://u@127.0.0.1/x'}\n"
            "steps:\n  - {id: a, type: db.query, connection: db, sql: 'SELECT 1'}\n")
    job_id = add_job(store, acme, flow)

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.FAILED
    assert "job.yaml:4:" in done.error and "127.0.0.1" in done.error


def test_every_job_of_a_multi_job_file_runs_in_order_and_the_counts_add_up(store, acme):
    folder = files(store, acme)
    write_people(folder, 10)
    write_people(folder, 7, name="more.csv")
    text = """\
jobs:
  - {name: first, source: {type: csv, path: people.csv}, destination: {type: sqlite, path: out.db, table: people}}
  - {name: second, source: {type: csv, path: more.csv}, destination: {type: sqlite, path: out.db, table: more}}
"""
    job_id = add_job(store, acme, text)

    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert ids_in(folder / "out.db") == list(range(1, 11))
    assert ids_in(folder / "out.db", "more") == list(range(1, 8))
    assert done.counts["read"] == 17 and done.rows_done == 17


def test_a_job_cancelled_before_it_starts_does_not_run(store, acme):
    folder = files(store, acme)
    write_people(folder, 5)
    job_id = add_job(store, acme, people_job())
    set_status(store, job_id, JobStatus.CANCELLING)
    run_job(store, job_id, threading.Event())

    done = job(store, job_id)
    assert done.status == JobStatus.CANCELLED
    assert done.attempts == 0
    assert not (folder / "out.db").exists()


def test_progress_of_a_fast_job_is_written_a_few_times_a_second_not_for_every_batch(store, acme):
    import time

    from sqlalchemy import event

    folder = files(store, acme)
    write_people(folder, 2000)
    job_id = add_job(store, acme, people_job(batch=5))
    updates = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("UPDATE jobs"):
            updates.append(time.monotonic())

    event.listen(store.engine, "before_cursor_execute", count)
    started = time.monotonic()
    try:
        run_job(store, job_id, threading.Event())
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    took = time.monotonic() - started

    done = job(store, job_id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.counts["batches"] == 400 and done.rows_done == 2000
    # Its steps (admitted, begun, batch made, batch done, finished: a dozen writes at most), and at
    # most one every half second in between; not one for each of its 400 engine batches.
    assert len(updates) <= 12 + took / 0.5 + 1, (len(updates), took)


def test_a_jobs_env_references_are_not_filled_from_the_services_environment(store, acme, monkeypatch):
    folder = files(store, acme)
    write_people(folder, 3)
    monkeypatch.setenv("PORTL_TEST_SECRET_TABLE", "stolen")
    text = people_job().replace("table: people", "table: '${env:PORTL_TEST_SECRET_TABLE:-people}'")
    job_id = add_job(store, acme, text)

    run_job(store, job_id, threading.Event())

    assert job(store, job_id).status == JobStatus.SUCCEEDED
    assert ids_in(folder / "out.db", "people") == [1, 2, 3]


def test_a_deleted_job_does_not_run(store, acme):
    from datetime import datetime, timezone

    from sqlalchemy import update

    from portl.service.models import Job

    folder = files(store, acme)
    write_people(folder, 5)
    job_id = add_job(store, acme, people_job())
    with store.sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(deleted_at=datetime.now(timezone.utc)))
        session.commit()

    run_job(store, job_id, threading.Event())

    assert job(store, job_id).status == JobStatus.QUEUED
    assert not (folder / "out.db").exists()
