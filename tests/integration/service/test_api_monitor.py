"""The monitoring endpoints through a real `portl serve`: /api/v1/stats counts only the caller's
tenant's jobs, rows and batches; /api/v1/workers and /api/v1/queues show the in-process executor's
threads and waiting jobs; /metrics answers only the admin token, in Prometheus' text format, with
every tenant's figures; health names the broker and the workers that answer. With Celery (Redis
database 13): a real worker and the broker's queue, and a broker that goes away."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from portl.service.models import Batch, DeadLetter, Job, Tenant
from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer, free_port
from tests.integration.service.celeryworkers import Workers, flush, redis_broker
from tests.integration.service.test_api_runs import job_text, wait_for, write_people

TOKEN = "metrics-token-of-the-tests"
REDIS_DATABASE = 13
NOW = datetime.now(timezone.utc)
# Holds each batch of a job until a file named 'release' is in the tenant's folder (a minute at most).
GATE_HOOK = """\
import pathlib
import time


def hold(payload):
    gate = pathlib.Path(__file__).with_name("release")
    deadline = time.monotonic() + 60
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


# --- a tiny reader of Prometheus' text format ------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_metrics(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset], float]]:
    """The families' types, and every sample by (name, labels); fails on a sample of a family whose
    TYPE came not before it, on a family without HELP, and on any line not of the format."""
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: dict[tuple[str, frozenset], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ", 3)[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped, f"{name} has a TYPE but no HELP before it"
            assert kind in ("gauge", "counter", "histogram", "summary", "untyped") and name not in types
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels_text, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} comes before the TYPE of its family"
        labels = {}
        if labels_text:
            assert _LABEL.sub("", labels_text) == "", f"malformed labels: {labels_text!r}"
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in _LABEL.findall(labels_text)}
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"{line!r} is written twice"
        samples[key] = float(value)
    return types, samples


