"""Webhooks end to end: registered through a real `portl serve`, sent to a real HTTP receiver on
127.0.0.1 (a tenant allowed private addresses), signed, retried, their deliveries listed; a
tenant without that allowance is refused a loopback URL, and tenants are kept apart.

Retries are tested with a Deliverer of the test's own (backoff 0.05 s) on the server's state
database, with the server stopped so that it is the only one sending."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from portl.service.models import Job, WebhookDelivery
from portl.service.status import DeliveryStatus, JobStatus
from portl.service.store import open_store
from portl.service.webhooks import Deliverer, job_event
from tests.integration.service.apiserver import ServiceServer

JOB_TEXT = "source: {type: postgres, url: 'postgresql://app:hunter2@db.example.com/app', table: people}\n"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on a free 127.0.0.1 port that records every POST and answers each with the
    next of ``answers`` (then 200)."""

    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.url}/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServiceServer(tmp_path_factory.mktemp("webhooks") / "home")
    served.home.mkdir()
    served.keys = {name: served.tenant(name, **allowed) for name, allowed in (
        ("hooked", {"private_network": True}), ("neighbour", {"private_network": True}), ("plain", {}))}
    served.start()
    yield served
    served.stop()


@pytest.fixture
def hooked(server):
    """The tenant's client; its webhooks are deleted after each test, so that no later test's
    receiver (perhaps on a port used before) is sent an earlier test's events."""
    with server.client(server.keys["hooked"][0]) as client:
        yield client
        for hook in client.get("/api/v1/webhooks").json()["webhooks"]:
            client.delete(f"/api/v1/webhooks/{hook['id']}")


@pytest.fixture
def neighbour(server):
    with server.client(server.keys["neighbour"][0]) as client:
        yield client


def wait_until(what: str, check: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"still not {what} after {timeout} s")


def settled(client, webhook_id: int, count: int = 1) -> list[dict]:
    """The webhook's ``count`` deliveries, once none is pending."""
    def done() -> list[dict] | None:
        deliveries = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["deliveries"]
        finished = [d for d in deliveries if d["status"] != DeliveryStatus.PENDING]
        return deliveries if len(deliveries) == count and len(finished) == count else None
    return wait_until(f"{count} deliveries settled", done)


