"""``lambda.invoke``: call an AWS Lambda function through boto3 with a JSON payload and read its
JSON result. ``lambda`` hooks of migration jobs invoke through the same client and attempt
(:func:`lambda_client`, :func:`lambda_attempt`), with their own retry loop.

boto3's own retries are switched off (``max_attempts: 0``) so that the step's ``retry:`` policy
is the only one: throttling (429) and service errors (5xx), timeouts and dropped connections are
retried with backoff; a function that raised (``FunctionError``) is not, because the same payload
would fail the same way. boto3 is imported when a client is made, never by ``import portl``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portl.engine.hooks.base import excerpt
from portl.errors import CallError, ConfigError
from portl.steps.calls.config import LambdaConnection
from portl.steps.calls.policy import Attempt, CallPolicy, CallResult, OnAttempt, retry_after, run_attempts

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LambdaRequest:
    """One invocation: the function (name, ARN or ``name:alias``), its JSON payload, the alias or
    version to run (``qualifier``), and whether to wait for the answer (``RequestResponse``) or
    only queue the call (``Event``)."""

    function: str
    payload: Any
    qualifier: str | None = None
    invocation_type: str = "RequestResponse"

    def masked(self) -> dict[str, Any]:
        """The invocation for plans, logs and errors (a payload carries no connection secret)."""
        return {"function": self.function, "payload": self.payload}


def lambda_client(connection: LambdaConnection) -> Any:
    """A boto3 Lambda client for ``connection``, with boto3's retries off and its timeouts set."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("calling AWS Lambda needs boto3; install it with: pip install 'portl[aws]'") from None
    config = Config(retries={"max_attempts": 0}, read_timeout=connection.timeout_s,
                    connect_timeout=min(connection.timeout_s, CONNECT_TIMEOUT_S))
    keys: dict[str, Any] = {}
    if connection.access_key_id is not None and connection.secret_access_key is not None:
        keys = {"aws_access_key_id": connection.access_key_id,
                "aws_secret_access_key": connection.secret_access_key.get_secret_value()}
    return boto3.session.Session().client("lambda", region_name=connection.region, endpoint_url=connection.endpoint_url,
                                          config=config, **keys)


def invoke_lambda(client: Any, request: LambdaRequest, policy: CallPolicy, on_attempt: OnAttempt | None = None,
                  sleep: Callable[[float], None] | None = None) -> CallResult:
    """Invoke ``request.function`` synchronously, retrying as ``policy`` allows.

    The function's JSON answer is the result's ``body``. A function that failed raises
    :class:`CallError` with its errorType and errorMessage; so does the final failure to reach it.
    """
    payload = _payload_bytes(request)
    return run_attempts(f"lambda.invoke {request.function}", policy, lambda: lambda_attempt(client, request, policy, payload),
                        on_attempt, {"function": request.function}, sleep=sleep or time.sleep)


def lambda_attempt(client: Any, request: LambdaRequest, policy: CallPolicy, payload: bytes | None = None) -> Attempt:
    """One invocation of ``request``, never raising for a failure: the :class:`Attempt` says what
    came back and whether ``policy`` allows another try. ``payload`` is the request's payload
    already as JSON bytes, when the caller has them."""
    from botocore import exceptions as boto

    if payload is None:
        payload = _payload_bytes(request)
    arguments: dict[str, Any] = {"FunctionName": request.function, "InvocationType": request.invocation_type,
                                 "Payload": payload}
    if request.qualifier:
        arguments["Qualifier"] = request.qualifier
    try:
        response = client.invoke(**arguments)
        raw = response["Payload"].read()  # read it all: the connection goes back to the pool
    except boto.ClientError as exc:
        return _service_error(exc, policy)
    except (boto.ReadTimeoutError, boto.ConnectTimeoutError):
        return Attempt(problem=_timed_out(client), retryable=policy.retries_failure("timeout"),
                       why_not_retried="timeout is not in retry_on", details={"failure": "timeout"})
    except (boto.EndpointConnectionError, boto.ConnectionClosedError, boto.HTTPClientError, boto.ConnectionError) as exc:
        return Attempt(problem=f"could not connect: {exc}", retryable=policy.retries_failure("connection"),
                       why_not_retried="connection is not in retry_on", details={"failure": "connection"})
    except boto.NoCredentialsError:
        return Attempt(problem="found no AWS credentials; set access_key_id and secret_access_key, or "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile or role",
                       why_not_retried="credentials do not appear by waiting")
    except boto.BotoCoreError as exc:
        return Attempt(problem=f"failed: {exc}", why_not_retried="the request cannot be sent as it is")
    status = response.get("StatusCode")
    headers = dict(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}))
    body = _decode(raw)
    error = response.get("FunctionError")
    if error:
        return Attempt(problem=_function_error(error, body), status=status,
                       why_not_retried="a function error comes back for the same payload")
    return Attempt(result=CallResult(status, body, headers, 0), status=status)


def _payload_bytes(request: LambdaRequest) -> bytes:
    return json.dumps(request.payload, default=str, ensure_ascii=False).encode("utf-8")


def _timed_out(client: Any) -> str:
    read_timeout = getattr(getattr(getattr(client, "meta", None), "config", None), "read_timeout", None)
    return f"timed out after {read_timeout:g} s" if isinstance(read_timeout, (int, float)) else "timed out"


def _service_error(exc: Any, policy: CallPolicy) -> Attempt:
    """An answer from the Lambda service itself (not the function): throttled, not found, ..."""
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = response.get("Error", {}).get("Code") or "error"
    message = response.get("Error", {}).get("Message") or ""
    problem = f"answered {status} {code}" + (f": {excerpt(message)}" if message else "")
    if status is None:
        return Attempt(problem=problem, why_not_retried="the service gave no status")
    # Throttling is the service's capacity, not a fault in the request: retried with 5xx.
    retryable = policy.retries_status(status) or (status == 429 and "5xx" in policy.retry_on)
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    why = (f"4xx answers are retried only when retry_on names them, e.g. retry_on: [\"{status}\"]" if status < 500
           else f"{status} is not in retry_on")
    return Attempt(problem=problem, status=status, retryable=retryable, why_not_retried=why,
                   retry_after_s=retry_after(headers.get("retry-after")) if retryable else None)


def _function_error(kind: str, body: Any) -> str:
    if isinstance(body, dict) and ("errorMessage" in body or "errorType" in body):
        what = body.get("errorType") or kind
        return f"failed in the function ({kind}): {what}: {excerpt(str(body.get('errorMessage', '')))}"
    return f"failed in the function ({kind}): {excerpt(str(body))}"


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
