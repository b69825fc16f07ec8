"""The service under failures, end to end: `portl serve` and two `portl worker` processes on a
Celery/Redis broker, the state in PostgreSQL, loading a CSV into a PostgreSQL destination in
part batches. A worker SIGKILLed in the middle of a batch, the broker restarted (losing what it
held), the state database's connections dropped, a batch that always fails, a cancel in the middle:
each time the job ends clearly, a retry or a replay finishes it, and the destination holds every
source row exactly once (``count(*) == count(DISTINCT id)``), as the job's counts say.

The broker is Redis database 10 of the machine's Redis, or a private ``redis-server`` of the test's
own; the state and destination databases are PostgreSQL databases made for each test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.integration.service.apiserver import ServiceServer, free_port
from tests.integration.service.celeryworkers import Workers, flush, redis_broker
from tests.integration.service.test_api_runs import write_people
from tests.integration.service.test_work_batches import ids_in_pg, refuse_ids
from tests.services import pg_database
from tests.service_jobs import people_job

REDIS_DATABASE = 10
VISIBILITY_S = 3
PARTITIONS = 4
ROWS = 2000
BATCH = 10
PAUSE_HOOK = "import time\n\n\ndef pause(payload):\n    time.sleep(0.05)\n"
"""Each engine batch of ten rows waits 50 ms: a partition of 500 rows takes a few seconds."""
ENDED = ("succeeded", "failed", "partial")


def job_text(destination: str, *, slow: bool = True, batch: int = BATCH, table: str = "people") -> str:
    return people_job(pg_url=destination, slow=slow, batch=batch, table=table, hook="pausehook:pause")


@dataclass
class Service:
    """One test's service: its server, workers, state database and destination."""

    server: ServiceServer
    workers: Workers
    state: psycopg.Connection
    state_url: str
    destination: psycopg.Connection
    destination_url: str
    key: str = ""

    def output(self) -> str:
        return f"--- serve\n{self.server.output()}\n{self.workers.output()}"

    def batches(self, job_id: str) -> list[tuple[int, int, str, int, str | None]]:
        """(id, partition, status, attempts, worker) of each batch of the job, by partition."""
        return self.state.execute("SELECT id, partition, status, attempts, worker FROM batches WHERE job_id = %s "
                                  "ORDER BY partition", (job_id,)).fetchall()

    def running_batch(self, job_id: str, rows: int, timeout: float = 60) -> tuple[int, str]:
        """A batch of the job running with at least ``rows`` read: (its id, its worker)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.state.execute(
                "SELECT id, worker FROM batches WHERE job_id = %s AND status = 'running' AND worker IS NOT NULL "
                "AND coalesce((counts->>'read')::int, 0) >= %s ORDER BY id LIMIT 1", (job_id, rows)).fetchone()
            if found:
                return found
            assert time.monotonic() < deadline, f"no batch of job {job_id} read {rows} rows\n{self.output()}"
            time.sleep(0.05)

    def terminate_state_connections(self) -> int:
        """Drop every connection to this test's state database but the test's own; how many."""
        return len(self.state.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()").fetchall())


def wait_for(client, job_id: str, statuses: tuple[str, ...] = ENDED, timeout: float = 90) -> dict:
    """The job once its status is one of ``statuses``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/v1/jobs/{job_id}")
        assert answer.status_code == 200, f"reading job {job_id}: {answer.status_code} {answer.text}"
        job = answer.json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is still {job['status']} after {timeout} s: {job}"
        time.sleep(0.25)  # under the tenant's 600 requests a minute