def sample(samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# --- a server with finished jobs of three tenants --------------------------------------------------

def insert_job(store, tenant_id: int, status: str, counts: dict[str, int], created: datetime,
               finished: datetime | None) -> uuid.UUID:
    with store.sessions() as session:
        job = Job(tenant_id=tenant_id, name="inserted", labels={}, job_text="name: inserted\n", status=status,
                  counts=counts, created_at=created, started_at=created, finished_at=finished)
        session.add(job)
        session.commit()
        return job.id


def insert_batches(store, tenant_id: int, job_id: uuid.UUID) -> None:
    """Six batches of known times, as the workers leave them: attempts that ended after 0.3, 2, 40
    and 0.7 s (the last one failed, its retry due tomorrow), one pending, and one running its
    second attempt, started 5 s after the first one failed; a dead letter not replayed and one
    replayed."""
    t = NOW - timedelta(hours=1)

    def batch(partition, status, attempts, started=None, took=None, **more):
        return Batch(tenant_id=tenant_id, job_id=job_id, partition=partition, status=status, attempts=attempts,
                     started_at=started, finished_at=started + timedelta(seconds=took) if took is not None else None,
                     counts={}, **more)

    with store.sessions() as session:
        rows = [batch(0, "succeeded", 1, t, 0.3),
                batch(1, "succeeded", 2, t, 2.0),
                batch(2, "dead", 3, t, 40.0),
                batch(3, "retrying", 1, t, 0.7, next_retry_at=NOW + timedelta(days=1)),
                batch(4, "pending", 0),
                # Its heartbeat is ahead, so that the server's sweeper does not take it for lost.
                batch(5, "running", 2, t + timedelta(seconds=5), -5.0, heartbeat_at=NOW + timedelta(hours=1))]
        session.add_all(rows)
        session.flush()
        session.add_all([DeadLetter(tenant_id=tenant_id, batch_id=rows[2].id, error="out of attempts"),
                         DeadLetter(tenant_id=tenant_id, batch_id=rows[1].id, error="was fixed", replayed_at=NOW)])
        session.commit()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """acme: two jobs run to success and one inserted that finished two days ago; globex: one job
    that failed; initech: an inserted job with batches of known times; hooli: jobs held by a hook."""
    served = ServiceServer(tmp_path_factory.mktemp("monitor") / "home")
    served.home.mkdir()
    served.keys = {name: served.tenant(name, **allowed)[0] for name, allowed in (
        ("acme", {}), ("globex", {}), ("initech", {}), ("hooli", {"code_hooks": True}))}
    with open_store(served.settings) as store:
        ids = served.ids = {t.name: t.id for t in store.tenants.list()}
    write_people(served.files(ids["acme"]), 1000, bad_every=100)
    with open_store(served.settings) as store:
        insert_job(store, ids["acme"], "succeeded", {"read": 500, "inserted": 400, "updated": 50, "rejected": 50},
                   NOW - timedelta(days=3), NOW - timedelta(days=2))
        insert_batches(store, ids["initech"], insert_job(store, ids["initech"], "succeeded", {"read": 10, "inserted": 10},
                                                         NOW - timedelta(hours=2), NOW - timedelta(hours=1)))
        with store.sessions() as session:
            session.execute(update(Tenant).where(Tenant.id == ids["hooli"]).values(max_running_jobs=1))
            session.commit()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTL_ADMIN_TOKEN", TOKEN)
        patch.setenv("PORTL_WORKERS", "3")
        served.start()
    with served.client(served.keys["acme"]) as acme, served.client(served.keys["globex"]) as globex:
        ran = [acme.post("/api/v1/jobs", json={"job": job_text(batch=300).replace("out.db", f"out{n}.db")}).json()["id"]
               for n in range(2)]
        missing = job_text().replace("people.csv", "nobody.csv")
        failed = globex.post("/api/v1/jobs", json={"job": missing}).json()["id"]
        for job_id in ran:
            job = wait_for(acme, job_id, ("succeeded", "failed"))
            assert job["status"] == "succeeded", job
        served.failed_job = wait_for(globex, failed, ("succeeded", "failed"))
    assert served.failed_job["status"] == "failed", served.failed_job
    yield served
    served.stop()


@pytest.fixture
def acme(monitored):
    with monitored.client(monitored.keys["acme"]) as client:
        yield client


def test_stats_counts_the_callers_jobs_and_rows_only(monitored, acme):
    answer = acme.get("/api/v1/stats")
    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["tenant"] == "acme"
    assert stats["total"] == {"jobs": {"queued": 0, "running": 0, "cancelling": 0, "cancelled": 0, "succeeded": 3,
                                       "failed": 0, "partial": 0},
                              "rows_read": 2500, "rows_moved": 2 * 990 + 450, "rejects": 2 * 10 + 50}
    recent = stats["last_24h"]
    assert recent["jobs"]["succeeded"] == 2 and sum(recent["jobs"].values()) == 2
    assert (recent["rows_read"], recent["rows_moved"], recent["rejects"]) == (2000, 1980, 20)
    since = datetime.fromisoformat(recent["since"])
    assert timedelta(hours=23, minutes=59) < datetime.now(timezone.utc) - since < timedelta(hours=24, minutes=5)
    assert stats["dead_letters"] == 0


def test_stats_of_another_tenant_show_its_failed_job_and_none_of_the_others(monitored):
    with monitored.client(monitored.keys["globex"]) as globex:
        stats = globex.get("/api/v1/stats").json()
    counts = monitored.failed_job["counts"]
    assert stats["tenant"] == "globex"
    assert stats["total"]["jobs"]["failed"] == 1 and sum(stats["total"]["jobs"].values()) == 1
    assert stats["total"]["rows_read"] == counts["read"]
    assert stats["total"]["rows_moved"] == counts["inserted"] + counts["updated"]
    assert stats["last_24h"]["jobs"]["failed"] == 1
    assert sum(stats["batches"].values()) == 0 and stats["dead_letters"] == 0


def test_stats_count_batches_by_status_and_dead_letters_not_replayed(monitored):
    with monitored.client(monitored.keys["initech"]) as initech:
        stats = initech.get("/api/v1/stats").json()
    assert stats["batches"] == {"pending": 1, "running": 1, "retrying": 1, "succeeded": 2, "dead": 1, "cancelled": 0}
    assert stats["dead_letters"] == 1
    assert stats["total"]["rows_moved"] == 10 and stats["total"]["jobs"]["succeeded"] == 1


def test_stats_need_an_api_key(monitored):
    with monitored.client(None) as anyone:
        answer = anyone.get("/api/v1/stats")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_workers_and_queues_in_process_show_the_running_and_the_waiting_jobs(monitored):
    key, hooli_id = monitored.keys["hooli"], monitored.ids["hooli"]
    folder = monitored.files(hooli_id)
    write_people(folder, 30)
    (folder / "gate.py").write_text(GATE_HOOK)
    held = job_text(batch=10) + "hooks:\n  before_batch: {type: python, function: 'gate:hold'}\n"
    with monitored.client(key) as hooli:
        idle_workers = hooli.get("/api/v1/workers").json()
        idle_queues = hooli.get("/api/v1/queues").json()
        jobs = [hooli.post("/api/v1/jobs", json={"job": held}).json()["id"] for _ in range(3)]
        wait_for(hooli, jobs[0], ("running",))
        busy_workers = hooli.get("/api/v1/workers").json()
        busy_queues = hooli.get("/api/v1/queues").json()
        (folder / "release").write_text("")
        for job_id in jobs:
            assert wait_for(hooli, job_id, ("succeeded", "failed"))["status"] == "succeeded"
        after = hooli.get("/api/v1/queues").json()

    [idle] = idle_workers["workers"]
    assert idle_workers["executor"] == "in-process" and idle_workers["note"] is None
    assert idle["name"].startswith("in-process@") and idle["concurrency"] == 3 and idle["active"] == 0
    assert idle_queues == {"executor": "in-process", "queues": [{"name": "in-process", "depth": 0}], "note": None}
    # hooli runs one job at a time (max_running_jobs 1): the other two wait while the first is held.
    assert [(w["name"], w["active"]) for w in busy_workers["workers"]] == [(idle["name"], 1)]
    assert busy_queues["queues"] == [{"name": "in-process", "depth": 2}]
    assert after["queues"] == [{"name": "in-process", "depth": 0}]


def test_health_in_process_counts_this_server_as_its_one_worker(monitored):
    with monitored.client(None) as anyone:
        answer = anyone.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "version": "0.1.0", "database": "reachable",
                             "database_revision": answer.json()["database_revision"], "executor": "in-process",
                             "broker": None, "workers": 1}


