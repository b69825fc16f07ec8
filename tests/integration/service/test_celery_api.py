"""`portl serve` with PORTL_BROKER set sends the jobs submitted over HTTP to `portl worker`
processes: the server runs none itself, a worker runs them, and cancel over HTTP reaches it."""

from __future__ import annotations

import time

import pytest

from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.celeryworkers import Workers, flush, redis_broker
from tests.integration.service.test_api_runs import job_text, wait_for, write_people

REDIS_DATABASE = 12
SLOW_HOOK = "import time\n\n\ndef pause(payload):\n    time.sleep(0.02)\n"


@pytest.fixture
def broker(monkeypatch):
    url = redis_broker(REDIS_DATABASE)
    monkeypatch.setenv("PORTL_BROKER", url)
    yield url
    flush(url)


@pytest.fixture
def server(tmp_path, broker):
    served = ServiceServer(tmp_path / "home")
    served.home.mkdir()
    yield served
    served.stop()


@pytest.fixture
def workers(server, broker):
    pool = Workers(server.home, broker)
    yield pool
    pool.stop_all()


def test_a_job_submitted_over_http_waits_for_a_worker_and_runs_on_it(server, workers):
    key, tenant_id = server.tenant("acme")
    write_people(server.files(tenant_id), 1000, bad_every=100)
    server.start()
    with server.client(key) as client:
        assert client.get("/api/v1/health").json()["executor"] == "celery"
        created = client.post("/api/v1/jobs", json={"job": job_text(batch=300)})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        time.sleep(0.5)  # long enough for an in-process executor to have started it
        assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued"

        workers.start()
        job = wait_for(client, job_id, ("succeeded", "failed"), timeout=60)

    assert job["status"] == "succeeded", f"{job}\n{workers.output()}"
    assert job["counts"] == {"read": 1000, "inserted": 990, "updated": 0, "skipped": 0, "rejected": 10}
    assert job["attempts"] == 1


def test_cancel_over_http_stops_the_job_on_its_worker(server, workers):
    key, tenant_id = server.tenant("acme", code_hooks=True)
    write_people(server.files(tenant_id), 1500)
    (server.files(tenant_id) / "slowhook.py").write_text(SLOW_HOOK)
    slow = job_text(batch=10) + "hooks:\n  before_batch: {type: python, function: 'slowhook:pause'}\n"
    server.start()
    workers.start()
    with server.client(key) as client:
        job_id = client.post("/api/v1/jobs", json={"job": slow}).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/jobs/{job_id}").json()["progress"]["rows_done"] < 50:
            assert time.monotonic() < deadline, workers.output()
            time.sleep(0.05)

        assert client.put(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        job = wait_for(client, job_id, ("cancelled",), timeout=30)

    assert 50 <= job["counts"]["read"] < 1500
    assert job["counts"]["read"] % 10 == 0
