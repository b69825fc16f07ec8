"""The steps that reach outside the database: ``api.call``, ``lambda.invoke`` and ``outbox.enqueue``.

Each renders its request per item and hands it to :mod:`portl.steps.calls` to send, with the
step's ``retry:`` policy; every attempt is reported to the run's events. The idempotency key of a
call is, unless the step gives one, derived from the flow's name, the step id and the item key
(the batch's ``key`` template, else the item's index), so a re-run of the same input sends the
same keys. ``outbox.enqueue`` sends nothing: it writes the call into the outbox inside the flow's
transaction, to be delivered after commit.
"""

from __future__ import annotations

from typing import Any

from portl.spec.flow_models import ApiCallStep, ApiRequestFields, LambdaFields, LambdaInvokeStep, OutboxEnqueueStep, StepBase
from portl.steps.actions import Action, FlowInfo, Prepared
from portl.steps.calls.policy import CallPolicy
from portl.steps.context import Scope
from portl.steps.idempotency import idempotency_key
from portl.steps.templating import Placeholder, compile_value, jsonable


def policy_of(step: StepBase) -> CallPolicy:
    """The step's ``retry:`` as a call policy (the defaults when it has none)."""
    if step.retry is None:
        return CallPolicy()
    return CallPolicy(step.retry.max_attempts, step.retry.backoff_ms, frozenset(step.retry.retry_on))


class _Request:
    """The compiled templates of an HTTP request (an api.call step, or an outbox call)."""

    def __init__(self, fields: ApiRequestFields, where: str):
        prefix = f"{where}." if where else ""
        self.fields = fields
        self.url = compile_value(fields.url, prefix + "url") if fields.url is not None else None
        self.path = compile_value(fields.path, prefix + "path") if fields.path is not None else None
        self.headers = compile_value(dict(fields.headers), prefix + "headers")
        self.query = compile_value(dict(fields.query), prefix + "query")
        self.body = compile_value(fields.body, prefix + "body")
        key = fields.idempotency_key
        self.key = compile_value(key, prefix + "idempotency_key") if isinstance(key, str) else key

    def render(self, scope: Scope, job: str, step_id: str) -> dict[str, Any]:
        values = scope.values
        return {
            "method": self.fields.method,
            "url": None if self.url is None else str(self.url(values)),
            "path": None if self.path is None else str(self.path(values)),
            "headers": {k: str(v) for k, v in self.headers(values).items() if v is not None},
            "query": jsonable(self.query(values)),
            "body": jsonable(self.body(values)),
            "key": _key(self.key, values, job, step_id, scope),
        }


def _key(key: Any, values: dict[str, Any], job: str, step_id: str, scope: Scope) -> str | None:
    if key is True:
        return idempotency_key(job, step_id, scope.key)
    if key is False or key is None:
        return None
    rendered = key(values)
    return None if rendered is None else str(rendered)


class ApiCall(Action):
    """``api.call`` -> ``{status, body, headers, attempts}``."""

    kind = "http"
    step: ApiCallStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.request = _Request(step, "")
        self.connection = info.connection(step.connection)
        self.policy = policy_of(step)

    def prepare(self, scope: Scope) -> Prepared:
        from portl.steps.calls.http import build_http_request

        parts = self.request.render(scope, self.info.job, self.step.id)
        request = build_http_request(self.connection, method=parts["method"], url=parts["url"], path=parts["path"],
                                     headers=parts["headers"], query=parts["query"], body=parts["body"],
                                     idempotency_key=parts["key"], timeout_s=self.step.timeout_s)
        return Prepared(values=parts, payload=request, show=lambda: {"request": request.masked(), "idempotency_key": parts["key"]})

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        from portl.steps.calls.http import send_http

        result = send_http(prepared.payload, self.policy, client=runtime.http_client(),
                           on_attempt=runtime.on_attempt(self.step, scope))
        return {"status": result.status, "body": result.body, "headers": result.headers, "attempts": result.attempts}

    def placeholder(self, prepared: Prepared) -> Any:
        name = self.step.name
        return {"status": Placeholder(f"{name}.status"), "body": Placeholder(f"{name}.body"),
                "headers": Placeholder(f"{name}.headers"), "attempts": Placeholder(f"{name}.attempts")}


