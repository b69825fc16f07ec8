"""The walk through a flow's steps, shared by a run and a dry-run.

The :class:`Walker` goes through the steps in document order. A step with ``batch`` runs once
per item, each item in a scope of its own (see :mod:`portl.steps.context`); ``when`` skips a
step; ``conditional`` runs one branch; ``group`` runs its child steps. With a runtime (a run,
:mod:`portl.steps.runner`) each action is executed; with a recorder (the dry-run,
:mod:`portl.steps.plan`) it is prepared and recorded instead, so a plan shows exactly what a run
sends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portl.errors import CallError, Interrupted, PortlError, StepError
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import ConditionalStep, GroupStep, StepBase, iter_steps
from portl.steps.actions import Action, FlowInfo, Prepared, build_action
from portl.steps.context import Scope
from portl.steps.events import FlowEvents
from portl.steps.sql import dialect_for
from portl.steps.templating import Placeholder, TemplateFailure, compile_expression, compile_value, evaluate_condition


@dataclass
class StepStats:
    """What one step did over the run."""

    id: str
    type: str
    runs: int = 0
    skipped: int = 0
    attempts: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "runs": self.runs, "skipped": self.skipped, "attempts": self.attempts,
                "seconds": round(self.seconds, 3)}


def flow_info(loaded: LoadedFlow) -> FlowInfo:
    """The flow-wide facts actions need: the flow, and its database's SQL dialect."""
    database = loaded.database
    dialect = dialect_for(loaded.connection(database).type) if database else None
    return FlowInfo(loaded, dialect)


def names_of(step: StepBase) -> list[str]:
    """The result names a step saves: its own and those of every step inside it."""
    return [s.name for s, _, _ in iter_steps([step])]


def item_text(idx: tuple[int, ...], key: str = "") -> str:
    """`` on item 3 (key 'crm:R-4')`` for messages; empty outside a batch."""
    if not idx:
        return ""
    where = ".".join(str(i) for i in idx)
    return f" on item {where}" + (f" (key {key!r})" if key and key != where.replace(".", "/") else "")


