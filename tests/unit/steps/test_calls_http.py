"""Building HTTP requests, masking them, and sending them with retries (httpx MockTransport)."""

import json

import httpx
import pytest

from portl.errors import CallError
from portl.secrets import MASK
from portl.steps.calls.config import HttpConnection
from portl.steps.calls.http import CallPolicy, build_http_request, send_http

API = HttpConnection(type="http", base_url="https://api.example.com/v1/",
                     headers={"Authorization": "Bearer s3cr3t-token", "Accept": "application/json"}, timeout_s=4)


def request(connection=API, **fields):
    given = {"method": "POST", "url": None, "path": "items", "headers": {}, "query": {}, "body": None, "idempotency_key": None}
    given.update(fields)
    return build_http_request(connection, **given)


# --- building ----------------------------------------------------------------------------------


def test_a_path_follows_the_connection_base_url_with_one_slash():
    assert request(path="/items/7").url == "https://api.example.com/v1/items/7"
    assert request(path="items").url == "https://api.example.com/v1/items"


def test_a_whole_url_is_used_as_given():
    assert request(url="https://other.example.com/hook", path=None).url == "https://other.example.com/hook"


def test_a_relative_url_without_a_connection_is_refused():
    with pytest.raises(CallError, match="not a full URL"):
        request(connection=None, path=None, url="/items")


def test_url_and_path_together_are_refused():
    with pytest.raises(CallError, match="give url or path, not both"):
        request(url="https://a.example/x", path="y")


def test_an_unknown_method_is_refused():
    with pytest.raises(CallError, match="method 'fetch' is not one of GET, POST"):
        request(method="fetch")


def test_step_headers_replace_connection_headers_of_the_same_name_in_any_case():
    built = request(headers={"accept": "text/csv", "X-Trace": "abc"})
    assert built.headers == {"Authorization": "Bearer s3cr3t-token", "accept": "text/csv", "X-Trace": "abc"}


def test_the_idempotency_key_goes_in_the_default_header():
    assert request(idempotency_key="k-1").headers["Idempotency-Key"] == "k-1"


def test_the_idempotency_key_goes_in_the_connection_header_when_named():
    connection = HttpConnection(type="http", base_url="https://a.example", idempotency_header="X-Request-Id")
    built = request(connection=connection, idempotency_key="k-1", headers={"x-request-id": "from-step"})
    assert built.headers == {"X-Request-Id": "k-1"}


def test_no_idempotency_header_without_a_key():
    assert "Idempotency-Key" not in request().headers


def test_query_parameters_without_a_value_are_left_out():
    assert request(query={"page": 2, "filter": None}).query == {"page": 2}


def test_the_step_timeout_wins_over_the_connection_timeout():
    assert request().timeout_s == 4
    assert build_http_request(API, method="GET", url=None, path="x", headers={}, query={}, body=None,
                              idempotency_key=None, timeout_s=1.5).timeout_s == 1.5
    assert request(connection=None, url="https://a.example", path=None).timeout_s == 10.0


# --- masking -----------------------------------------------------------------------------------


def test_masked_hides_credential_headers_query_tokens_and_url_passwords():
    built = request(connection=None, path=None, url="https://bot:pw123456@a.example/x?token=abcdef&page=1",
                    headers={"X-Api-Key": "key-123456", "X-Trace": "t1"}, query={"api_key": "zzz999", "page": 1})
    shown = built.masked()
    assert shown["url"] == f"https://bot:{MASK}@a.example/x?token={MASK}&page=1"
    assert shown["headers"] == {"X-Api-Key": MASK, "X-Trace": "t1"}
    assert shown["query"] == {"api_key": MASK, "page": 1}


def test_a_secret_copied_into_the_body_is_masked_there_too():
    built = request(body={"note": "token s3cr3t-token inside", "n": 1})
    assert built.masked()["body"] == {"note": f"token {MASK} inside", "n": 1}
    assert built.body["note"] == "token s3cr3t-token inside"


def test_the_repr_of_a_request_shows_no_secret():
    assert "s3cr3t-token" not in repr(request())


# --- sending -----------------------------------------------------------------------------------