def test_metrics_hold_every_tenants_jobs_rows_and_batches(monitored):
    with monitored.client(TOKEN) as admin:
        answer = admin.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_metrics(answer.text)

    assert types["portl_jobs"] == "gauge" and types["portl_rows_moved_total"] == "counter"
    assert types["portl_batch_duration_seconds"] == "histogram" and types["portl_batch_retry_latency_seconds"] == "gauge"
    assert sample(samples, "portl_jobs", tenant="acme", status="succeeded") == 3
    assert sample(samples, "portl_jobs", tenant="acme", status="failed") == 0
    assert sample(samples, "portl_jobs", tenant="globex", status="failed") == 1
    assert sample(samples, "portl_rows_moved_total", tenant="acme") == 2430
    assert sample(samples, "portl_rows_read_total", tenant="acme") == 2500
    assert sample(samples, "portl_rejects_total", tenant="acme") == 70
    assert sample(samples, "portl_rows_moved_total", tenant="initech") == 10
    assert sample(samples, "portl_batches", tenant="initech", status="succeeded") == 2
    assert sample(samples, "portl_batches", tenant="initech", status="retrying") == 1
    assert sample(samples, "portl_dead_letters", tenant="initech") == 1
    assert sample(samples, "portl_dead_letters", tenant="acme") == 0

    duration = {le: sample(samples, "portl_batch_duration_seconds_bucket", tenant="initech", le=le)
                for le in ("0.1", "0.5", "1", "2.5", "10", "30", "60", "+Inf")}
    assert duration == {"0.1": 0, "0.5": 1, "1": 2, "2.5": 3, "10": 3, "30": 3, "60": 4, "+Inf": 4}
    assert sample(samples, "portl_batch_duration_seconds_count", tenant="initech") == 4
    assert sample(samples, "portl_batch_duration_seconds_sum", tenant="initech") == pytest.approx(43.0, abs=0.01)
    assert sample(samples, "portl_batch_retry_latency_seconds", tenant="initech") == pytest.approx(5.0, abs=0.01)
    assert sample(samples, "portl_batch_retry_latency_seconds", tenant="acme") == 0
    # The retrying batch is due tomorrow: not overdue.
    assert sample(samples, "portl_batch_retry_overdue_seconds", tenant="initech") == 0

    assert sample(samples, "portl_queue_depth", queue="in-process") == 0
    assert sample(samples, "portl_workers") == 1
    [(name, labels)] = [(n, dict(ls)) for n, ls in samples if n == "portl_worker_concurrency"]
    assert labels["worker"].startswith("in-process@") and sample(samples, name, **labels) == 3
    assert "portl_broker_up" not in types  # no broker in-process
    assert all(name.startswith("portl_") for name in types)


