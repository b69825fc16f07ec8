"""The hook runner: every configured hook of a job, called at the right moments by the engine."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from portl.engine.hooks import python, script
from portl.engine.hooks.base import ROW_EVENTS, Drop, HookCall, HookContext
from portl.engine.hooks.rows import BatchRows
from portl.spec.models import HOOK_EVENTS, Hooks, HttpHook, LambdaHook, PythonHook, ScriptHook


class HookRunner:
    """Runs a job's hooks. Python hook functions are imported (and lambda hooks' boto3 clients
    made) when the runner is built, so a missing module fails before anything is written; close the runner (or use it as a context
    manager) to release its HTTP connections and its place on ``sys.path``."""

    def __init__(self, hooks: Hooks, context: HookContext, retry_attempts: int = 3, backoff_ms: int = 200):
        self.hooks = hooks
        self.context = context
        needs_client = any(isinstance(h, HttpHook) for event in HOOK_EVENTS for h in getattr(hooks, event))
        self._client = _http().httpx.Client(follow_redirects=True) if needs_client else None
        self._calls: dict[str, list[HookCall]] = {event: [] for event in HOOK_EVENTS}
        try:
            for event in HOOK_EVENTS:
                for index, hook in enumerate(getattr(hooks, event)):
                    self._calls[event].append(self._bind(hook, event, index, retry_attempts, backoff_ms))
        except BaseException:
            self.close()
            raise

    def _bind(self, hook: Any, event: str, index: int, retry_attempts: int, backoff_ms: int) -> HookCall:
        if isinstance(hook, ScriptHook):
            return script.ScriptCall(hook, event, index, self.context)
        if isinstance(hook, PythonHook):
            return python.PythonCall(hook, event, index, self.context)
        if isinstance(hook, LambdaHook):
            return _lambda().LambdaCall(hook, event, index, self.context, retry_attempts, backoff_ms)
        assert self._client is not None
        return _http().HttpCall(hook, event, index, self.context, self._client, retry_attempts, backoff_ms)

    def __enter__(self) -> HookRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def has(self, event: str) -> bool:
        """True when at least one hook is configured for ``event``."""
        return bool(self._event_calls(event))

    def describe(self, event: str) -> list[str]:
        """One line per hook of ``event`` for the plan, with secrets masked."""
        return describe(self.hooks, event)

    def run_event(self, event: str, payload: dict[str, Any]) -> None:
        """Run the hooks of a job or batch event in order; the first failure raises HookError."""
        if event in ROW_EVENTS:
            raise ValueError(f"{event} hooks run through before_rows / after_rows, not run_event")
        for call in self._event_calls(event):
            call.on_event(payload)

    def before_rows(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        """Run the before_row hooks on every row of ``batch``, in order.

        Returns the batch of kept rows (same schema, changed values coerced back to the column
        types) and ``(input row index, reason)`` for each dropped row.
        """
        calls = self._calls["before_row"]
        if not calls or batch.num_rows == 0:
            return batch, []
        rows = BatchRows(batch)
        current = rows.json_rows()
        alive = list(range(len(current)))
        dropped: list[tuple[int, str]] = []
        changed: dict[int, list[Any]] = {}
        changed_by: dict[int, str] = {}

        def settle(index: int, call: HookCall, verdict: Any, more: bool) -> bool:
            """Apply one hook's verdict on one row; False when the row was dropped."""
            if isinstance(verdict, Drop):
                dropped.append((index, verdict.reason))
                changed.pop(index, None)
                return False
            if verdict is not None:
                changed[index] = rows.decode(verdict, call.label, _row_in_batch(index, None))
                changed_by[index] = call.label
                if more:
                    current[index] = rows.encode(changed[index])
            return True

        # Hooks run row by row, each row through every hook in order; a batched hook (a lambda
        # hook with batch: true) takes the surviving rows of the whole batch at once.
        for first, segment in _segments(calls):
            last = first + len(segment)
            if _batched(segment[0]):
                call = segment[0]
                verdicts = call.on_rows([current[i] for i in alive], [_row_in_batch(i, None) for i in alive])
                alive = [i for i, v in zip(alive, verdicts) if settle(i, call, v, last < len(calls))]
                continue
            survivors = []
            for index in alive:
                for position, call in enumerate(segment, first):
                    if not settle(index, call, call.on_row(current[index], _row_in_batch(index, None)), position + 1 < len(calls)):
                        break
                else:
                    survivors.append(index)
            alive = survivors
        dropped.sort()
        return rows.assemble(alive, changed, changed_by, lambda i: _row_in_batch(i, None)), dropped

    def after_rows(self, batch: pa.RecordBatch, outcome: dict[str, Any]) -> None:
        """Run the after_row hooks on every row of a committed batch; the first failure raises HookError."""
        calls = self._calls["after_row"]
        if not calls or batch.num_rows == 0:
            return
        rows = BatchRows(batch).json_rows()
        wheres = [_row_in_batch(index, outcome.get("batch")) for index in range(len(rows))]
        for _, segment in _segments(calls):
            if _batched(segment[0]):
                segment[0].on_rows([dict(row) for row in rows] if len(calls) > 1 else rows, wheres, outcome)
                continue
            for row, where in zip(rows, wheres):
                for call in segment:
                    # Each hook gets its own copy, so one cannot change what the next one sees.
                    call.on_row(dict(row) if len(calls) > 1 else row, where, outcome)

    def close(self) -> None:
        """Release HTTP connections and the job folder's place on sys.path; safe to call twice."""
        for calls in getattr(self, "_calls", {}).values():
            for call in calls:
                call.close()
        self._calls = {event: [] for event in HOOK_EVENTS}
        if self._client is not None:
            self._client.close()
            self._client = None

    def _event_calls(self, event: str) -> list[HookCall]:
        if event not in self._calls:
            raise ValueError(f"unknown hook event {event!r}; expected one of {', '.join(HOOK_EVENTS)}")
        return self._calls[event]


