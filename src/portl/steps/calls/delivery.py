"""Sending a stored call (from the outbox) through the flow's connections.

A stored call holds what a step rendered, never resolved secrets: the connection is named, and its
base URL, headers and keys are taken from the flow file when the call is delivered. Its
idempotency key goes in the connection's idempotency header, so a call delivered twice (a crash
between delivery and marking it delivered) is recognised by the receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portl.errors import CallError, ConfigError
from portl.steps.calls.config import HttpConnection, LambdaConnection
from portl.steps.calls.http import HttpRequest, build_http_request, http_client, send_http
from portl.steps.calls.lambda_ import LambdaRequest, invoke_lambda, lambda_client
from portl.steps.calls.policy import DEFAULT_RETRY_ON, CallPolicy, CallResult, OnAttempt

KINDS = ("api", "lambda")


class Deliverer:
    """Sends stored calls, one attempt each; HTTP and Lambda clients are made once per connection."""

    def __init__(self, connections: Mapping[str, Any]):
        self.connections = connections
        self._http: Any = None
        self._lambda: dict[str, Any] = {}

    def request(self, kind: str, connection: str | None, request: Mapping[str, Any], key: str) -> HttpRequest | LambdaRequest:
        """The request a stored call becomes. A call whose stored request cannot be used raises a
        :class:`CallError` (it will never succeed); a connection the flow file lacks, a
        :class:`ConfigError` (the flow file needs fixing, the call is fine)."""
        if kind == "api":
            config = self._connection(connection, HttpConnection, "http") if connection else None
            method = request.get("method")
            if not method:
                raise CallError("the stored api call has no method")
            return build_http_request(config, method=str(method), url=request.get("url"), path=request.get("path"),
                                      headers=dict(request.get("headers") or {}), query=dict(request.get("query") or {}),
                                      body=request.get("body"), idempotency_key=key, timeout_s=request.get("timeout_s"))
        if kind == "lambda":
            self._connection(self._lambda_name(connection), LambdaConnection, "lambda")
            if not request.get("function"):
                raise CallError("the stored lambda call has no function")
            return LambdaRequest(str(request["function"]), request.get("payload"))
        raise CallError(f"unknown call kind {kind!r}; expected one of {', '.join(KINDS)}")

    def send_once(self, kind: str, connection: str | None, request: Mapping[str, Any], key: str,
                  on_attempt: OnAttempt | None = None) -> CallResult:
        """One attempt at delivering the call; a failure raises :class:`CallError` with
        ``retryable`` telling whether a later attempt may succeed (the stored ``retry_on`` decides,
        else 5xx, timeouts and connection errors)."""
        built = self.request(kind, connection, request, key)
        try:
            policy = CallPolicy(max_attempts=1, retry_on=request.get("retry_on") or DEFAULT_RETRY_ON)
        except ValueError as exc:
            raise CallError(f"the stored call's retry_on is not usable: {exc}") from None
        if isinstance(built, HttpRequest):
            if self._http is None:
                self._http = http_client()
            return send_http(built, policy, client=self._http, on_attempt=on_attempt)
        name = self._lambda_name(connection)
        client = self._lambda.get(name)
        if client is None:
            client = self._lambda[name] = lambda_client(self.connections[name])
        return invoke_lambda(client, built, policy, on_attempt)

    def describe(self, kind: str, connection: str | None, request: Mapping[str, Any], key: str) -> str:
        """One line for progress output, secrets masked: ``POST https://api.example.com/items``."""
        try:
            built = self.request(kind, connection, request, key)
        except (CallError, ConfigError):
            return f"{kind} via {connection or '(no connection)'}"
        if isinstance(built, HttpRequest):
            return f"{built.method} {built.shown_url()}"
        return f"lambda {built.function}"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        for client in self._lambda.values():
            client.close()

    def _lambda_name(self, connection: str | None) -> str:
        """The call's lambda connection; a call that names none goes through the flow's only one."""
        if connection:
            return connection
        names = [n for n, c in self.connections.items() if isinstance(c, LambdaConnection)]
        if len(names) != 1:
            raise ConfigError(f"the outbox holds a lambda call that names no connection, and the flow file has "
                              f"{len(names)} lambda connections; name it in the step's call")
        return names[0]

    def _connection(self, name: str, model: type, kind: str) -> Any:
        config = self.connections.get(name)
        if config is None:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(f"the outbox holds calls through connection {name!r}, which the flow file does not "
                              f"define (its connections: {known})")
        if not isinstance(config, model):
            raise ConfigError(f"connection {name!r} is type {getattr(config, 'type', '?')}, but the outbox holds "
                              f"{kind} calls through it")
        return config
