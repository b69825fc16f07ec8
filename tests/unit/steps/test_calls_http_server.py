"""api.call against the local recording server: retries over real sockets, timeouts, and what
the receiver sees."""

import pytest

from portl.errors import CallError
from portl.steps.calls.config import HttpConnection
from portl.steps.calls.http import CallPolicy, build_http_request, http_client, send_http
from portl.steps.idempotency import idempotency_key


@pytest.fixture
def client():
    made = http_client()
    yield made
    made.close()


def build(recorder, **fields):
    connection = HttpConnection(type="http", base_url=recorder.base_url + "/api", headers={"Authorization": "Bearer tok-123456"},
                                timeout_s=0.5)
    given = {"method": "POST", "url": None, "path": "/resources", "headers": {}, "query": {}, "body": {"code": "X1"},
             "idempotency_key": idempotency_key("flow_a", "post_resource", "erp:X1")}
    return build_http_request(connection, **{**given, **fields})


def test_the_receiver_gets_method_path_query_headers_and_json_body(http_recorder, client):
    send_http(build(http_recorder, query={"dry": "no"}), CallPolicy(), client=client)
    (seen,) = http_recorder.requests
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/api/resources", {"dry": "no"}, {"code": "X1"})
    assert seen.headers["Authorization"] == "Bearer tok-123456"
    assert seen.headers["Idempotency-Key"] == idempotency_key("flow_a", "post_resource", "erp:X1")


def test_two_503s_then_success_makes_three_requests_with_one_key(http_recorder, client):
    http_recorder.fail_next(2, 503)
    result = send_http(build(http_recorder), CallPolicy(backoff_ms=1), client=client)
    assert result.attempts == 3 and result.body == {"ok": True, "echo": {"code": "X1"}}
    assert [r.status for r in http_recorder.requests] == [503, 503, 200]
    assert len({r.headers["Idempotency-Key"] for r in http_recorder.requests}) == 1


def test_a_stalled_answer_times_out_and_the_retry_succeeds(http_recorder, client):
    http_recorder.stall_next(1, 2.0)
    result = send_http(build(http_recorder), CallPolicy(backoff_ms=1), client=client)
    assert result.attempts == 2


def test_a_route_answer_is_the_result(http_recorder, client):
    http_recorder.respond("POST", "/api/resources", 201, {"id": 99})
    result = send_http(build(http_recorder), CallPolicy(), client=client)
    assert (result.status, result.body) == (201, {"id": 99})


def test_a_refused_connection_gives_up_naming_the_url(client):
    connection = HttpConnection(type="http", base_url="http://127.0.0.1:9", timeout_s=1)
    request = build_http_request(connection, method="GET", url=None, path="/x", headers={}, query={}, body=None,
                                 idempotency_key=None)
    with pytest.raises(CallError) as caught:
        send_http(request, CallPolicy(max_attempts=2, backoff_ms=1), client=client)
    assert str(caught.value).startswith("GET http://127.0.0.1:9/x could not connect")
    assert str(caught.value).endswith("(gave up after 2 attempts)")
