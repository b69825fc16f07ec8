"""Each tenant's requests per minute, through a real `portl serve`: the request over the limit is
429 with Retry-After and the usual error shape, other tenants and the health check go on, a new
limit applies at once; with PORTL_BROKER on Redis, two API processes share the counts there."""

from __future__ import annotations

import pytest

from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.celeryworkers import flush, redis_broker

REDIS_DATABASE = 13


def limit(server: ServiceServer, tenant: str, per_minute: int) -> None:
    with open_store(server.settings) as store:
        store.tenants.set_limits(tenant, requests_per_minute=per_minute)


def test_the_request_over_the_limit_is_429_with_retry_after_and_the_usual_error(server):
    key, _ = server.tenant("acme")
    limit(server, "acme", 5)
    server.start()

    with server.client(key) as client:
        answers = [client.get("/api/v1/jobs") for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"] == (f"tenant 'acme' may make 5 requests a minute and has made them; try again in "
                                f"{refused.headers['Retry-After']} s")


def test_every_endpoint_with_a_key_counts_and_other_tenants_are_not_affected(server):
    key, tenant_id = server.tenant("acme")
    other, _ = server.tenant("globex")
    limit(server, "acme", 5)
    server.start()

    with server.client(key) as client, server.client(other) as neighbour:
        used = [client.get("/api/v1/jobs"), client.get("/api/v1/files"),
                client.post("/api/v1/files", files={"file": ("a.csv", b"id\n")}),
                client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000"), client.delete("/api/v1/files/a.csv")]
        refused = [client.get("/api/v1/files"), client.post("/api/v1/jobs", json={"job": "name: x"})]
        theirs = [neighbour.get("/api/v1/jobs") for _ in range(8)]

    assert [a.status_code for a in used] == [200, 200, 201, 404, 204]
    assert [a.status_code for a in refused] == [429, 429]
    assert [a.status_code for a in theirs] == [200] * 8


def test_health_and_the_docs_are_never_limited(server):
    key, _ = server.tenant("acme")
    limit(server, "acme", 1)
    server.start()

    with server.client(key) as client:
        client.get("/api/v1/jobs")
        free = [client.get(path).status_code for path in ("/api/v1/health", "/docs", "/openapi.json") * 4]
        limited = client.get("/api/v1/jobs")

    assert free == [200] * 12
    assert limited.status_code == 429


def test_a_raised_limit_applies_to_the_next_request(server):
    key, _ = server.tenant("acme")
    limit(server, "acme", 2)
    server.start()

    with server.client(key) as client:
        before = [client.get("/api/v1/jobs").status_code for _ in range(3)]
        limit(server, "acme", 10)
        after = client.get("/api/v1/jobs").status_code

    assert before == [200, 200, 429]
    assert after == 200


@pytest.fixture
def broker(monkeypatch):
    url = redis_broker(REDIS_DATABASE)
    monkeypatch.setenv("PORTL_BROKER", url)
    yield url
    flush(url)


def test_with_a_redis_broker_two_api_processes_share_the_counts(tmp_path, broker):
    import redis

    first = ServiceServer(tmp_path / "home")
    first.home.mkdir()
    key, tenant_id = first.tenant("acme")
    limit(first, "acme", 5)
    second = ServiceServer(first.home)  # the same folder and state database, another process
    first.start()
    try:
        second.start()
        with first.client(key) as one, second.client(key) as two:
            answers = [one.get("/api/v1/jobs"), two.get("/api/v1/jobs"), one.get("/api/v1/jobs"),
                       two.get("/api/v1/jobs"), one.get("/api/v1/jobs"), two.get("/api/v1/jobs")]
    finally:
        second.stop()
        first.stop()

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    counter = redis.Redis.from_url(broker)
    try:
        keys = [k.decode() for k in counter.keys("portl:rate:*")]
        assert len(keys) in (1, 2) and all(k.startswith(f"portl:rate:{tenant_id}:") for k in keys)
        assert sum(int(counter.get(k)) for k in keys) == 5  # the refused request was taken back
        assert all(0 < counter.ttl(k) <= 120 for k in keys)
    finally:
        counter.close()
