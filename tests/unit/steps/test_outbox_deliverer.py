"""Turning a stored outbox call back into a request through the flow's connections."""

import pytest

from portl.errors import CallError, ConfigError
from portl.secrets import MASK
from portl.steps.calls.config import HttpConnection, LambdaConnection
from portl.steps.calls.delivery import Deliverer
from portl.steps.calls.http import HttpRequest
from portl.steps.calls.lambda_ import LambdaRequest

CONNECTIONS = {
    "api": HttpConnection(type="http", base_url="https://api.example.com/v1", headers={"Authorization": "Bearer tok-123456"},
                          idempotency_header="X-Idempotency-Key"),
    "fn": LambdaConnection(type="lambda", region="eu-west-1"),
}
STORED = {"method": "POST", "path": "/events", "headers": {"X-Trace": "t1"}, "query": {"v": 2}, "body": {"n": 1}}


def test_an_api_call_gets_the_connection_url_headers_and_its_dedup_key():
    request = Deliverer(CONNECTIONS).request("api", "api", STORED, "key-1")
    assert isinstance(request, HttpRequest)
    assert (request.method, request.url, request.query, request.body) == ("POST", "https://api.example.com/v1/events", {"v": 2}, {"n": 1})
    assert request.headers == {"Authorization": "Bearer tok-123456", "X-Trace": "t1", "X-Idempotency-Key": "key-1"}


def test_a_stored_timeout_wins_over_the_connection():
    request = Deliverer(CONNECTIONS).request("api", "api", {**STORED, "timeout_s": 2.5}, "key-1")
    assert request.timeout_s == 2.5


def test_a_lambda_call_without_a_connection_name_uses_the_only_lambda_connection():
    request = Deliverer(CONNECTIONS).request("lambda", None, {"function": "enrich", "payload": {"a": 1}}, "key-1")
    assert request == LambdaRequest("enrich", {"a": 1})


def test_a_connection_the_flow_lacks_is_a_config_error_naming_the_ones_it_has():
    with pytest.raises(ConfigError, match=r"connection 'billing', which the flow file does not define \(its connections: api, fn\)"):
        Deliverer(CONNECTIONS).request("api", "billing", STORED, "key-1")


def test_a_connection_of_the_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError, match="connection 'fn' is type lambda, but the outbox holds http calls through it"):
        Deliverer(CONNECTIONS).request("api", "fn", STORED, "key-1")


def test_a_stored_call_without_a_method_cannot_be_delivered():
    with pytest.raises(CallError, match="has no method"):
        Deliverer(CONNECTIONS).request("api", "api", {"path": "/x"}, "key-1")


def test_an_unknown_kind_cannot_be_delivered():
    with pytest.raises(CallError, match="unknown call kind 'email'"):
        Deliverer(CONNECTIONS).request("email", "api", STORED, "key-1")


def test_describe_shows_the_request_without_secrets():
    stored = {**STORED, "url": "https://u:pw-secret@hooks.example.com/x?token=abc123", "path": None}
    line = Deliverer(CONNECTIONS).describe("api", None, stored, "key-1")
    assert line == f"POST https://u:{MASK}@hooks.example.com/x?token={MASK}"
    assert Deliverer(CONNECTIONS).describe("lambda", "fn", {"function": "enrich"}, "k") == "lambda enrich"
