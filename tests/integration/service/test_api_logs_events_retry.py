"""The record log, live events and retry through a real `portl serve`: rejected records a page at
a time and as NDJSON, kept from other tenants; a running job's events end with succeeded; a job
cancelled mid-way and retried holds every row exactly once."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx

from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import job_text, wait_for, write_people


def test_the_record_log_pages_filters_and_downloads_the_rejected_records(server):
    key, tenant_id = server.tenant("acme")
    other, _ = server.tenant("globex")
    write_people(server.files(tenant_id), 100, bad_every=10)
    server.start()
    with server.client(key) as client, server.client(other) as intruder:
        job = client.post("/api/v1/jobs", json={"job": job_text(batch=30)}).json()
        assert wait_for(client, job["id"], ("succeeded",))["counts"]["rejected"] == 10
        first = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"limit": 4})
        rest = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"cursor": first.json()["next_cursor"]}).json()
        rejected = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"outcome": "rejected", "limit": 500}).json()
        skipped = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"outcome": "skipped"}).json()
        by_accept = client.get(f"/api/v1/jobs/{job['id']}/logs", headers={"Accept": "application/x-ndjson"})
        by_format = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"format": "ndjson", "outcome": "rejected"})
        hidden = intruder.get(f"/api/v1/jobs/{job['id']}/logs")
        bad_outcome = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"outcome": "lost"})
        bad_cursor = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"cursor": "nonsense"})
    assert first.status_code == 200 and len(first.json()["entries"]) == 4 and first.json()["next_cursor"]
    assert len(rest["entries"]) == 7 and rest["next_cursor"] is None
    everything = first.json()["entries"] + rest["entries"]
    # The batch's own entry (its range and counts), then its rejected records.
    [loaded] = [e for e in everything if e["outcome"] == "loaded"]
    assert loaded["value"] == "read 100, inserted 90, updated 0, rejected 10" and loaded["batch"] is not None
    assert loaded["source_location"] == "job people: the whole source"
    entries = [e for e in everything if e["outcome"] != "loaded"]
    assert [e["source_location"] for e in entries] == [f"people.csv, line {n + 1}, record {n}" for n in range(10, 101, 10)]
    assert {(e["outcome"], e["column"], e["value"], e["retry_count"]) for e in entries} == {("rejected", "age", "old", 0)}
    assert all("old" in e["error"] for e in entries), entries[0]["error"]
    assert rejected["entries"] == entries and skipped == {"entries": [], "next_cursor": None, "note": None}
    assert by_accept.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in by_accept.text.splitlines()] == everything
    assert [json.loads(line) for line in by_format.text.splitlines()] == entries
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert bad_outcome.status_code == 422 and "'lost' is not one of" in bad_outcome.json()["error"]["message"]
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["code"] == "request_invalid"


def test_asking_for_a_key_no_rejected_record_has_answers_none_with_a_note(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 20, bad_every=10)
    server.start()
    with server.client(key) as client:
        job = client.post("/api/v1/jobs", json={"job": job_text()}).json()
        wait_for(client, job["id"], ("succeeded",))
        answer = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"key": "7"}).json()
    assert answer["entries"] == [] and answer["next_cursor"] is None
    assert "no rejected or skipped record of this job has the key '7'" in answer["note"]
    assert "the record was loaded" in answer["note"]


def read_events(client: httpx.Client, job_id: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """Every event of the job's stream until the server ends it, and the comment lines."""
    events, comments, name = [], [], None
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
    return events, comments


