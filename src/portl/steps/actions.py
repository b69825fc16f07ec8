"""What each step type does, as one :class:`Action` per step, used alike by a run and a dry-run.

An action compiles its step's templates once. Per item, :meth:`Action.prepare` renders them into
a :class:`Prepared`: the values, the statement or request, and ``shown``, the same thing with
secrets masked, for plans, logs and errors. A run then calls :meth:`Action.execute`; a dry-run
calls :meth:`Action.placeholder` instead, which calls nothing and gives a stand-in result. So a
dry-run shows exactly what a run sends.

This module holds the base, ``csv.read`` (which a dry-run does run: reading is not writing) and
``migrate``; the ``db.*`` actions live in :mod:`portl.steps.database`, the calls and the outbox in
:mod:`portl.steps.remote`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portl.errors import ConfigError, StepError
from portl.secrets import MASK, is_sensitive_name, mask_url
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import CsvReadStep, MigrateStep, StepBase
from portl.steps.context import Scope
from portl.steps.sql import Dialect
from portl.steps.templating import Placeholder, jsonable


@dataclass(frozen=True)
class FlowInfo:
    """What actions need to know about the flow as a whole."""

    loaded: LoadedFlow
    dialect: Dialect | None

    @property
    def job(self) -> str:
        return self.loaded.name

    @property
    def base_dir(self) -> str:
        return self.loaded.base_dir

    def connection(self, name: str | None) -> Any:
        return None if name is None else self.loaded.flow.connections[name]


class Prepared:
    """One step rendered for one item: its ``values``, what it will send (``payload``), and
    :attr:`shown`, the same with secrets masked. ``shown`` is made on first use from ``show``:
    a run needs it only for a failure or a debug log, so most items never pay for it."""

    __slots__ = ("values", "payload", "_show", "_shown")

    def __init__(self, values: dict[str, Any] | None = None, payload: Any = None, shown: dict[str, Any] | None = None,
                 show: Callable[[], dict[str, Any]] | None = None):
        self.values = {} if values is None else values
        self.payload = payload
        self._shown = shown
        self._show = show

    @property
    def shown(self) -> dict[str, Any]:
        if self._shown is None:
            self._shown = self._show() if self._show is not None else {}
        return self._shown


class Action:
    """The behaviour of one step; see the module docstring."""

    #: What it does, for plans and logs: read, sql, http, lambda, outbox, migrate, group.
    kind = "step"
    #: Whether a dry-run executes it (only reads do).
    runs_in_dry_run = False

    def __init__(self, step: StepBase, info: FlowInfo):
        self.step = step
        self.info = info

    def prepare(self, scope: Scope) -> Prepared:
        return Prepared()

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        raise NotImplementedError

    def placeholder(self, prepared: Prepared) -> Any:
        return Placeholder(self.step.name)

    def close(self) -> None:
        """Release what the action holds (a migrate step's open plan)."""


def shown_value(name: str, value: Any) -> Any:
    """A value as plans, logs and errors print it: masked when its name looks like a credential,
    URLs without passwords, and JSON-friendly."""
    if is_sensitive_name(str(name)) and value is not None:
        return MASK
    value = jsonable(value)
    if isinstance(value, str):
        return mask_url(value)
    return value


# --- csv.read ----------------------------------------------------------------------------------


class ReadCsv(Action):
    """``csv.read``: every row of the file as a mapping of column name to text (None for an empty
    unquoted field), read by the CSV connector with v1's quoting, encoding and reject rules."""

    kind = "read"
    runs_in_dry_run = True
    step: CsvReadStep

    def prepare(self, scope: Scope) -> Prepared:
        return Prepared(shown={"file": self.step.path})

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        from portl.connectors.csv import open_source

        source = open_source(self.step.csv_config(), self.info.base_dir)
        rows: list[dict[str, Any]] = []
        rejects: list[dict[str, Any]] = []
        try:
            for chunk in source.read(25_000, None):
                rows.extend(chunk.data.to_pylist())
                rejects.extend({"line": r.line, "record": r.record, "error": r.error, "original": r.original}
                               for r in chunk.rejects)
        finally:
            source.close()
        if len(rejects) > self.step.max_rejects:
            first = rejects[0]
            raise StepError(
                f"step {self.step.id}: {len(rejects)} row{'s' if len(rejects) > 1 else ''} of {self.step.path} cannot be read "
                f"(more than max_rejects: {self.step.max_rejects}); the first, line {first['line']}: {first['error']}",
                step_id=self.step.id)
        prepared.shown.update(rows=len(rows), columns=list(source.schema().names), rejects=len(rejects))
        return {"rows": rows, "count": len(rows), "rejects": rejects}


# --- migrate -----------------------------------------------------------------------------------


class Migrate(Action):
    """``migrate``: run a v1 migration job (its own connections and transactions, not the flow's)."""

    kind = "migrate"
    step: MigrateStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        try:
            self.job = info.loaded.jobs[step.id]
        except KeyError:
            raise ConfigError(f"step {step.id}: its v1 job was not loaded") from None

    def prepare(self, scope: Scope) -> Prepared:
        job = self.job.job
        where = self.job.path if isinstance(self.step.job, str) else f"inline in step {self.step.id}"
        return Prepared(shown={"job": self.job.name, "file": where, "source": job.source.describe(),
                               "destination": job.destination.describe(), "mode": job.write_mode.value})

    def describe_plan(self, prepared: Prepared) -> None:
        """Add the v1 plan's DDL and per-batch statements (reads the source; writes nothing)."""
        from portl.engine.plan import plan as make_plan

        the_plan = make_plan(self.job, preview_rows=0)
        try:
            target = getattr(the_plan, "target", None)
            if target is not None:
                prepared.shown.update(ddl=list(target.ddl), per_batch=list(target.per_batch))
            if the_plan.errors:
                prepared.shown["errors"] = list(the_plan.errors)
        finally:
            the_plan.close()

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        from portl.engine.plan import plan as make_plan
        from portl.engine.run import RunOptions, run

        the_plan = make_plan(self.job, preview_rows=0)
        runtime.migrated.append(self.step.id)
        try:
            report = run(the_plan, RunOptions(state_dir=runtime.state_dir, stop=runtime.stop))
        finally:
            the_plan.close()
        return {"run_id": report.run_id, "status": report.status, "counts": report.counts.to_json()}

    def placeholder(self, prepared: Prepared) -> Any:
        name = self.step.name
        return {"run_id": Placeholder(f"{name}.run_id"), "status": Placeholder(f"{name}.status"),
                "counts": Placeholder(f"{name}.counts")}


def build_action(step: StepBase, info: FlowInfo) -> Action:
    """The action of ``step`` (groups and conditionals are walked by the runner, not acted)."""
    from portl.steps import database, remote

    kinds: dict[str, type[Action]] = {
        "csv.read": ReadCsv, "migrate": Migrate,
        "db.upsert": database.Upsert, "db.insert": database.Insert, "db.update": database.Update,
        "db.query_one": database.QueryOne, "db.query": database.Query,
        "api.call": remote.ApiCall, "lambda.invoke": remote.LambdaInvoke, "outbox.enqueue": remote.Enqueue,
    }
    if step.type not in kinds:
        return Action(step, info)
    return kinds[step.type](step, info)