def client(answers, seen=None):
    """A client whose transport answers from ``answers`` in turn: a status, (status, body), or an exception."""
    remaining = list(answers)

    def handle(req: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(req)
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer if isinstance(answer, tuple) else (answer, {"ok": status_ok(answer)})
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


def status_ok(status):
    return 200 <= status <= 299


def no_sleep(_seconds):
    pass


def test_503_twice_then_200_succeeds_with_three_attempts_reported():
    attempts = []
    result = send_http(request(body={"a": 1}), CallPolicy(backoff_ms=0), client=client([503, 503, (200, {"id": 7})]),
                       on_attempt=lambda n, outcome, details: attempts.append((n, outcome, details["status"])), sleep=no_sleep)
    assert (result.status, result.body, result.attempts) == (200, {"id": 7}, 3)
    assert attempts == [(1, "retry", 503), (2, "retry", 503), (3, "ok", 200)]


def test_every_attempt_carries_the_same_idempotency_key():
    seen = []
    send_http(request(idempotency_key="k-42"), CallPolicy(backoff_ms=0), client=client([502, 200], seen), sleep=no_sleep)
    assert [r.headers["Idempotency-Key"] for r in seen] == ["k-42", "k-42"]


def test_a_4xx_answer_is_not_retried_and_the_error_names_method_url_status_and_body():
    seen = []
    with pytest.raises(CallError) as caught:
        send_http(request(), CallPolicy(), client=client([(422, {"error": "code is required"})], seen), sleep=no_sleep)
    message = str(caught.value)
    assert len(seen) == 1
    assert message.startswith("POST https://api.example.com/v1/items answered 422 Unprocessable Entity")
    assert ': {"error":"code is required"} (' in message
    assert "not retried: 4xx answers are retried only when retry_on names them" in message
    assert caught.value.status == 422 and not caught.value.retryable


def test_a_4xx_named_in_retry_on_is_retried():
    result = send_http(request(), CallPolicy(backoff_ms=0, retry_on=["429"]), client=client([429, 200]), sleep=no_sleep)
    assert result.attempts == 2


def test_a_timeout_is_retried_and_the_final_error_says_it_timed_out():
    timeout = httpx.ReadTimeout("read timed out")
    with pytest.raises(CallError) as caught:
        send_http(request(), CallPolicy(max_attempts=2, backoff_ms=0), client=client([timeout, timeout]), sleep=no_sleep)
    assert str(caught.value) == "POST https://api.example.com/v1/items timed out after 4 s (gave up after 2 attempts)"


def test_a_connection_error_is_retried():
    refused = httpx.ConnectError("connection refused")
    result = send_http(request(), CallPolicy(backoff_ms=0), client=client([refused, 200]), sleep=no_sleep)
    assert result.attempts == 2


def test_connection_errors_are_not_retried_when_retry_on_leaves_them_out():
    refused = httpx.ConnectError("connection refused")
    with pytest.raises(CallError, match="not retried: connection is not in retry_on"):
        send_http(request(), CallPolicy(retry_on=["5xx"]), client=client([refused, 200]), sleep=no_sleep)


def test_a_secret_echoed_in_an_error_answer_is_masked_in_the_message():
    with pytest.raises(CallError) as caught:
        send_http(request(), CallPolicy(max_attempts=1), client=client([(401, "bad token s3cr3t-token")]), sleep=no_sleep)
    assert "s3cr3t-token" not in str(caught.value) and MASK in str(caught.value)


def test_a_json_body_is_sent_as_json_with_its_content_type():
    seen = []
    send_http(request(body={"code": "X1", "n": 2}), CallPolicy(), client=client([200], seen), sleep=no_sleep)
    assert seen[0].headers["Content-Type"] == "application/json"
    assert json.loads(seen[0].content) == {"code": "X1", "n": 2}


def test_query_parameters_are_sent_in_the_url():
    seen = []
    send_http(request(method="GET", query={"page": 2, "q": "a b"}), CallPolicy(), client=client([200], seen), sleep=no_sleep)
    assert seen[0].url.params == httpx.QueryParams({"page": "2", "q": "a b"})


def test_a_text_answer_is_the_result_body_as_text():
    result = send_http(request(), CallPolicy(), client=client([(200, "accepted")]), sleep=no_sleep)
    assert result.body == "accepted"
