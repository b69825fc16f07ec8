"""The record log, events and retry endpoints over a real SQLite state database, in process, with
a stand-in executor: a record found by its key or its batch, heartbeats on a quiet stream, what
retry hands the executor and when it refuses, and the OpenAPI document of all three."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from portl.service.api import create_app, events
from portl.service.models import Batch, Job, RecordLogEntry, now
from portl.service.status import JobStatus, Outcome
from tests.service_jobs import add_job, job, people_job, set_status, sqlite_store


class RecordingExecutor:
    """Records what it is asked to run; runs nothing."""

    kind = "recording"

    def __init__(self):
        self.submitted: list[tuple[uuid.UUID, bool]] = []

    def submit(self, job_id, *, resume=False):
        self.submitted.append((job_id, resume))

    def send_start(self, job_id, resume=False):
        self.submitted.append((job_id, resume))

    def send_batch(self, batch_id):
        raise AssertionError("no batch is sent in these tests")

    def cancel(self, job_id):
        raise AssertionError("not cancelled in these tests")

    def close(self):
        pass


@pytest.fixture
def service(tmp_path):
    store = sqlite_store(tmp_path)
    executor = RecordingExecutor()
    made = {name: store.tenants.create(name) for name in ("acme", "globex")}
    ids = {t.name: t.id for t in store.tenants.list()}
    app = create_app(store, executor)
    clients = {name: TestClient(app, headers={"Authorization": f"Bearer {m.api_key}"}) for name, m in made.items()}
    yield store, executor, ids, clients
    store.close()


def log_entries(store, tenant_id, job_id, entries):
    with store.sessions() as session:
        batch = Batch(tenant_id=tenant_id, job_id=job_id, partition=0, source_range={"lines": [1, 100]})
        session.add(batch)
        session.flush()
        for key, outcome, error in entries:
            session.add(RecordLogEntry(tenant_id=tenant_id, job_id=job_id, batch_id=batch.id, outcome=outcome,
                                       record_key=key, source_location="people.csv, line 3, record 2",
                                       column_name="age", value="old", error=error, retry_count=1))
        session.commit()
        return batch.id


def test_asking_for_a_key_answers_that_records_entries_only(service):
    store, _, ids, clients = service
    job_id = add_job(store, ids["acme"], people_job())
    batch = log_entries(store, ids["acme"], job_id, [("K-7", Outcome.REJECTED, "age 'old' is not an integer"),
                                                     ("K-8", Outcome.SKIPPED, "conflict strategy skip: key exists")])
    found = clients["acme"].get(f"/api/v1/jobs/{job_id}/logs", params={"key": "K-7"}).json()
    in_batch = clients["acme"].get(f"/api/v1/jobs/{job_id}/logs", params={"batch": batch}).json()
    other_batch = clients["acme"].get(f"/api/v1/jobs/{job_id}/logs", params={"batch": batch + 1}).json()
    [entry] = found["entries"]
    assert found["note"] is None and found["next_cursor"] is None
    assert {k: entry[k] for k in ("key", "outcome", "batch", "source_location", "column", "value", "error",
                                  "retry_count")} == {
        "key": "K-7", "outcome": "rejected", "batch": batch, "source_location": "people.csv, line 3, record 2",
        "column": "age", "value": "old", "error": "age 'old' is not an integer", "retry_count": 1}
    assert entry["created_at"] and entry["updated_at"]
    assert [e["key"] for e in in_batch["entries"]] == ["K-7", "K-8"] and other_batch["entries"] == []


def test_another_tenants_job_has_no_log_no_events_and_no_retry(service):
    store, executor, ids, clients = service
    job_id = add_job(store, ids["acme"], people_job())
    set_status(store, job_id, JobStatus.FAILED)
    log_entries(store, ids["acme"], job_id, [("K-7", Outcome.REJECTED, "bad")])
    answers = [clients["globex"].get(f"/api/v1/jobs/{job_id}/logs", params={"format": "ndjson"}),
               clients["globex"].get(f"/api/v1/jobs/{job_id}/events"),
               clients["globex"].post(f"/api/v1/jobs/{job_id}/retry")]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert {a.json()["error"]["message"] for a in answers} == {f"no job {job_id} for tenant 'globex'"}
    assert executor.submitted == [] and job(store, job_id).status == JobStatus.FAILED


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_queues_the_job_again_to_resume_from_its_checkpoints(service, status):
    store, executor, ids, clients = service
    job_id = add_job(store, ids["acme"], people_job())
    with store.sessions() as session:
        row = session.get(Job, job_id)
        row.status, row.error, row.finished_at, row.attempts = status, "the destination refused", now(), 1
        session.commit()
    answer = clients["acme"].post(f"/api/v1/jobs/{job_id}/retry")
    assert answer.status_code == 200
    assert {k: answer.json()[k] for k in ("status", "error", "finished_at", "attempts")} == {
        "status": "queued", "error": None, "finished_at": None, "attempts": 1}
    assert executor.submitted == [(job_id, True)]


@pytest.mark.parametrize("status, hint", [(JobStatus.QUEUED, " (cancel it first)"), (JobStatus.RUNNING, " (cancel it first)"),
                                          (JobStatus.SUCCEEDED, "")])
def test_retry_refuses_a_job_that_is_queued_running_or_succeeded(service, status, hint):
    store, executor, ids, clients = service
    job_id = add_job(store, ids["acme"], people_job())
    set_status(store, job_id, status)
    answer = clients["acme"].post(f"/api/v1/jobs/{job_id}/retry")
    assert answer.status_code == 409
    assert answer.json()["error"] == {"code": "job_not_retryable", "problems": [], "message": (
        f"job {job_id} is {status}; only a failed, partial or cancelled job can be retried{hint}")}
    assert executor.submitted == [] and job(store, job_id).status == status


def test_a_quiet_event_stream_sends_heartbeats_until_the_job_finishes(service, monkeypatch):
    store, _, ids, clients = service
    monkeypatch.setattr(events, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(events, "POLL_S", 0.02)
    job_id = add_job(store, ids["acme"], people_job())
    set_status(store, job_id, JobStatus.RUNNING)
    finisher = threading.Timer(0.5, set_status, (store, job_id, JobStatus.FAILED))
    finisher.start()
    started = time.monotonic()
    with clients["acme"].stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        lines = list(response.iter_lines())
    finisher.join()
    assert time.monotonic() - started < 10
    assert lines.count(": heartbeat") >= 3, lines
    events_sent = [line for line in lines if line.startswith("event: ")]
    assert events_sent == ["event: progress", "event: status", "event: status"]
    assert '"status":"running"' in lines[lines.index("event: status") + 2]
    assert '"status":"failed"' in lines[-2] and lines[-1] == ""


def test_the_openapi_document_describes_logs_events_and_retry(service):
    _, _, _, clients = service
    document = clients["acme"].get("/openapi.json").json()
    paths = document["paths"]
    logs = paths["/api/v1/jobs/{job_id}/logs"]["get"]
    assert logs["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/LogPage"}
    assert "application/x-ndjson" in logs["responses"]["200"]["content"]
    assert {p["name"] for p in logs["parameters"]} >= {"outcome", "batch", "key", "limit", "cursor", "format"}
    assert {"401", "404", "422"} <= set(logs["responses"])
    assert "text/event-stream" in paths["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    retry = paths["/api/v1/jobs/{job_id}/retry"]["post"]
    assert retry["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobOut"}
    assert retry["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert set(document["components"]["schemas"]["LogEntryOut"]["properties"]) == {
        "id", "outcome", "key", "batch", "source_location", "column", "value", "error", "retry_count",
        "created_at", "updated_at"}
