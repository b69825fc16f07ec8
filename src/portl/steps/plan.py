"""``plan_flow()``: the dry-run of a flow. It renders every template on the first items of each
batch and shows the SQL each DB step would run with its parameters, and each HTTP and Lambda
request (method, URL, headers, body), secrets masked. It calls nothing and writes nothing.

It walks the steps with the same :class:`~portl.steps.walk.Walker` as a run. ``csv.read`` reads
its file (reading is not writing). A query is not run: its result is a placeholder (``⟨name⟩``),
and so is every call's answer; a condition that depends on one is shown as unknown, with both
branches planned. A template that fails (a missing ``steps.*`` path) is reported as an error
naming the step, the item and the path, and the dry-run goes on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from portl.errors import StepError
from portl.secrets import mask_url
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import StepBase
from portl.steps.actions import Action, Prepared
from portl.steps.context import Scope
from portl.steps.events import FlowEvents, idx_value

PREVIEW_ITEMS = 3


@dataclass
class PlanEntry:
    """One line of the plan: a step on one item (``kind`` sql, http, lambda, outbox, read,
    migrate), a batch, a note, or an error."""

    step_id: str
    type: str
    kind: str
    idx: int | list[int] | None
    depth: int
    shown: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class FlowPlan:
    """Everything a run of the flow would do, as far as it can be known without doing it."""

    loaded: LoadedFlow
    entries: list[PlanEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.loaded.name

    def connections(self) -> dict[str, str]:
        """Each connection's secret-free description."""
        return {name: mask_url(config.describe()) for name, config in self.loaded.flow.connections.items()}

    def transaction(self) -> str:
        flow = self.loaded.flow
        database = self.loaded.database
        if database is None:
            return "no database steps: no transaction"
        where = f"{database} ({mask_url(self.loaded.connection(database).describe())})"
        if flow.transaction.scope == "item":
            return f"one transaction per item of each top-level batch on {where} (scope: item)"
        return f"one transaction for the whole flow on {where}, committed after the last step (scope: db)"

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (``portl plan --format json``)."""
        flow = self.loaded.flow
        return {
            "job": self.name,
            "version": 2,
            "file": self.loaded.path,
            "connections": self.connections(),
            "transaction": {"scope": flow.transaction.scope, "connection": self.loaded.database,
                            "description": self.transaction()},
            "outbox": {"deliver": flow.outbox.deliver},
            "entries": [asdict(e) for e in self.entries],
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def close(self) -> None:
        pass


class _Recorder:
    """Collects plan entries as the dry-run walks."""

    def __init__(self, plan: FlowPlan):
        self.plan = plan

    def _entry(self, step: StepBase, scope: Scope, kind: str, **fields: Any) -> PlanEntry:
        entry = PlanEntry(step.id, step.type, kind, idx_value(scope.idx), len(scope.idx), **fields)
        self.plan.entries.append(entry)
        return entry

    def add(self, step: StepBase, scope: Scope, action: Action, prepared: Prepared) -> None:
        describe = getattr(action, "describe_plan", None)
        if describe is not None:
            try:
                describe(prepared)
            except Exception as exc:  # noqa: BLE001 - a v1 plan that cannot be made is shown, not fatal here
                prepared.shown["errors"] = [f"{type(exc).__name__}: {exc}"]
        self._entry(step, scope, action.kind, shown=dict(prepared.shown))
        for error in prepared.shown.get("errors", []):
            self.plan.errors.append(f"step {step.id}: {error}")

    def batch(self, step: StepBase, scope: Scope, total: int | None, shown: int) -> None:
        if total is None:
            note = ("its items come from a result known only at run time; one placeholder item is shown")
        elif total > shown:
            note = f"{total:,} items; the first {'item is' if shown == 1 else f'{shown} are'} shown"
        else:
            note = f"{total:,} item{'' if total == 1 else 's'}"
        self._entry(step, scope, "batch", shown={"from": step.batch.from_, "as": step.batch.as_, "items": total}, notes=[note])

    def note(self, step: StepBase, scope: Scope, text: str) -> None:
        self._entry(step, scope, "note", notes=[text])

    def error(self, step: StepBase, scope: Scope, message: str) -> None:
        self._entry(step, scope, "error", error=message)
        self.plan.errors.append(message)


def plan_flow(loaded: LoadedFlow, preview_items: int = PREVIEW_ITEMS) -> FlowPlan:
    """The dry-run of ``loaded``: renders templates on the first ``preview_items`` items of each
    batch, runs nothing but ``csv.read``. Raises :class:`ConfigError` for template problems
    found without running anything (see :mod:`portl.steps.checks`)."""
    from portl.steps.checks import check_flow
    from portl.steps.walk import Walker

    check_flow(loaded)
    plan = FlowPlan(loaded)
    walker = Walker(loaded, FlowEvents(), recorder=_Recorder(plan), preview_items=max(1, preview_items))
    try:
        walker.walk(Scope.root(loaded.name, "dry-run"))
    except StepError as exc:  # a read that failed, or a batch that cannot be listed
        plan.errors.append(str(exc))
    finally:
        for action in walker.actions.values():
            action.close()
    if loaded.flow.transaction.scope == "item" and not any(s.batch for s in loaded.flow.steps):
        plan.warnings.append("transaction scope item commits per item of a top-level batch, but no top-level step has a batch: "
                             "each top-level step commits on its own")
    return plan