def wait_rows(client, job_id: str, rows: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["progress"]["rows_done"] >= rows:
            return
        assert job["status"] in ("queued", "running"), f"job ended before {rows} rows: {job}"
        assert time.monotonic() < deadline, f"job {job_id} has {job['progress']['rows_done']} rows, not {rows}"
        time.sleep(0.25)


@pytest.fixture
def broker(monkeypatch) -> Iterator[str]:
    url = redis_broker(REDIS_DATABASE)
    monkeypatch.setenv("PORTL_BROKER", url)
    yield url
    flush(url)


@pytest.fixture
def service_on(tmp_path, pg_url, monkeypatch):
    """Makes the test's service on a broker: tenant ``acme`` (code hooks, private network) with the
    people CSV and the pause hook in its files; the server started, ``workers`` workers too."""
    monkeypatch.setenv("PORTL_JOB_PARTITIONS", str(PARTITIONS))
    monkeypatch.setenv("PORTL_BROKER_VISIBILITY_TIMEOUT", str(VISIBILITY_S))
    made: list[Service] = []
    with pg_database() as destination_url:

        def make(broker: str, workers: int = 2) -> Service:
            monkeypatch.setenv("PORTL_BROKER", broker)
            server = ServiceServer(tmp_path / "home", database=pg_url)
            server.home.mkdir()
            service = Service(server, Workers(server.home, broker, pg_url, VISIBILITY_S),
                              psycopg.connect(pg_url, autocommit=True), pg_url,
                              psycopg.connect(destination_url, autocommit=True), destination_url)
            made.append(service)
            service.key, tenant_id = server.tenant("acme", code_hooks=True, private_network=True)
            write_people(server.files(tenant_id), ROWS)
            (server.files(tenant_id) / "pausehook.py").write_text(PAUSE_HOOK)
            server.start()
            for _ in range(workers):
                service.workers.start()
            return service

        yield make
        for service in made:
            service.workers.stop_all()
            service.server.stop()
            service.state.close()
            service.destination.close()


def assert_loaded_once(service: Service, job: dict, table: str = "people") -> None:
    assert job["status"] == "succeeded", f"{job}\n{service.output()}"
    assert service.destination.execute(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}"
                                       ).fetchone() == (ROWS, ROWS, 1, ROWS)
    assert (job["counts"]["read"], job["counts"]["inserted"], job["counts"]["rejected"]) == (ROWS, ROWS, 0)


# --- a worker killed ----------------------------------------------------------------------------


def test_a_worker_killed_in_the_middle_of_a_batch_leaves_it_to_the_other_and_each_row_loads_once(broker, service_on):
    service = service_on(broker)
    with service.server.client(service.key) as client:
        job_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url)}).json()["id"]
        batch_id, worker = service.running_batch(job_id, 100)
        group = os.getpgid(int(worker.rpartition(":")[2]))
        [victim] = [p for p, _ in service.workers.started if p.pid == group]
        survivor = next(p for p, _ in service.workers.started if p is not victim)

        service.workers.kill(victim)
        loaded_at_kill, _ = ids_in_pg(service.destination)
        assert loaded_at_kill < ROWS
        job = wait_for(client, job_id)

    assert_loaded_once(service, job)
    batches = service.batches(job_id)
    assert [(b[1], b[2]) for b in batches] == [(n, "succeeded") for n in range(PARTITIONS)]
    [taken_over] = [b for b in batches if b[0] == batch_id]
    assert taken_over[3] == 2  # the killed attempt, then the one that finished it
    assert survivor.poll() is None


# --- the broker restarted -----------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` of the test's own on a free port, without persistence: stopping it loses
    every message it held, as a broker restarted without its data would."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=(self.folder / "redis.log").open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert self.process.poll() is None, (self.folder / "redis.log").read_text()
            assert time.monotonic() < deadline, f"redis-server on port {self.port} did not answer"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


def test_a_broker_restarted_in_the_middle_of_a_job_loses_its_messages_and_the_jobs_still_load_each_row_once(
        private_redis, service_on, monkeypatch):
    monkeypatch.setenv("PORTL_RESEND_AFTER", "5")  # lost messages sent again after 5 s, not a minute
    service = service_on(private_redis.url)
    with service.server.client(service.key) as client:
        job_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url)}).json()["id"]
        service.running_batch(job_id, 50)
        pending = [b for b in service.batches(job_id) if b[2] == "pending"]
        cancelled_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url, slow=False,
                                                                          table="people_retried")}).json()["id"]
        assert client.put(f"/api/v1/jobs/{cancelled_id}/cancel").status_code == 200
        wait_for(client, cancelled_id, ("cancelled",), timeout=30)

        private_redis.stop()
        # Submitted, and retried, while the broker is away: stored and queued, each job's start sent
        # once the broker is back.
        later = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url, slow=False,
                                                                   table="people_later")})
        retried = client.post(f"/api/v1/jobs/{cancelled_id}/retry")
        time.sleep(2)
        private_redis.start()
        # The pending batches' messages and the later job's start died with the broker: the sweeper
        # sends them again once they have waited PORTL_RESEND_AFTER.
        job = wait_for(client, job_id)
        if job["status"] != "succeeded":
            assert job["error"], job
            assert client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 200
            job = wait_for(client, job_id)
        later_job = wait_for(client, later.json()["id"])
        retried_job = wait_for(client, cancelled_id)

    assert pending, "every batch had started before the broker stopped: it held no message to lose"
    assert_loaded_once(service, job)
    assert {b[2] for b in service.batches(job_id)} == {"succeeded"}
    assert later.status_code == 201, later.text
    assert later.json()["status"] == "queued"
    assert_loaded_once(service, later_job, "people_later")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued"
    assert_loaded_once(service, retried_job, "people_retried")
    assert f"job {later.json()['id']} is queued; it is sent to the workers when the broker is back" in \
        service.server.output()
    assert f"job {cancelled_id} is queued again; it is sent to the workers when the broker is back" in \
        service.server.output()