def test_the_help_of_the_retry_latency_says_what_it_measures(monitored):
    with monitored.client(TOKEN) as admin:
        text = admin.get("/metrics").text
    [line] = [line for line in text.splitlines() if line.startswith("# HELP portl_batch_retry_latency_seconds ")]
    assert "from the end of the failed attempt (finished_at) to the start of the retry (started_at)" in line
    assert "retries that have ended are not counted" in line


def test_every_metric_and_the_scrape_configuration_are_in_the_docs(monitored):
    import yaml

    docs = (Path(__file__).resolve().parents[3] / "docs" / "service.md").read_text()
    section = docs.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    with monitored.client(TOKEN) as admin:
        types, _ = parse_metrics(admin.get("/metrics").text)
    documented = set(re.findall(r"`(portl_[a-z_]+)", section))
    assert set(types) - {"portl_broker_up"} <= documented and "portl_broker_up" in documented
    [scrape] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    [job] = yaml.safe_load(scrape)["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"


@pytest.mark.parametrize("authorization, message", [
    (None, "the metrics need the admin token"),
    ("Bearer not-the-token", "that is not the admin token"),
    ("Basic " + TOKEN, "the metrics need the admin token"),
])
def test_metrics_without_the_admin_token_are_401(monitored, authorization, message):
    headers = {"Authorization": authorization} if authorization else {}
    with monitored.client(None) as anyone:
        answer = anyone.get("/metrics", headers=headers)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.json()["error"]["message"].startswith(message)


def test_metrics_refuse_a_tenants_api_key(monitored, acme):
    answer = acme.get("/metrics")
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "that is not the admin token: send the server's PORTL_ADMIN_TOKEN"


def test_metrics_are_404_with_how_to_turn_them_on_when_no_token_is_set(server, monkeypatch):
    monkeypatch.delenv("PORTL_ADMIN_TOKEN", raising=False)
    server.start()
    with server.client("anything") as client:
        answer = client.get("/metrics")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "not_found" and "set PORTL_ADMIN_TOKEN" in error["message"]


def test_the_openapi_document_describes_the_monitoring_endpoints(monitored):
    with monitored.client(None) as anyone:
        paths = anyone.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/stats", "/api/v1/workers", "/api/v1/queues", "/metrics"):
        assert paths[path]["get"]["summary"], path
    assert paths["/api/v1/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StatsOut"}
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


def test_on_postgresql_stats_and_metrics_count_the_same(tmp_path, pg_url, monkeypatch):
    server = ServiceServer(tmp_path / "home", database=pg_url)
    server.home.mkdir()
    key, tenant_id = server.tenant("initech")
    other, other_id = server.tenant("globex")
    with open_store(server.settings) as store:
        job_id = insert_job(store, tenant_id, "succeeded", {"read": 3_000_000_000, "inserted": 2_999_999_990,
                                                            "rejected": 10}, NOW - timedelta(hours=2), NOW)
        insert_batches(store, tenant_id, job_id)
        insert_job(store, other_id, "failed", {"read": 5, "inserted": 1, "updated": 2}, NOW, NOW)
    monkeypatch.setenv("PORTL_ADMIN_TOKEN", TOKEN)
    server.start()
    try:
        with server.client(key) as client, server.client(other) as globex, server.client(TOKEN) as admin:
            stats = client.get("/api/v1/stats").json()
            theirs = globex.get("/api/v1/stats").json()
            _, samples = parse_metrics(admin.get("/metrics").text)
    finally:
        server.stop()
    # Counts above 2**31: summed as BIGINT.
    assert stats["total"]["rows_read"] == 3_000_000_000 and stats["total"]["rows_moved"] == 2_999_999_990
    assert stats["batches"] == {"pending": 1, "running": 1, "retrying": 1, "succeeded": 2, "dead": 1, "cancelled": 0}
    assert stats["dead_letters"] == 1
    assert theirs["total"]["jobs"]["failed"] == 1 and theirs["total"]["rows_moved"] == 3
    assert sample(samples, "portl_rows_moved_total", tenant="initech") == 2_999_999_990
    assert sample(samples, "portl_jobs", tenant="globex", status="failed") == 1
    assert sample(samples, "portl_batch_duration_seconds_count", tenant="initech") == 4
    assert sample(samples, "portl_batch_duration_seconds_bucket", tenant="initech", le="1") == 2
    assert sample(samples, "portl_batch_duration_seconds_sum", tenant="initech") == pytest.approx(43.0, abs=0.01)
    assert sample(samples, "portl_batch_retry_latency_seconds", tenant="initech") == pytest.approx(5.0, abs=0.01)


# --- with Celery ------------------------------------------------------------------------------------

@pytest.fixture
def broker(monkeypatch):
    url = redis_broker(REDIS_DATABASE)
    monkeypatch.setenv("PORTL_BROKER", url)
    monkeypatch.setenv("PORTL_ADMIN_TOKEN", TOKEN)
    yield url
    flush(url)


def test_with_celery_the_workers_the_broker_queue_and_health_are_the_real_ones(tmp_path, broker):
    server = ServiceServer(tmp_path / "home")
    server.home.mkdir()
    key, tenant_id = server.tenant("acme", code_hooks=True)
    write_people(server.files(tenant_id), 100)
    (server.files(tenant_id) / "gate.py").write_text(GATE_HOOK)
    held = job_text() + "hooks:\n  before_batch: {type: python, function: 'gate:hold'}\n"
    workers = Workers(server.home, broker)
    server.start()
    try:
        with server.client(key) as client, server.client(TOKEN) as admin:
            alone = client.get("/api/v1/health").json()
            nobody = client.get("/api/v1/workers").json()
            job_id = client.post("/api/v1/jobs", json={"job": held}).json()["id"]
            waiting = client.get("/api/v1/queues").json()
            _, before = parse_metrics(admin.get("/metrics").text)

            workers.start(concurrency=2)
            busy = wait_for_workers(client, [1], workers.output)  # answering, and running the held job
            (server.files(tenant_id) / "release").write_text("")
            job = wait_for(client, job_id, ("succeeded", "failed"), timeout=60)
            idle = wait_for_workers(client, [0], workers.output)  # its task over
            drained = client.get("/api/v1/queues").json()
            healthy = client.get("/api/v1/health").json()
            _, after = parse_metrics(admin.get("/metrics").text)
    finally:
        workers.stop_all()
        server.stop()

    assert alone["status"] == "degraded" and alone["broker"] == "reachable" and alone["workers"] == 0
    assert nobody["executor"] == "celery" and nobody["workers"] == []
    assert nobody["note"] == "no worker answered within 1 s: start one with `portl worker`"
    assert waiting == {"executor": "celery", "queues": [{"name": "portl", "depth": 1}], "note": None}
    assert sample(before, "portl_queue_depth", queue="portl") == 1
    assert sample(before, "portl_broker_up") == 1 and sample(before, "portl_workers") == 0

    assert job["status"] == "succeeded", workers.output()
    [worker] = busy["workers"]
    assert worker["name"].startswith("portl-") and worker["concurrency"] == 2 and busy["note"] is None
    assert idle["workers"] == [{**worker, "active": 0}]
    assert drained["queues"] == [{"name": "portl", "depth": 0}]
    assert healthy["status"] == "ok" and healthy["broker"] == "reachable" and healthy["workers"] == 1
    assert sample(after, "portl_workers") == 1 and sample(after, "portl_queue_depth", queue="portl") == 0
    assert sample(after, "portl_worker_concurrency", worker=worker["name"]) == 2
    assert sample(after, "portl_worker_active", worker=worker["name"]) == 0
    assert sample(after, "portl_rows_moved_total", tenant="acme") == 100


def test_with_celery_a_broker_gone_is_degraded_health_and_unknown_depths(tmp_path, monkeypatch):
    """A Redis of the test's own, stopped once the server has started."""
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_redis(port)
        monkeypatch.setenv("PORTL_BROKER", f"redis://127.0.0.1:{port}/0")
        server = ServiceServer(tmp_path / "home")
        server.home.mkdir()
        key, _ = server.tenant("acme")
        monkeypatch.setenv("PORTL_ADMIN_TOKEN", TOKEN)
        server.start()
        try:
            redis.send_signal(signal.SIGTERM)
            redis.wait(timeout=10)
            with server.client(key) as client, server.client(TOKEN) as admin:
                health = client.get("/api/v1/health")
                found = client.get("/api/v1/workers").json()
                depths = client.get("/api/v1/queues").json()
                types, samples = parse_metrics(admin.get("/metrics").text)
        finally:
            server.stop()
    finally:
        if redis.poll() is None:
            redis.kill()
            redis.wait()

    assert health.status_code == 200
    assert health.json()["status"] == "degraded" and health.json()["broker"] == "unreachable"
    assert health.json()["database"] == "reachable" and health.json()["workers"] == 0
    assert found["workers"] == [] and found["note"].startswith(f"the broker redis://127.0.0.1:{port}/0 cannot be reached")
    assert depths["queues"] == [{"name": "portl", "depth": None}] and "cannot be reached" in depths["note"]
    assert sample(samples, "portl_broker_up") == 0 and sample(samples, "portl_workers") == 0
    assert types["portl_queue_depth"] == "gauge" and not any(n == "portl_queue_depth" for n, _ in samples)


def wait_for_workers(client, active: list[int], output, timeout: float = 60.0) -> dict:
    """The answer of /api/v1/workers once its workers have these ``active`` counts."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.get("/api/v1/workers").json()
        if [w["active"] for w in found["workers"]] == active:
            return found
        assert time.monotonic() < deadline, f"workers still {found} after {timeout} s\n{output()}"


def wait_for_redis(port: int) -> None:
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, f"redis-server did not start on port {port}"
                time.sleep(0.05)
    finally:
        client.close()