def register(client, url: str, **fields) -> dict:
    answer = client.post("/api/v1/webhooks", json={"url": url, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def a_job(store, tenant_id: int, status: str = JobStatus.FAILED) -> uuid.UUID:
    job = Job(tenant_id=tenant_id, name="people", labels={"team": "billing"}, job_text=JOB_TEXT, status=status,
              counts={"read": 10, "inserted": 7, "rejected": 3}, error="3 rows rejected")
    with store.sessions() as session:
        session.add(job)
        session.commit()
        return job.id


def verifies(received: Received, secret: str) -> bool:
    timestamp = received.headers["x-portl-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-portl-signature"], f"sha256={expected}")


# --- registering ---------------------------------------------------------------------------------


def test_registering_answers_the_secret_once_and_listing_never_shows_it(hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")

    assert made["url"] == f"{receiver.url}/hook"
    assert made["events"] == ["job.succeeded", "job.failed", "job.partial", "job.cancelled", "batch.dead_lettered"]
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    listed = hooked.get("/api/v1/webhooks").json()["webhooks"]
    assert [h for h in listed if h["id"] == made["id"]] == [
        {"id": made["id"], "url": made["url"], "events": made["events"], "created_at": made["created_at"]}]
    assert made["secret"] not in hooked.get("/api/v1/webhooks").text


def test_a_secret_given_is_kept_and_events_can_be_chosen(hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook", events=["job.failed", "job.partial"],
                    secret="my-own-secret-of-24-chars")

    assert made["secret"] == "my-own-secret-of-24-chars"
    assert made["events"] == ["job.failed", "job.partial"]


def test_a_tenant_without_the_allowance_gets_422_for_a_loopback_url(server, receiver):
    with server.client(server.keys["plain"][0]) as plain:
        answer = plain.post("/api/v1/webhooks", json={"url": f"{receiver.url}/hook"})
        listed = plain.get("/api/v1/webhooks").json()["webhooks"]

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "webhook_refused"
    assert "leads to 127.0.0.1, a loopback, private or link-local address" in error["message"]
    assert "portl tenants allow TENANT --private-network" in error["message"]
    assert listed == []


@pytest.mark.parametrize("url, says", [
    ("ftp://example.com/hook", "give an http:// or https:// URL"),
    ("https:///no-host", "give an http:// or https:// URL"),
    ("http://example.com:port/hook", "is not a URL"),
    ("http://example.com/a hook", "has spaces or control characters"),
    ("http://example.com/\x00", "has spaces or control characters"),
])
def test_a_url_that_is_not_http_with_a_host_is_refused(hooked, url, says):
    answer = hooked.post("/api/v1/webhooks", json={"url": url})

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "webhook_invalid"
    assert says in answer.json()["error"]["message"]


def test_an_id_no_webhook_can_have_is_422_and_a_foreign_cursor_too(hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")

    huge = hooked.get(f"/api/v1/webhooks/{2**70}/deliveries")
    cursor = hooked.get(f"/api/v1/webhooks/{made['id']}/deliveries", params={"cursor": "WzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwXQ"})

    assert huge.status_code == 422 and huge.json()["error"]["code"] == "request_invalid"
    assert cursor.status_code == 422 and "cursor is not one this API gave" in cursor.json()["error"]["message"]


def test_an_unknown_event_is_refused_naming_the_known_ones(hooked, receiver):
    answer = hooked.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["job.failed", "job.exploded"]})

    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == (
        "unknown events 'job.exploded': give some of job.succeeded, job.failed, job.partial, job.cancelled, "
        "batch.dead_lettered (or leave events out for all of them)")


# --- delivering (by the server's own Deliverer) --------------------------------------------------


def test_a_test_delivery_reaches_the_receiver_signed_with_the_secret(hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")

    queued = hooked.post(f"/api/v1/webhooks/{made['id']}/test")
    [delivery] = settled(hooked, made["id"])

    assert queued.status_code == 202
    assert queued.json()["status"] == "pending" and queued.json()["event"] == "ping"
    [got] = receiver.received
    assert got.path == "/hook"
    assert got.json["event"] == "ping" and got.json["job"] is None
    assert got.headers["x-portl-event"] == "ping"
    assert got.headers["x-portl-delivery"] == str(queued.json()["id"])
    assert got.headers["content-type"] == "application/json"
    assert abs(int(got.headers["x-portl-timestamp"]) - time.time()) < 300
    assert verifies(got, made["secret"])
    assert not verifies(got, made["secret"] + "x")
    assert delivery | {"created_at": None, "delivered_at": None} == {
        "id": queued.json()["id"], "event": "ping", "job_id": None, "status": "delivered", "attempts": 1,
        "response_status": 200, "last_error": None, "next_retry_at": None, "created_at": None, "delivered_at": None}


def test_a_job_event_is_sent_with_the_job_and_never_its_text(server, hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")
    with open_store(server.settings) as store:
        job_id = a_job(store, server.keys["hooked"][1])
        job_event(store, job_id, "job.failed", {"dead_batches": 0})
    [delivery] = settled(hooked, made["id"])

    [got] = receiver.received
    assert got.headers["x-portl-event"] == "job.failed"
    assert got.json == {"event": "job.failed",
                        "job": {"id": str(job_id), "name": "people", "status": "failed",
                                "counts": {"read": 10, "inserted": 7, "rejected": 3}, "error": "3 rows rejected",
                                "labels": {"team": "billing"}},
                        "occurred_at": got.json["occurred_at"], "details": {"dead_batches": 0}}
    assert b"hunter2" not in got.body and b"postgres" not in got.body
    assert verifies(got, made["secret"])
    assert (delivery["event"], delivery["job_id"], delivery["status"]) == ("job.failed", str(job_id), "delivered")


def test_a_webhook_is_sent_only_the_events_it_asked_for(server, hooked, receiver):
    made = register(hooked, f"{receiver.url}/failures", events=["job.failed"])
    with open_store(server.settings) as store:
        job_id = a_job(store, server.keys["hooked"][1], JobStatus.SUCCEEDED)
        job_event(store, job_id, "job.succeeded")
        job_event(store, job_id, "job.failed")
    deliveries = settled(hooked, made["id"])

    assert [d["event"] for d in deliveries] == ["job.failed"]
    assert [r.headers["x-portl-event"] for r in receiver.received if r.path == "/failures"] == ["job.failed"]


def test_deliveries_are_listed_newest_first_a_page_at_a_time(hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")
    ids = [hooked.post(f"/api/v1/webhooks/{made['id']}/test").json()["id"] for _ in range(3)]

    first = hooked.get(f"/api/v1/webhooks/{made['id']}/deliveries", params={"limit": 2}).json()
    second = hooked.get(f"/api/v1/webhooks/{made['id']}/deliveries",
                        params={"limit": 2, "cursor": first["next_cursor"]}).json()
    bad = hooked.get(f"/api/v1/webhooks/{made['id']}/deliveries", params={"cursor": "not-a-cursor"})

    assert [d["id"] for d in first["deliveries"]] == ids[:0:-1]
    assert [d["id"] for d in second["deliveries"]] == ids[:1]
    assert second["next_cursor"] is None
    assert bad.status_code == 422 and "cursor is not one this API gave" in bad.json()["error"]["message"]


def test_a_deleted_webhook_is_not_listed_gets_no_events_and_takes_no_test(server, hooked, receiver):
    made = register(hooked, f"{receiver.url}/hook")

    deleted = hooked.delete(f"/api/v1/webhooks/{made['id']}")
    again = hooked.delete(f"/api/v1/webhooks/{made['id']}")
    with open_store(server.settings) as store:
        job_event(store, a_job(store, server.keys["hooked"][1]), "job.failed")
    test = hooked.post(f"/api/v1/webhooks/{made['id']}/test")

    assert (deleted.status_code, again.status_code) == (204, 204)
    assert made["id"] not in [h["id"] for h in hooked.get("/api/v1/webhooks").json()["webhooks"]]
    assert test.status_code == 409 and test.json()["error"]["code"] == "webhook_deleted"
    assert hooked.get(f"/api/v1/webhooks/{made['id']}/deliveries").json()["deliveries"] == []


def test_another_tenants_webhook_is_404(hooked, neighbour, receiver):
    made = register(hooked, f"{receiver.url}/hook")

    answers = [neighbour.get(f"/api/v1/webhooks/{made['id']}/deliveries"),
               neighbour.post(f"/api/v1/webhooks/{made['id']}/test"),
               neighbour.delete(f"/api/v1/webhooks/{made['id']}")]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].json()["error"]["message"] == f"no webhook {made['id']} for tenant 'neighbour'"
    assert made["id"] not in [h["id"] for h in neighbour.get("/api/v1/webhooks").json()["webhooks"]]
    assert made["id"] in [h["id"] for h in hooked.get("/api/v1/webhooks").json()["webhooks"]]
    assert receiver.received == []


def test_a_tenant_without_webhooks_gets_no_delivery(server):
    with open_store(server.settings) as store:
        job_id = a_job(store, server.keys["plain"][1])
        job_event(store, job_id, "job.failed")
        with store.sessions() as session:
            rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all()

    assert rows == []


def test_an_unknown_event_is_logged_and_not_raised(server, caplog):
    with open_store(server.settings) as store:
        job_id = a_job(store, server.keys["hooked"][1])
        job_event(store, job_id, "job.exploded")

    assert "could not queue webhook event job.exploded of job" in caplog.text
    assert "unknown webhook event 'job.exploded'" in caplog.text


# --- retries (by a Deliverer of the test's own) --------------------------------------------------


@pytest.fixture
def stopped(tmp_path):
    """A server with a tenant allowed private addresses, stopped once its webhooks are registered:
    yields (server, client of the tenant, tenant id)."""
    served = ServiceServer(tmp_path / "home")
    served.home.mkdir()
    key, tenant_id = served.tenant("retried", private_network=True)
    served.start()
    with served.client(key) as client:
        yield served, client, tenant_id
    served.stop()


@contextmanager
def delivering(server: ServiceServer, **options) -> Iterator[object]:
    with open_store(server.settings) as store:
        deliverer = Deliverer(store, backoff_s=0.05, interval_s=0.02, **options)
        deliverer.start()
        try:
            yield store
        finally:
            deliverer.stop()


def deliveries_of(store, webhook_id: int) -> list:
    with store.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                                    .order_by(WebhookDelivery.id)))


def settled_in(store, webhook_id: int) -> list:
    return wait_until("settled", lambda: (found := deliveries_of(store, webhook_id))
                      and all(d.status != DeliveryStatus.PENDING for d in found) and found)


def test_a_receiver_failing_twice_then_answering_gets_three_attempts(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    server.stop()
    receiver.answers = [500, 500, 200]

    with delivering(server) as store:
        job_event(store, a_job(store, tenant_id), "job.failed")
        [delivery] = settled_in(store, made["id"])

    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "delivered", 3, 200, None)
    assert len(receiver.received) == 3
    assert len({r.headers["x-portl-delivery"] for r in receiver.received}) == 1
    assert all(verifies(r, made["secret"]) for r in receiver.received)
    assert [r.body for r in receiver.received] == [receiver.received[0].body] * 3


def test_a_receiver_that_keeps_failing_ends_failed_after_the_last_attempt(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    server.stop()
    receiver.answers = [503] * 10

    with delivering(server, max_attempts=3) as store:
        job_event(store, a_job(store, tenant_id), "job.failed")
        [delivery] = settled_in(store, made["id"])

    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 3, 503)
    assert delivery.last_error == f"{receiver.url}/hook answered HTTP 503: no (attempt 3 of 3, the last)"
    assert delivery.next_retry_at is None
    assert len(receiver.received) == 3


def test_a_redirect_is_not_followed(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    server.stop()
    receiver.answers = [302]

    with delivering(server, max_attempts=1) as store:
        job_event(store, a_job(store, tenant_id), "job.failed")
        [delivery] = settled_in(store, made["id"])

    assert [r.path for r in receiver.received] == ["/hook"]
    assert (delivery.status, delivery.response_status) == ("failed", 302)
    assert f"a redirect to '{receiver.url}/elsewhere', which is not followed" in delivery.last_error


def test_the_url_is_checked_again_when_the_allowance_is_withdrawn(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    server.stop()
    with open_store(server.settings) as store:
        store.tenants.allow("retried", private_network=False)

    with delivering(server, max_attempts=1) as store:
        job_event(store, a_job(store, tenant_id), "job.failed")
        [delivery] = settled_in(store, made["id"])

    assert receiver.received == []
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, None)
    assert "not sent: " in delivery.last_error
    assert "portl tenants allow TENANT --private-network" in delivery.last_error


def test_a_receiver_that_is_gone_is_a_failed_attempt_with_the_reason(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    server.stop()
    receiver.close()

    with delivering(server, max_attempts=2) as store:
        job_event(store, a_job(store, tenant_id), "job.failed")
        [delivery] = settled_in(store, made["id"])

    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 2, None)
    assert delivery.last_error.startswith(f"no answer from {receiver.url}/hook: ConnectError")


def test_two_deliverers_on_one_database_send_each_delivery_once(stopped, receiver):
    server, client, tenant_id = stopped
    made = register(client, f"{receiver.url}/hook")
    ids = {str(client.post(f"/api/v1/webhooks/{made['id']}/test").json()["id"]) for _ in range(20)}
    server.stop()
    delivered_by_serve = {r.headers["x-portl-delivery"] for r in receiver.received}

    with delivering(server), delivering(server) as store:
        found = settled_in(store, made["id"])

    sent = [r.headers["x-portl-delivery"] for r in receiver.received]
    assert sorted(sent) == sorted(ids)  # each once, whoever sent it
    assert all(d.status == "delivered" and d.attempts == 1 for d in found)
    assert delivered_by_serve <= ids


def test_on_postgresql_deliveries_are_retried_and_each_taken_by_one_deliverer(tmp_path, pg_url, receiver):
    server = ServiceServer(tmp_path / "home", database=pg_url)
    server.home.mkdir()
    key, tenant_id = server.tenant("retried", private_network=True)
    server.start()
    try:
        with server.client(key) as client:
            made = register(client, f"{receiver.url}/hook", events=["job.failed"])
    finally:
        server.stop()
    receiver.answers = [500, 500]

    with delivering(server), delivering(server) as store:
        for _ in range(5):
            job_event(store, a_job(store, tenant_id), "job.failed")
        found = settled_in(store, made["id"])

    assert [d.status for d in found] == ["delivered"] * 5
    assert sum(d.attempts for d in found) == 7
    assert len(receiver.received) == 7
    assert sorted({r.headers["x-portl-delivery"] for r in receiver.received}) == sorted(str(d.id) for d in found)
    assert all(verifies(r, made["secret"]) for r in receiver.received)
