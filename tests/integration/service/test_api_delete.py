"""Deleting a job through a real `portl serve`: a finished job is 204, then 404 everywhere and
gone from listings while its row stays with deleted_at (the audit trail); a job still queued,
running or cancelling is 409 until cancelled; another tenant's job is 404."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from portl.service.models import Job, RecordLogEntry
from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import job_text, wait_for, write_people


def finished_job(client, key: str | None = None) -> dict:
    headers = {"Idempotency-Key": key} if key else None
    created = client.post("/api/v1/jobs", json={"job": job_text()}, headers=headers)
    assert created.status_code == 201, created.text
    return wait_for(client, created.json()["id"], ("succeeded", "failed", "partial"))


def test_a_deleted_job_is_404_everywhere_and_no_longer_listed(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 50, bad_every=10)
    server.start()
    with server.client(key) as client:
        kept = finished_job(client)
        job = finished_job(client)
        path = f"/api/v1/jobs/{job['id']}"

        deleted = client.delete(path)
        after = {"read": client.get(path), "logs": client.get(path + "/logs"), "events": client.get(path + "/events"),
                 "retry": client.post(path + "/retry"), "cancel": client.put(path + "/cancel"),
                 "delete again": client.delete(path)}
        listed = client.get("/api/v1/jobs").json()["jobs"]

    assert deleted.status_code == 204 and deleted.content == b""
    assert {name: answer.status_code for name, answer in after.items()} == dict.fromkeys(after, 404)
    assert after["read"].json()["error"] == {"code": "not_found", "problems": [],
                                             "message": f"no job {job['id']} for tenant 'acme'"}
    assert [j["id"] for j in listed] == [kept["id"]]


def test_the_deleted_job_stays_in_the_state_database_with_its_record_log(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 50, bad_every=10)
    server.start()
    with server.client(key) as client:
        job = finished_job(client)
        client.delete(f"/api/v1/jobs/{job['id']}")

    with open_store(server.settings) as store, store.sessions() as session:
        row = session.get(Job, uuid.UUID(job["id"]))
        logged = session.scalars(select(RecordLogEntry).where(RecordLogEntry.job_id == row.id,
                                                              RecordLogEntry.outcome == "rejected")).all()
    assert row.deleted_at is not None and row.status == "succeeded"
    assert row.finished_at <= row.deleted_at
    assert len(logged) == 5  # every tenth of 50 rows was rejected


def test_a_queued_or_running_job_is_409_until_it_is_cancelled(server):
    key, tenant_id = server.tenant("acme")
    server.limit_running(tenant_id, 1)
    write_people(server.files(tenant_id), 200_000)
    server.start()
    with server.client(key) as client:
        running = client.post("/api/v1/jobs", json={"job": job_text(batch=200)}).json()
        waiting = client.post("/api/v1/jobs", json={"job": job_text(batch=200)}).json()
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/jobs/{running['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the first job did not start within 30 s"
            time.sleep(0.05)

        refused = {"running": client.delete(f"/api/v1/jobs/{running['id']}"),
                   "queued": client.delete(f"/api/v1/jobs/{waiting['id']}")}
        for job in (waiting, running):
            client.put(f"/api/v1/jobs/{job['id']}/cancel")
        wait_for(client, running["id"], ("cancelled",))
        deleted = [client.delete(f"/api/v1/jobs/{job['id']}").status_code for job in (waiting, running)]
        listed = client.get("/api/v1/jobs").json()["jobs"]

    assert {name: a.status_code for name, a in refused.items()} == {"running": 409, "queued": 409}
    assert refused["queued"].json()["error"] == {
        "code": "job_not_finished", "problems": [],
        "message": f"job {waiting['id']} is queued; only a finished job can be deleted: cancel it first, then "
                   "delete it once it is cancelled"}
    assert refused["running"].json()["error"]["message"].startswith(f"job {running['id']} is running;")
    assert deleted == [204, 204]
    assert listed == []


def test_another_tenants_job_is_404_and_stays(server):
    key, tenant_id = server.tenant("acme")
    other, _ = server.tenant("globex")
    write_people(server.files(tenant_id), 10)
    server.start()
    with server.client(key) as client, server.client(other) as intruder:
        job = finished_job(client)
        refused = intruder.delete(f"/api/v1/jobs/{job['id']}")
        still = client.get(f"/api/v1/jobs/{job['id']}")

    assert refused.status_code == 404
    assert refused.json()["error"]["message"] == f"no job {job['id']} for tenant 'globex'"
    assert still.status_code == 200


def test_the_idempotency_key_of_a_deleted_job_is_not_answered_with_it(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 10)
    server.start()
    with server.client(key) as client:
        job = finished_job(client, key="nightly-1")
        client.delete(f"/api/v1/jobs/{job['id']}")
        again = client.post("/api/v1/jobs", json={"job": job_text()}, headers={"Idempotency-Key": "nightly-1"})

    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "idempotency_conflict", "problems": [],
        "message": "Idempotency-Key 'nightly-1' was used for a job that has since been deleted; use a new key to "
                   "submit the job again"}
    assert job["id"] not in again.text


def test_on_postgresql_a_deleted_job_is_404_and_its_row_stays(tmp_path, pg_url):
    server = ServiceServer(tmp_path / "home", database=pg_url)
    server.home.mkdir()
    key, tenant_id = server.tenant("acme")
    other, _ = server.tenant("globex")
    write_people(server.files(tenant_id), 20)
    server.start()
    try:
        with server.client(key) as client, server.client(other) as intruder:
            job = finished_job(client)
            refused = intruder.delete(f"/api/v1/jobs/{job['id']}")
            deleted = client.delete(f"/api/v1/jobs/{job['id']}")
            read = client.get(f"/api/v1/jobs/{job['id']}")
            listed = client.get("/api/v1/jobs").json()["jobs"]
    finally:
        assert server.stop() == 0

    assert (refused.status_code, deleted.status_code, read.status_code) == (404, 204, 404)
    assert listed == []
    with open_store(server.settings) as store, store.sessions() as session:
        assert session.get(Job, uuid.UUID(job["id"])).deleted_at is not None
