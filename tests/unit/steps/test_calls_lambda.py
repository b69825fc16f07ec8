"""lambda.invoke through boto3 against the local Lambda server: results, function errors,
throttling, missing functions and timeouts."""

import pytest

from portl.errors import CallError
from portl.steps.calls.config import LambdaConnection
from portl.steps.calls.lambda_ import LambdaRequest, invoke_lambda, lambda_client
from portl.steps.calls.policy import CallPolicy

FAST = CallPolicy(backoff_ms=0)


@pytest.fixture
def client(lambda_server):
    connection = LambdaConnection(type="lambda", endpoint_url=lambda_server.endpoint_url, access_key_id="test",
                                  secret_access_key="test", timeout_s=0.5)
    made = lambda_client(connection)
    yield made
    made.close()


def enrich(payload):
    return {"code": payload["code"], "title": payload["code"].lower(), "tags": ["a", "b"]}


def fail(payload):
    raise ValueError(f"cannot enrich {payload['code']}")


def test_the_json_result_of_the_function_is_the_body(lambda_server, client):
    lambda_server.register("enrich", enrich)
    result = invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), FAST)
    assert (result.status, result.body, result.attempts) == (200, {"code": "X1", "title": "x1", "tags": ["a", "b"]}, 1)
    assert lambda_server.invocations[0].payload == {"code": "X1"}


def test_a_function_error_raises_with_its_type_and_message_and_is_not_retried(lambda_server, client):
    lambda_server.register("enrich", fail)
    with pytest.raises(CallError) as caught:
        invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), FAST)
    assert str(caught.value) == ("lambda.invoke enrich failed in the function (Unhandled): ValueError: cannot enrich X1 "
                                 "(not retried: a function error comes back for the same payload)")
    assert len(lambda_server.invocations) == 1


def test_throttling_is_retried_and_every_attempt_is_reported(lambda_server, client):
    lambda_server.register("enrich", enrich)
    lambda_server.fail_next(2, 429)
    seen = []
    result = invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), FAST,
                           on_attempt=lambda n, outcome, details: seen.append((n, outcome, details.get("status"))))
    assert result.attempts == 3
    assert seen == [(1, "retry", 429), (2, "retry", 429), (3, "ok", 200)]


def test_a_service_error_that_persists_gives_up_after_max_attempts(lambda_server, client):
    lambda_server.register("enrich", enrich)
    lambda_server.fail_next(5, 500)
    with pytest.raises(CallError) as caught:
        invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), CallPolicy(max_attempts=2, backoff_ms=0))
    assert str(caught.value).startswith("lambda.invoke enrich answered 500 ServiceException")
    assert "gave up after 2 attempts" in str(caught.value)
    assert len(lambda_server.invocations) == 2


def test_a_missing_function_is_not_retried(lambda_server, client):
    with pytest.raises(CallError) as caught:
        invoke_lambda(client, LambdaRequest("nope", {}), FAST)
    assert "answered 404 ResourceNotFoundException: Function not found" in str(caught.value)
    assert len(lambda_server.invocations) == 1


def test_a_slow_function_times_out_and_is_retried(lambda_server, client):
    lambda_server.register("enrich", enrich)
    lambda_server.stall_next(1, 2.0)
    result = invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), FAST)
    assert result.attempts == 2


def test_boto3_does_not_retry_on_its_own(lambda_server, client):
    lambda_server.register("enrich", enrich)
    lambda_server.fail_next(1, 503)
    with pytest.raises(CallError):
        invoke_lambda(client, LambdaRequest("enrich", {"code": "X1"}), CallPolicy(max_attempts=1))
    assert len(lambda_server.invocations) == 1


def test_an_unreachable_endpoint_is_a_connection_failure():
    connection = LambdaConnection(type="lambda", endpoint_url="http://127.0.0.1:9", access_key_id="test",
                                  secret_access_key="test", timeout_s=1)
    with pytest.raises(CallError) as caught:
        invoke_lambda(lambda_client(connection), LambdaRequest("enrich", {}), CallPolicy(max_attempts=2, backoff_ms=0))
    assert "lambda.invoke enrich could not connect" in str(caught.value)
    assert caught.value.attempts == 2