class _Invocation:
    """The compiled templates of a Lambda invocation."""

    def __init__(self, fields: LambdaFields, where: str):
        prefix = f"{where}." if where else ""
        self.function = compile_value(fields.function, prefix + "function")
        self.payload = compile_value(fields.payload, prefix + "payload")

    def render(self, scope: Scope) -> tuple[str, Any]:
        return str(self.function(scope.values)), jsonable(self.payload(scope.values))


def lambda_connection_name(info: FlowInfo, name: str | None) -> str:
    """The step's lambda connection, or the flow's only one (the loader checked there is one)."""
    if name is not None:
        return name
    return next(n for n, c in info.loaded.flow.connections.items() if getattr(c, "type", None) == "lambda")


class LambdaInvoke(Action):
    """``lambda.invoke`` -> the function's JSON answer."""

    kind = "lambda"
    step: LambdaInvokeStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.invocation = _Invocation(step, "")
        self.connection = lambda_connection_name(info, step.connection)
        self.policy = policy_of(step)

    def prepare(self, scope: Scope) -> Prepared:
        from portl.steps.calls.lambda_ import LambdaRequest

        function, payload = self.invocation.render(scope)
        request = LambdaRequest(function, payload)
        endpoint = self.info.connection(self.connection).describe()
        return Prepared(values={"function": function, "payload": payload}, payload=request,
                        show=lambda: {"connection": self.connection, "endpoint": endpoint, **request.masked()})

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        from portl.steps.calls.lambda_ import invoke_lambda

        client = runtime.lambda_client(self.connection, self.step.timeout_s)
        return invoke_lambda(client, prepared.payload, self.policy, runtime.on_attempt(self.step, scope)).body


class Enqueue(Action):
    """``outbox.enqueue`` -> ``{enqueued, dedup_key}``: the call is written, not sent."""

    kind = "outbox"
    step: OutboxEnqueueStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        call = step.call
        if call.type == "api.call":
            self.request: _Request | None = _Request(call, "call")
            self.invocation: _Invocation | None = None
            self.connection = call.connection
        else:
            self.request = None
            self.invocation = _Invocation(call, "call")
            self.connection = lambda_connection_name(info, call.connection)
            key = call.idempotency_key
            self.key = compile_value(key, "call.idempotency_key") if isinstance(key, str) else key

    def prepare(self, scope: Scope) -> Prepared:
        from portl.steps.outbox import OutboxCall

        call = self.step.call
        if self.request is not None:
            parts = self.request.render(scope, self.info.job, self.step.id)
            key = parts.pop("key")
            stored = {k: v for k, v in parts.items() if v not in (None, {}) or k == "body"}
            if call.timeout_s is not None:
                stored["timeout_s"] = call.timeout_s
            kind = "api"
        else:
            function, payload = self.invocation.render(scope)
            key = _key(self.key, scope.values, self.info.job, self.step.id, scope)
            stored = {"function": function, "payload": payload}
            kind = "lambda"
        idx = scope.idx[-1] if scope.idx else None
        outbox_call = OutboxCall(self.info.job, self.step.id, idx, kind, self.connection, stored, key)

        def show() -> dict[str, Any]:
            request = self._shown_http(stored, key) if kind == "api" else dict(stored)
            return {"outbox": {"kind": kind, "connection": self.connection, "dedup_key": key, "request": request}}

        return Prepared(values={"dedup_key": key}, payload=outbox_call, show=show)

    def _shown_http(self, stored: dict[str, Any], key: str) -> dict[str, Any]:
        """The request as it will be delivered (the connection's headers masked), for plans."""
        from portl.steps.calls.http import build_http_request

        connection = self.info.connection(self.connection)
        request = build_http_request(connection, method=stored["method"], url=stored.get("url"), path=stored.get("path"),
                                     headers=stored.get("headers") or {}, query=stored.get("query") or {},
                                     body=stored.get("body"), idempotency_key=key, timeout_s=stored.get("timeout_s"))
        return request.masked()

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        from portl.steps.outbox import enqueue

        session = runtime.session
        fresh = enqueue(session.conn, session.outbox_dialect, prepared.payload)
        runtime.enqueued(fresh)
        return {"enqueued": fresh, "dedup_key": prepared.values["dedup_key"]}

    def placeholder(self, prepared: Prepared) -> Any:
        return {"enqueued": Placeholder(f"{self.step.name}.enqueued"), "dedup_key": prepared.values["dedup_key"]}