def describe(hooks: Hooks, event: str) -> list[str]:
    """The plan's lines for ``event`` without building a runner (nothing is imported or opened)."""
    if event not in HOOK_EVENTS:
        raise ValueError(f"unknown hook event {event!r}; expected one of {', '.join(HOOK_EVENTS)}")
    lines = []
    for hook in getattr(hooks, event):
        if isinstance(hook, ScriptHook):
            lines.append(script.describe(hook))
        elif isinstance(hook, PythonHook):
            lines.append(python.describe(hook))
        elif isinstance(hook, LambdaHook):
            lines.append(_lambda().describe(hook))
        else:
            lines.append(_http().describe(hook))
    return lines


def _row_in_batch(index: int, batch: Any) -> str:
    """Rows are counted from 1 in messages, as a person reads a file."""
    return f"row {index + 1} of batch {batch}" if batch is not None else f"row {index + 1} of the batch"


def _batched(call: HookCall) -> bool:
    return bool(getattr(call, "batched", False))


def _segments(calls: list[HookCall]) -> list[tuple[int, list[HookCall]]]:
    """``calls`` cut into runs of row-by-row hooks and single batched hooks, each with the
    position of its first call."""
    segments: list[tuple[int, list[HookCall]]] = []
    for position, call in enumerate(calls):
        if _batched(call) or not segments or _batched(segments[-1][1][0]):
            segments.append((position, [call]))
        else:
            segments[-1][1].append(call)
    return segments


def _lambda():
    """The lambda hook module, imported on first use (it imports boto3 when a call is bound)."""
    from portl.engine.hooks import lambda_

    return lambda_


def _http():
    """The http hook module, imported on first use: httpx and Jinja load only for jobs that
    have an http hook."""
    from portl.engine.hooks import http

    return http
