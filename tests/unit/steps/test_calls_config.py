"""The http and lambda connections: what they accept, and that their secrets never print."""

import pytest
from pydantic import ValidationError

from portl.steps.calls.config import HttpConnection, LambdaConnection


def test_an_http_connection_needs_an_http_url():
    with pytest.raises(ValidationError, match="base_url must be an http:// or https:// URL"):
        HttpConnection(type="http", base_url="api.example.com")


def test_an_http_connection_has_the_documented_defaults():
    connection = HttpConnection(type="http", base_url="https://api.example.com")
    assert (connection.timeout_s, connection.idempotency_header, connection.headers) == (10.0, "Idempotency-Key", {})


def test_credential_headers_and_url_passwords_are_masked_in_repr_and_dumps():
    connection = HttpConnection(type="http", base_url="https://bot:pa55word@api.example.com",
                                headers={"Authorization": "Bearer t0ken-value", "Accept": "application/json"})
    for shown in (repr(connection), str(connection.model_dump())):
        assert "t0ken-value" not in shown and "pa55word" not in shown
        assert "application/json" in shown
    assert connection.headers["Authorization"] == "Bearer t0ken-value"  # the value itself is intact


def test_unknown_keys_are_refused():
    with pytest.raises(ValidationError, match="timeout"):
        HttpConnection(type="http", base_url="https://a.example", timeout=3)


def test_a_lambda_secret_key_never_prints():
    connection = LambdaConnection(type="lambda", access_key_id="AKIDEXAMPLE", secret_access_key="wJalrXUtnFEMI")
    assert "wJalrXUtnFEMI" not in repr(connection) and "wJalrXUtnFEMI" not in str(connection.model_dump())
    assert connection.secret_access_key.get_secret_value() == "wJalrXUtnFEMI"


def test_a_lambda_key_id_without_its_secret_is_refused():
    with pytest.raises(ValidationError, match="access_key_id is given without secret_access_key"):
        LambdaConnection(type="lambda", access_key_id="AKIDEXAMPLE")


def test_a_lambda_endpoint_must_be_an_http_url():
    with pytest.raises(ValidationError, match="endpoint_url"):
        LambdaConnection(type="lambda", endpoint_url="localhost:9001")
