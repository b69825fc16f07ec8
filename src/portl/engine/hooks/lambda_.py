"""``lambda`` hooks: invoke an AWS Lambda function with the row or payload as its JSON event.

The client and the single invocation are the ones ``lambda.invoke`` steps use
(:mod:`portl.steps.calls.lambda_`), so both read answers, function errors and throttling alike;
the retry loop is the hooks' own: the run's retry attempts and backoff, as for http hooks, with
throttling (429), 408, 5xx, timeouts and dropped connections tried again. boto3 is imported when
a runner with a lambda hook is built, never by ``import portl``.

A row hook with ``batch: true`` sends the rows of a batch together, ``batch_rows`` at a time, as
``{"job", "run_id", "event", "rows": [...]}`` (plus ``outcome`` for ``after_row``); a
``before_row`` answer ``{"rows": [...]}`` holds one entry per row sent, in order, each read as a
single row's answer is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from portl.engine.hooks.base import HookContext, RowVerdict, answer_verdict, hook_label, to_json_bytes
from portl.errors import HookError
from portl.secrets import mask_url
from portl.spec.models import LambdaHook

#: Besides every 5xx: throttling and "try again later" answers, as for http hooks.
RETRY_ON = frozenset({"5xx", "408", "429", "timeout", "connection"})
DEFAULT_REGION = "us-east-1"


def region_of(hook: LambdaHook, environ: dict[str, str] | None = None) -> str:
    """The region a hook calls: its own, else its ARN's, else AWS_REGION / AWS_DEFAULT_REGION,
    else us-east-1 (as a ``lambda`` connection of a flow)."""
    if hook.region:
        return hook.region
    parts = hook.function.split(":")
    if hook.function.startswith("arn:") and len(parts) > 3 and parts[3]:
        return parts[3]
    environ = os.environ if environ is None else environ
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def function_shown(hook: LambdaHook) -> str:
    """``enrich`` or ``enrich:live``: the function and the alias or version called."""
    return f"{hook.function}:{hook.qualifier}" if hook.qualifier else hook.function


def describe(hook: LambdaHook) -> str:
    """The plan's line: ``lambda: enrich:live (us-east-1, batches of 1000 rows)``; never a key."""
    where = region_of(hook)
    if hook.endpoint_url:
        where += f" at {mask_url(hook.endpoint_url)}"
    if hook.invocation == "Event":
        where += ", Event: not waited for"
    if hook.batch:
        where += f", batches of {hook.batch_rows} rows"
        if hook.concurrency > 1:
            where += f", {hook.concurrency} at once"
    return f"lambda: {function_shown(hook)} ({where})"


class LambdaCall:
    """One ``lambda`` hook bound to its event and position, with its own boto3 client (made when
    the runner is built, so a missing boto3 fails before anything is written)."""

    def __init__(self, hook: LambdaHook, event: str, index: int, context: HookContext,
                 retry_attempts: int = 3, backoff_ms: int = 200, sleep: Callable[[float], None] = time.sleep):
        from portl.steps.calls.config import LambdaConnection
        from portl.steps.calls.lambda_ import lambda_client
        from portl.steps.calls.policy import CallPolicy

        self.hook = hook
        self.event = event
        self.context = context
        self.batched = hook.batch
        self.label = hook_label(event, index, f"lambda {function_shown(hook)!r}")
        self._policy = CallPolicy(max_attempts=max(1, retry_attempts), backoff_ms=backoff_ms, retry_on=RETRY_ON)
        self._sleep = sleep
        connection = LambdaConnection(type="lambda", region=region_of(hook), endpoint_url=hook.endpoint_url,
                                      access_key_id=hook.access_key_id, secret_access_key=hook.secret_access_key,
                                      timeout_s=hook.timeout_s)
        self._client = lambda_client(connection)

    def on_event(self, payload: dict[str, Any]) -> None:
        self._invoke(payload, "")

    def on_row(self, row: dict[str, Any], where: str, outcome: dict[str, Any] | None = None) -> RowVerdict:
        answer = self._invoke(row, f" ({where})")
        if self.event != "before_row":
            return None
        return answer_verdict(answer, self.label, where)

    def on_rows(self, rows: list[dict[str, Any]], wheres: list[str], outcome: dict[str, Any] | None = None) -> list[RowVerdict]:
        """Send ``rows`` ``batch_rows`` at a time, up to ``concurrency`` invocations at once; one
        verdict per row, in order (all None outside before_row). The first failing invocation, in
        row order, fails the call once those in flight have ended."""
        size = self.hook.batch_rows
        chunks = [(rows[start:start + size], wheres[start:start + size]) for start in range(0, len(rows), size)]
        workers = min(self.hook.concurrency, len(chunks))
        if workers <= 1:
            answers = [self._chunk(chunk, places, outcome) for chunk, places in chunks]
        else:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="portl-lambda")
            try:
                answers = list(pool.map(lambda item: self._chunk(item[0], item[1], outcome), chunks))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # after a failure, what has not started never starts
        return [verdict for verdicts in answers for verdict in verdicts]

    def _chunk(self, chunk: list[dict[str, Any]], places: list[str], outcome: dict[str, Any] | None) -> list[RowVerdict]:
        """One invocation with the rows of ``chunk``, and its verdict on each."""
        payload: dict[str, Any] = {"job": self.context.job, "run_id": self.context.run_id, "event": self.event,
                                   "rows": chunk}
        if outcome is not None:
            payload["outcome"] = outcome
        span = _span(places)
        answer = self._invoke(payload, f" ({span})")
        entries = answer.get("rows") if isinstance(answer, dict) and self.event == "before_row" else None
        if entries is None:
            return [None] * len(chunk)  # no per-row answer: every row goes on as it is
        if not isinstance(entries, list) or len(entries) != len(chunk):
            got = f"{len(entries)} entries" if isinstance(entries, list) else f"a {type(entries).__name__}"
            raise HookError(f"{self.label} answered {got} in 'rows' for the {len(chunk)} rows it was sent ({span}); "
                            "answer one entry per row, in the order sent")
        return [answer_verdict(entry, self.label, where) for entry, where in zip(entries, places)]

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    def _invoke(self, payload: Any, suffix: str) -> Any:
        from portl.steps.calls.lambda_ import LambdaRequest, lambda_attempt
        from portl.steps.calls.policy import MAX_RETRY_AFTER_S

        request = LambdaRequest(self.hook.function, payload, self.hook.qualifier, self.hook.invocation)
        body = to_json_bytes(payload)
        delays: list[float] = []  # drawn at the first retry: most invocations never need them
        number = 0
        while True:
            number += 1
            outcome = lambda_attempt(self._client, request, self._policy, body)
            if outcome.result is not None:
                return outcome.result.body
            if not outcome.retryable or number >= self._policy.max_attempts:
                tries = f" (gave up after {number} attempts)" if number > 1 else ""
                raise HookError(mask_url(f"{self.label} {outcome.problem}{suffix}{tries}"))
            delays = delays or self._policy.delays()
            delay = delays[number - 1]
            if outcome.retry_after_s is not None:
                delay = max(delay, min(outcome.retry_after_s, MAX_RETRY_AFTER_S))
            self._sleep(delay)


def _span(places: list[str]) -> str:
    """``row 3 of the batch`` or ``rows 1 to 500 of the batch`` for the rows of one invocation."""
    if len(places) == 1:
        return places[0]
    first, last = places[0], places[-1]
    number, _, rest = first.partition(" ")[2].partition(" ")
    return f"rows {number} to {last.split(' ')[1]} {rest}"