def test_the_events_of_a_running_job_show_its_progress_and_end_with_succeeded(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 50_000)
    server.start()
    with server.client(key) as client:
        job = client.post("/api/v1/jobs", json={"job": job_text(batch=100)}).json()
        events, _ = read_events(client, job["id"])
        missing = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/events")
    statuses = [data["status"] for name, data in events if name == "status"]
    done = [data["progress"]["rows_done"] for name, data in events if name == "progress"]
    assert statuses[-1] == "succeeded" and events[-1][0] == "status"
    assert statuses == sorted(set(statuses), key=statuses.index), statuses  # each change once
    assert "running" in statuses or statuses == ["succeeded"]
    assert done == sorted(done) and done[-1] == 50_000
    assert any(0 < n < 50_000 for n in done), f"no progress seen mid-way: {done}"
    assert events[-2][1]["counts"]["inserted"] == 50_000
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_job_cancelled_mid_way_and_retried_holds_every_row_exactly_once(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 100_000, bad_every=1000)
    server.start()
    with server.client(key) as client:
        job = client.post("/api/v1/jobs", json={"job": job_text(batch=200)}).json()
        early = client.post(f"/api/v1/jobs/{job['id']}/retry")
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/jobs/{job['id']}").json()["progress"]["rows_done"] == 0:
            assert time.monotonic() < deadline, "the job wrote no batch within 30 s"
            time.sleep(0.02)
        client.put(f"/api/v1/jobs/{job['id']}/cancel")
        stopped = wait_for(client, job["id"], ("cancelled",))
        retried = client.post(f"/api/v1/jobs/{job['id']}/retry")
        finished = wait_for(client, job["id"], ("succeeded", "failed"))
        again = client.post(f"/api/v1/jobs/{job['id']}/retry")
        logged = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"limit": 500, "outcome": "rejected"}).json()
    assert early.status_code == 409 and early.json()["error"]["code"] == "job_not_retryable"
    assert 0 < stopped["counts"]["read"] < 100_000
    assert retried.status_code == 200 and retried.json()["status"] in ("queued", "running", "succeeded")
    assert finished["status"] == "succeeded", finished
    assert finished["attempts"] == 2 and finished["error"] is None
    assert again.status_code == 409 and "succeeded" in again.json()["error"]["message"]
    with sqlite3.connect(server.files(tenant_id) / "out.db") as db:
        count, distinct, total = db.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM people").fetchone()
    assert count == distinct == 99_900 and total == sum(range(1, 100_001)) - sum(range(1000, 100_001, 1000))
    assert len(logged["entries"]) == 100 and len({e["source_location"] for e in logged["entries"]}) == 100


def test_a_job_that_failed_before_its_run_began_is_retried_from_the_start_once_its_cause_is_fixed(server):
    key, tenant_id = server.tenant("acme")
    server.files(tenant_id).mkdir(parents=True, exist_ok=True)
    server.start()
    with server.client(key) as client:
        job = client.post("/api/v1/jobs", json={"job": job_text(batch=100)}).json()
        failed = wait_for(client, job["id"], ("failed",))
        write_people(server.files(tenant_id), 500)
        client.post(f"/api/v1/jobs/{job['id']}/retry").raise_for_status()
        finished = wait_for(client, job["id"], ("succeeded", "failed"))
    assert "people.csv" in failed["error"]
    assert finished["status"] == "succeeded" and finished["attempts"] == 2, finished
    assert finished["counts"]["inserted"] == 500
    with sqlite3.connect(server.files(tenant_id) / "out.db") as db:
        assert db.execute("SELECT count(DISTINCT id), count(*) FROM people").fetchone() == (500, 500)


def test_on_postgresql_the_log_events_and_retry_answer_as_on_sqlite(tmp_path, pg_url):
    server = ServiceServer(tmp_path / "home", database=pg_url)
    server.home.mkdir()
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 50, bad_every=25)
    server.start()
    try:
        with server.client(key) as client:
            job = client.post("/api/v1/jobs", json={"job": job_text()}).json()
            wait_for(client, job["id"], ("succeeded",))
            logged = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"format": "ndjson", "outcome": "rejected"})
            events, _ = read_events(client, job["id"])
            refused = client.post(f"/api/v1/jobs/{job['id']}/retry")
    finally:
        assert server.stop() == 0
    assert [json.loads(line)["source_location"] for line in logged.text.splitlines()] == [
        "people.csv, line 26, record 25", "people.csv, line 51, record 50"]
    assert [name for name, _ in events] == ["progress", "status"] and events[1][1]["status"] == "succeeded"
    assert events[0][1]["counts"] == {"read": 50, "inserted": 48, "updated": 0, "skipped": 0, "rejected": 2}
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "job_not_retryable"


def test_stopping_the_service_ends_the_event_streams_of_running_jobs(server):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 400_000)
    server.start()
    ended: list[str] = []

    def follow(job_id: str) -> None:
        try:
            read_events(server.client(key), job_id)
            ended.append("cleanly")
        except httpx.HTTPError as exc:
            ended.append(type(exc).__name__)

    with server.client(key) as client:
        job = client.post("/api/v1/jobs", json={"job": job_text(batch=100)}).json()
        follower = threading.Thread(target=follow, args=(job["id"],), daemon=True)
        follower.start()
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/jobs/{job['id']}").json()["progress"]["rows_done"] == 0:
            assert time.monotonic() < deadline, "the job wrote no batch within 30 s"
            time.sleep(0.02)
    started = time.monotonic()
    assert server.stop() == 0
    follower.join(10)
    assert time.monotonic() - started < 10 and ended, server.output()
    with sqlite3.connect(server.files(tenant_id) / "out.db") as db:
        assert 0 < db.execute("SELECT count(*) FROM people").fetchone()[0] < 400_000  # stopped mid-way, to resume
