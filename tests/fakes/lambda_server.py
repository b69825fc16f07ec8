"""A local server implementing the Lambda Invoke API, so that boto3 reaches it over HTTP
(``endpoint_url``) exactly as it reaches AWS.

``POST /2015-03-31/functions/{name}/invocations`` runs the handler registered under ``name`` with
the JSON payload and answers its JSON result. Like the real service:

- a handler that raises answers 200 with ``X-Amz-Function-Error: Unhandled`` and
  ``{"errorMessage", "errorType", "stackTrace"}`` (boto3 returns it as ``FunctionError``);
- an unknown function answers 404 ``ResourceNotFoundException``; a payload that is not JSON, 400
  ``InvalidRequestContentException``;
- ``fail_next(n, 429)`` answers ``TooManyRequestsException`` (throttling), ``fail_next(n, 500)``
  ``ServiceException``;
- ``InvocationType: Event`` answers 202 with an empty body after running the handler.

As its own process (handlers given as ``module:function``; ``--echo`` answers unknown functions
with ``{"echo": <payload>}``)::

    python -m tests.fakes.lambda_server --port 9001 --function enrich=benchmarks.handlers:enrich --echo
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.serving import FakeServer, Handler, Headers, serve_main

PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"
ERRORS = {
    400: "InvalidRequestContentException",
    404: "ResourceNotFoundException",
    429: "TooManyRequestsException",
    500: "ServiceException",
    502: "EC2UnexpectedException",
    503: "ServiceException",
}


@dataclass
class Invocation:
    """One call of the Invoke API as the server saw it, and how it was answered."""

    function: str
    payload: Any
    invocation_type: str
    qualifier: str | None
    headers: Headers
    status: int
    error: str | None = None  # "errorType: errorMessage" when the handler raised


class LambdaServer(FakeServer):
    """The fake Lambda service; ``endpoint_url`` goes into boto3's client (or a lambda connection)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, background: bool = True, echo_unknown: bool = False) -> None:
        self.invocations: list[Invocation] = []
        self.echo_unknown = echo_unknown
        self._handlers: dict[str, Callable[[Any], Any]] = {}
        self._failures: list[tuple[int, int | None]] = []
        self._stalls: list[float] = []
        self._lock = threading.Lock()
        super().__init__(host, port, background=background)
        self.endpoint_url = self.url

    def register(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Serve function ``name`` with ``handler(payload) -> result`` (both JSON values)."""
        with self._lock:
            self._handlers[name] = handler

    def fail_next(self, n: int, status: int = 429, retry_after: int | None = None) -> None:
        """Answer the next ``n`` invocations with a service error (429 throttling, 5xx) instead,
        with a ``Retry-After`` header when ``retry_after`` (seconds) is given."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * n)

    def stall_next(self, n: int, seconds: float) -> None:
        """Wait ``seconds`` before answering each of the next ``n`` invocations (to test timeouts)."""
        with self._lock:
            self._stalls.extend([seconds] * n)

    def invocations_of(self, function: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if i.function == function]

    def _invoke(self, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        if not (parts.path.startswith(PREFIX) and parts.path.endswith(SUFFIX)):
            return _error(404, "UnknownOperationException", f"no such operation: {parts.path}")
        name = unquote(parts.path[len(PREFIX):-len(SUFFIX)])
        if name.startswith("arn:") and ":function:" in name:
            name = name.split(":function:", 1)[1].split(":")[0]
        qualifier = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("Qualifier")
        kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload, bad_payload = raw.decode("utf-8", "replace"), True
        else:
            bad_payload = False
        invocation = Invocation(name, payload, kind, qualifier, Headers(headers.items()), 200)
        with self._lock:
            self.invocations.append(invocation)
            stall = self._stalls.pop(0) if self._stalls else 0.0
            failure = self._failures.pop(0) if self._failures else None
            handler = self._handlers.get(name)
        if stall:
            time.sleep(stall)
        if failure is not None:
            invocation.status, wait = failure
            return _error(invocation.status, ERRORS.get(invocation.status, "ServiceException"), "failing on purpose", wait)
        if bad_payload:
            invocation.status = 400
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        if handler is None and not self.echo_unknown:
            invocation.status = 404
            return _error(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}")
        try:
            result = handler(payload) if handler else {"echo": payload}
        except Exception as exc:  # the function failed: Lambda reports it in a 200 answer
            invocation.error = f"{type(exc).__name__}: {exc}"
            body = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__)}
            return 200, body, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"}
        if kind == "Event":
            invocation.status = 202
            return 202, None, {}
        return 200, result, {"X-Amz-Executed-Version": "$LATEST"}


class _LambdaHandler(Handler):
    def do_POST(self) -> None:
        raw = self.read_body()
        status, body, headers = self.app._invoke(self.path, self.headers, raw)
        if body is None:
            self.answer(status, b"", headers)
        else:
            self.answer_json(status, body, headers)


LambdaServer.handler = _LambdaHandler


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"x-amzn-ErrorType": code}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return status, {"Type": "User" if status < 500 else "Service", "message": message}, headers


def _load(spec: str) -> tuple[str, Callable[[Any], Any]]:
    name, _, target = spec.partition("=")
    module, _, attribute = target.partition(":")
    if not (name and module and attribute):
        raise SystemExit(f"--function takes NAME=module:function, not {spec!r}")
    return name, getattr(importlib.import_module(module), attribute)


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: Any) -> None:
        parser.add_argument("--function", action="append", default=[], metavar="NAME=module:function",
                            help="Serve function NAME with this Python callable (repeatable).")
        parser.add_argument("--echo", action="store_true", help='Answer unknown functions with {"echo": <payload>}.')

    def make(options: Any) -> LambdaServer:
        server = LambdaServer(options.host, options.port, background=False, echo_unknown=options.echo)
        for spec in options.function:
            server.register(*_load(spec))
        return server

    serve_main("A local server implementing the Lambda Invoke API.", make, arguments, argv)


if __name__ == "__main__":
    main()