class Walker:
    """Walks the steps of a flow, for a run (``runtime`` given) or a dry-run (``recorder`` given)."""

    def __init__(self, loaded: LoadedFlow, events: FlowEvents, *, runtime: Any = None, recorder: Any = None,
                 preview_items: int = 3):
        self.loaded = loaded
        self.flow = loaded.flow
        self.events = events
        self.runtime = runtime
        self.recorder = recorder
        self.dry = recorder is not None
        self.preview_items = preview_items
        self.info = flow_info(loaded)
        self.actions: dict[int, Action] = {}
        self.conditions: dict[int, Any] = {}
        self.sources: dict[int, tuple[Any, Any]] = {}
        self.stats: dict[str, StepStats] = {}
        self.counts = {"items": 0, "inserted": 0, "updated": 0, "statements": 0, "calls": 0, "enqueued": 0}
        self.per_item_commit = self.flow.transaction.scope == "item" and not self.dry
        for step, _, _ in iter_steps(self.flow.steps):
            self.stats[step.id] = StepStats(step.id, step.type)
            try:
                if step.when is not None:
                    self.conditions[id(step)] = compile_expression(step.when, "when")
                if step.batch is not None:
                    key = compile_value(step.batch.key, "batch.key") if step.batch.key else None
                    self.sources[id(step)] = (compile_expression(step.batch.from_, "batch.from"), key)
                if not isinstance(step, (GroupStep, ConditionalStep)):
                    self.actions[id(step)] = build_action(step, self.info)
            except TemplateFailure as exc:
                raise StepError(f"step {step.id}: {exc}", step_id=step.id) from exc

    # --- the walk -------------------------------------------------------------------------------

    def walk(self, scope: Scope) -> None:
        for step in self.flow.steps:
            self._step(step, scope, top=True)

    def _steps(self, steps: list[StepBase], scope: Scope) -> None:
        for step in steps:
            self._step(step, scope, top=False)

    def _step(self, step: StepBase, scope: Scope, top: bool) -> None:
        if step.batch is None:
            self._once(step, scope)
            if top and self.per_item_commit:
                self.runtime.commit(step, scope)
            return
        items = self._items(step, scope)
        started = time.perf_counter()
        self.events.emit("batch_started", step_id=step.id, idx=scope.idx, items=len(items))
        layers: list[Scope] = []
        _, render_key = self.sources[id(step)]
        for index, item in enumerate(items):
            if self.runtime is not None and self.runtime.stop.is_set():
                raise Interrupted(self.runtime.interrupted_message(step, index))
            inner = scope.item(step.batch.as_, item, index, None)
            if render_key is not None:
                key = self._render(step, inner, render_key, "batch.key")
                inner.key = f"{scope.key}/{key}" if scope.key else str(key)
                inner.values["item_key"] = inner.key
            self._once(step, inner)
            layers.append(Scope({}, inner.layer))
            if top:
                self.counts["items"] += 1
                if self.per_item_commit:
                    self.runtime.commit(step, inner)
        scope.collect(names_of(step), layers)
        self.events.emit("batch_finished", step_id=step.id, idx=scope.idx, items=len(items),
                         seconds=round(time.perf_counter() - started, 3))

    def _items(self, step: StepBase, scope: Scope) -> list[Any]:
        render, _ = self.sources[id(step)]
        value = self._render(step, scope, render, "batch.from")
        if isinstance(value, Placeholder):
            if self.dry:
                self.recorder.batch(step, scope, None, 1)
            return [Placeholder(f"{value.label}[0]")]
        if isinstance(value, (Mapping, str, bytes)) or value is None or not hasattr(value, "__iter__"):
            what = "None" if value is None else f"a {type(value).__name__}"
            self._failed(step, scope, StepError(f"step {step.id}{item_text(scope.idx, scope.key)}: batch.from gave {what}, not "
                                                "a list of items (e.g. steps.read_csv.rows)", step_id=step.id, idx=scope.idx))
            return []
        items = list(value)
        if self.dry:
            self.recorder.batch(step, scope, len(items), min(len(items), self.preview_items))
            return items[: self.preview_items]
        return items

    def _once(self, step: StepBase, scope: Scope) -> None:
        stats = self.stats[step.id]
        if isinstance(step, ConditionalStep):
            self._conditional(step, scope)
            stats.runs += 1
            return
        condition = self.conditions.get(id(step))
        if condition is not None:
            holds = self._condition(step, scope, condition)
            if holds is False:
                for name in names_of(step):
                    scope.save(name, None)
                stats.skipped += 1
                self.events.emit("step_skipped", "debug", step.id, scope.idx, reason="when is false")
                if self.dry:
                    self.recorder.note(step, scope, "skipped: its when is false")
                return
            if holds is None and self.dry:
                self.recorder.note(step, scope, "runs only when its when is true; that depends on a result known at run time")
        if isinstance(step, GroupStep):
            self._steps(step.steps, scope)
            scope.save(step.name, {child.name: scope.get(child.name) for child in step.steps})
            stats.runs += 1
            return
        started = time.perf_counter()
        result = self._act(step, scope, self.actions[id(step)])
        scope.save(step.name, result)
        stats.runs += 1
        elapsed = time.perf_counter() - started
        stats.seconds += elapsed
        if self.events.wants("debug"):
            self.events.emit("step_finished", "debug", step.id, scope.idx, type=step.type, ms=round(elapsed * 1000, 2))

    def _conditional(self, step: ConditionalStep, scope: Scope) -> None:
        branch = self._condition(step, scope, self.conditions[id(step)])
        if branch is None and self.dry:
            self.recorder.note(step, scope, "the condition depends on a result known at run time: both branches are shown")
            self._steps(step.then, scope)
            self._steps(step.else_, scope)
            scope.save(step.name, {"branch": Placeholder(f"{step.name}.branch")})
            return
        taken, other = (step.then, step.else_) if branch else (step.else_, step.then)
        for skipped in other:
            for name in names_of(skipped):
                scope.save(name, None)
        if self.dry:
            self.recorder.note(step, scope, f"the condition is {'true' if branch else 'false'}: {'then' if branch else 'else'} runs")
        self._steps(taken, scope)
        chosen = "then" if branch else "else"
        scope.save(step.name, {"branch": chosen if taken else "none"})
        if self.events.wants("debug"):
            self.events.emit("branch", "debug", step.id, scope.idx, branch=chosen)

    def _failed(self, step: StepBase, scope: Scope, exc: Exception) -> None:
        """A template failed: a run stops here; a dry-run records it and goes on with a stand-in."""
        error = exc if isinstance(exc, StepError) else StepError(f"step {step.id}{item_text(scope.idx, scope.key)}: {exc}",
                                                                   step_id=step.id, idx=scope.idx)
        if not self.dry:
            if error is exc:
                raise error
            raise error from exc
        self.recorder.error(step, scope, str(error))

    def _condition(self, step: StepBase, scope: Scope, condition: Any) -> bool | None:
        try:
            return evaluate_condition(condition, scope.values)
        except TemplateFailure as exc:
            self._failed(step, scope, exc)
            return None

    def _render(self, step: StepBase, scope: Scope, render: Any, where: str) -> Any:
        try:
            return render(scope.values)
        except TemplateFailure as exc:
            self._failed(step, scope, exc)
            return Placeholder(f"{step.name}.{where}")

    def _act(self, step: StepBase, scope: Scope, action: Action) -> Any:
        try:
            prepared = action.prepare(scope)
        except (TemplateFailure, CallError) as exc:
            self._failed(step, scope, exc)
            return Placeholder(step.name)
        if self.dry:
            result = action.placeholder(prepared)
            if action.runs_in_dry_run:
                try:
                    result = action.execute(prepared, None, scope)
                except PortlError as exc:
                    self._failed(step, scope, exc)
            self.recorder.add(step, scope, action, prepared)
            return result
        try:
            result = action.execute(prepared, self.runtime, scope)
        except StepError as exc:
            if not exc.idx and scope.idx:
                exc.idx = scope.idx
            raise
        except PortlError as exc:
            raise StepError(failure_message(step, scope, prepared, exc), step_id=step.id, idx=scope.idx,
                            details={"cause": str(exc), **prepared.shown}) from exc
        self._count(action, result)
        return result

    def _count(self, action: Action, result: Any) -> None:
        counts = self.counts
        if action.kind == "sql":
            counts["statements"] += 1
            kind = action.step.type
            if kind == "db.upsert" and isinstance(result, dict):
                counts["inserted" if result.get("was_inserted") else "updated"] += 1
            elif kind == "db.insert":
                counts["inserted"] += result.get("count", 0)
            elif kind == "db.update":
                counts["updated"] += result.get("count", 0)
        elif action.kind in ("http", "lambda"):
            counts["calls"] += 1


def failure_message(step: StepBase, scope: Scope, prepared: Prepared, exc: BaseException) -> str:
    """What failed, where, what was sent (secrets masked), and why."""
    lines = [f"step {step.id} ({step.type}) failed{item_text(scope.idx, scope.key)}: {exc}"]
    shown = prepared.shown
    for statement in shown.get("sql", []):
        lines.append(f"  SQL: {statement}")
    if shown.get("params"):
        lines.append("  params: " + ", ".join(f"{k}={v!r}" for k, v in shown["params"].items()))
    request = shown.get("request")
    if request:
        lines.append(f"  request: {request['method']} {request['url']}")
    if "function" in shown:
        lines.append(f"  function: {shown['function']}")
    return "\n".join(lines)
