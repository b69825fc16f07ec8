"""External calls of a flow: ``api.call`` over HTTP (httpx) and ``lambda.invoke`` (boto3).

Both share one retry policy (:class:`CallPolicy`) and one attempt loop, report every attempt to
an ``on_attempt`` callback, and fail with :class:`~portl.errors.CallError`. Requests are built
first and sent second, so a dry-run shows exactly the request a run sends (secrets masked).
"""

from portl.steps.calls.config import HttpConnection, LambdaConnection
from portl.steps.calls.http import HttpRequest, build_http_request, http_client, send_http
from portl.steps.calls.lambda_ import LambdaRequest, invoke_lambda, lambda_client
from portl.steps.calls.policy import DEFAULT_RETRY_ON, RETRY_CLASSES, CallPolicy, CallResult, retry_on_values

__all__ = [
    "CallPolicy", "CallResult", "DEFAULT_RETRY_ON", "HttpConnection", "HttpRequest", "LambdaConnection", "LambdaRequest",
    "RETRY_CLASSES", "build_http_request", "http_client", "invoke_lambda", "lambda_client", "retry_on_values", "send_http",
]
