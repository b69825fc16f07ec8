"""Jobs submitted through a real `portl serve` run to the end: a CSV in the tenant's files folder
loaded into SQLite, counts that add up, cancelling a queued and a running job; and the basic flow
with the state database on the real PostgreSQL."""

from __future__ import annotations

import sqlite3
import time


from tests.integration.service.apiserver import ServiceServer


def wait_for(client, job_id, statuses, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in statuses or time.monotonic() > deadline:
            assert job["status"] in statuses, f"job still {job['status']} after {timeout} s: {job}"
            return job
        time.sleep(0.05)


def write_people(folder, rows: int, bad_every: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,name,age"]
    for n in range(1, rows + 1):
        age = "old" if bad_every and n % bad_every == 0 else str(20 + n % 50)
        lines.append(f"{n},person {n},{age}")
    (folder / "people.csv").write_text("\n".join(lines) + "\n")


def job_text(batch: int = 25_000) -> str:
    return f"""\
name: people
source: {{type: csv, path: people.csv}}
destination: {{type: sqlite, path: out.db, table: people}}
mapping:
  columns:
    id: {{type: int64}}
    name: name
    age: {{type: int64}}
batch: {{size: {batch}}}
"""


def test_a_csv_to_sqlite_job_runs_to_succeeded_and_its_counts_add_up(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 1000, bad_every=100)
    server.start()
    with server.client(key) as client:
        created = client.post("/api/v1/jobs", json={"job": job_text(batch=300), "labels": {"team": "crm"}})
        assert created.status_code == 201, created.text
        assert created.json()["status"] in ("queued", "running", "succeeded")
        job = wait_for(client, created.json()["id"], ("succeeded", "failed", "partial"))
    assert job["status"] == "succeeded", job
    assert job["counts"] == {"read": 1000, "inserted": 990, "updated": 0, "skipped": 0, "rejected": 10}
    assert job["progress"]["rows_done"] == 1000 and job["progress"]["rows_per_s"] > 0
    assert job["attempts"] == 1 and job["started_at"] and job["finished_at"] and job["error"] is None
    with sqlite3.connect(server.files(tenant_id) / "out.db") as db:
        assert db.execute("SELECT count(*), sum(id) FROM people").fetchone() == (990, sum(range(1, 1001)) - sum(range(100, 1001, 100)))


def test_a_queued_job_is_cancelled_at_once_and_a_running_one_after_its_batch(server):
    key, tenant_id = server.tenant("acme")
    server.limit_running(tenant_id, 1)
    write_people(server.files(tenant_id), 200_000)
    server.start()
    with server.client(key) as client:
        running = client.post("/api/v1/jobs", json={"job": job_text(batch=200)}).json()
        waiting = client.post("/api/v1/jobs", json={"job": job_text(batch=200)}).json()
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/jobs/{running['id']}").json()["progress"]["rows_done"] == 0:
            assert time.monotonic() < deadline, "the running job wrote no batch within 30 s"
            time.sleep(0.05)
        assert client.get(f"/api/v1/jobs/{waiting['id']}").json()["status"] == "queued"

        cancelled = client.put(f"/api/v1/jobs/{waiting['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

        stopping = client.put(f"/api/v1/jobs/{running['id']}/cancel")
        assert stopping.status_code == 200 and stopping.json()["status"] in ("cancelling", "cancelled")
        stopped = wait_for(client, running["id"], ("cancelled",))
        again = client.put(f"/api/v1/jobs/{running['id']}/cancel")
    assert 0 < stopped["counts"]["read"] < 200_000
    assert stopped["counts"]["read"] == stopped["counts"]["inserted"]
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    with sqlite3.connect(server.files(tenant_id) / "out.db") as db:  # whole batches only
        assert db.execute("SELECT count(*) FROM people").fetchone()[0] == stopped["counts"]["inserted"]


def test_on_postgresql_a_job_is_submitted_read_listed_and_kept_from_other_tenants(tmp_path, pg_url):
    server = ServiceServer(tmp_path / "home", database=pg_url)
    server.home.mkdir()
    key, tenant_id = server.tenant("acme")
    other, _ = server.tenant("globex")
    write_people(server.files(tenant_id), 50)
    server.start()
    try:
        with server.client(key) as client, server.client(other) as intruder:
            health = client.get("/api/v1/health").json()
            created = client.post("/api/v1/jobs", json={"job": job_text(), "labels": {"env": "pg"}},
                                  headers={"Idempotency-Key": "k1"})
            repeated = client.post("/api/v1/jobs", json={"job": job_text(), "labels": {"env": "pg"}},
                                   headers={"Idempotency-Key": "k1"})
            job = wait_for(client, created.json()["id"], ("succeeded",))
            listed = client.get("/api/v1/jobs", params={"label": "env:pg"}).json()
            hidden = intruder.get(f"/api/v1/jobs/{job['id']}")
            theirs = intruder.get("/api/v1/jobs").json()
    finally:
        assert server.stop() == 0
    assert health["status"] == "ok" and health["database"] == "reachable"
    assert created.status_code == 201 and repeated.status_code == 200 and repeated.json()["id"] == job["id"]
    assert job["counts"]["inserted"] == 50
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["next_cursor"] is None
    assert hidden.status_code == 404 and theirs == {"jobs": [], "next_cursor": None}