# --- the state database's connections dropped ---------------------------------------------------


def test_the_state_databases_connections_dropped_twice_in_a_job_leave_it_to_finish_each_row_once(broker, service_on):
    service = service_on(broker)
    with service.server.client(service.key) as client:
        job_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url)}).json()["id"]
        service.running_batch(job_id, 50)
        first = service.terminate_state_connections()
        wait_rows(client, job_id, ROWS // 2)
        second = service.terminate_state_connections()
        job = wait_for(client, job_id)
        if job["status"] != "succeeded":
            assert job["error"], job
            assert client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 200
            job = wait_for(client, job_id)

    assert first > 0 and second > 0  # the server's and the workers' connections
    assert_loaded_once(service, job)
    assert {b[2] for b in service.batches(job_id)} == {"succeeded"}


# --- a batch dead-lettered, then replayed -------------------------------------------------------


def test_a_batch_that_always_fails_is_dead_lettered_listed_and_its_replay_loads_it_once(broker, service_on):
    service = service_on(broker)
    refuse_ids(service.destination, 100, 200)  # the first partition's range, refused as a transient failure
    with service.server.client(service.key) as client:
        policy = client.put("/api/v1/retry-policies", json={"max_attempts": 2, "backoff_s": 0.1,
                                                             "max_backoff_s": 0.1, "retry_on": ["transient"]})
        assert policy.status_code == 200, policy.text
        job_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url, slow=False,
                                                                   batch=100)}).json()["id"]
        partial = wait_for(client, job_id)
        listed = client.get("/api/v1/dlq", params={"job_id": job_id}).json()
        loaded_while_partial = ids_in_pg(service.destination)
        refused_while_partial = service.destination.execute(
            "SELECT count(*) FROM people WHERE id BETWEEN 100 AND 200").fetchone()[0]

        service.destination.execute("UPDATE broken SET always = false")  # the cause fixed
        [entry] = listed["entries"]
        replayed = client.post(f"/api/v1/dlq/{entry['id']}/replay")
        job = wait_for(client, job_id)
        again = client.post(f"/api/v1/dlq/{entry['id']}/replay")
        waiting = client.get("/api/v1/dlq", params={"replayed": "false"}).json()

    assert partial["status"] == "partial", f"{partial}\n{service.output()}"
    assert partial["error"].startswith("1 batch in the dead-letter queue: ")
    assert "refused for the test (serialization failure; worth retrying)" in partial["error"]
    assert listed["next_cursor"] is None
    assert (entry["batch"]["partition"], entry["batch"]["status"], entry["batch"]["attempts"]) == (0, "dead", 2)
    assert entry["error"] == partial["error"].split(": ", 1)[1] and entry["replayed_at"] is None
    loaded, distinct = loaded_while_partial
    assert loaded == distinct == partial["counts"]["inserted"] and 0 < loaded < ROWS
    assert refused_while_partial == 0
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed_at"] is not None
    assert_loaded_once(service, job)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_replayed"
    assert waiting == {"entries": [], "next_cursor": None}


# --- cancel, then retry -------------------------------------------------------------------------


def test_a_job_cancelled_in_the_middle_of_its_batches_and_retried_loads_each_row_once(broker, service_on):
    service = service_on(broker)
    with service.server.client(service.key) as client:
        job_id = client.post("/api/v1/jobs", json={"job": job_text(service.destination_url)}).json()["id"]
        service.running_batch(job_id, 50)
        cancelled_at = client.put(f"/api/v1/jobs/{job_id}/cancel")
        cancelled = wait_for(client, job_id, ("cancelled",), timeout=30)
        loaded = ids_in_pg(service.destination)
        batches = service.batches(job_id)
        retried = client.post(f"/api/v1/jobs/{job_id}/retry")
        job = wait_for(client, job_id)

    assert cancelled_at.status_code == 200, cancelled_at.text
    assert loaded[0] == loaded[1] and 0 < loaded[0] < ROWS
    assert cancelled["counts"]["inserted"] == loaded[0]
    assert "cancelled" in {b[2] for b in batches} and "running" not in {b[2] for b in batches}
    assert retried.status_code == 200, retried.text
    assert_loaded_once(service, job)
    assert job["attempts"] == 2
