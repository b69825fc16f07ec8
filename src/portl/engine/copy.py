"""Whole-database copies: ``source: {..., tables: "*"}`` into a database destination.

As pgloader does: create the tables (the destination writes the ``CREATE TABLE`` from the source's
description: declared lengths, defaults), copy them (``parallel.workers`` tables at a time), then
add NOT NULL, primary keys, CHECK constraints, indexes and foreign keys, reset identity counters,
and create the views. Each table is an ordinary :class:`~portl.engine.plan.Plan` run under its own
name (``<job>.<table>``) in the ledger, so a killed copy resumes table by table; the keys and
constraints come last, once every table is in, which is also why tables referring to each other
(circular foreign keys) copy like any others.

One identifier policy (``copy.identifiers``) names tables and columns in every statement: the
source's names exactly (``keep``, the default) or folded to lower case (``lower``). It is applied
here, to the tables' descriptions, before the destination writes any statement. A table that
exists in the destination with rows stops the copy before anything is written, unless
``copy.if_exists`` says to skip it or to drop and copy it again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from portl.connectors import registry
from portl.connectors.base import Estimate, TableDef, ViewDef, WriteMode
from portl.engine.copy_names import IF_EXISTS_HINT, apply_policy, mapping_of
from portl.engine.executor import LocalExecutor
from portl.engine.plan import Plan, build_plan
from portl.engine.run import Counts, RunOptions, RunReport, run
from portl.errors import ConfigError, PortlError
from portl.plural import counted
from portl.spec.loader import LoadedJob
from portl.spec.models import Parallel
from portl.state import ledger as L


@dataclass
class DatabasePlan:
    """A plan per table, and the DDL that follows the data."""

    job: LoadedJob
    catalog: Any
    target: Any
    tables: list[TableDef]
    plans: list[Plan]
    constraints: list[str]
    warnings: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    """Statements before any table is created: dropping the tables ``copy.if_exists: replace`` copies again."""
    create: list[str] = field(default_factory=list)
    """``CREATE TABLE`` (and schema) statements of the tables the destination lacks."""
    views: list[str] = field(default_factory=list)
    """``CREATE VIEW`` statements, run one by one after the constraints."""
    occupied: dict[str, int] = field(default_factory=dict)
    held: list[tuple[TableDef, Plan]] = field(default_factory=list)
    """Tables ``copy.if_exists: skip`` leaves out, with their plans: the run this one resumes may have
    been copying them (they had no rows then)."""
    """Destination tables of the copy that hold rows already, with their row counts."""

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def if_exists(self) -> str:
        """What happens to destination tables that hold rows: ``fail``, ``skip`` or ``replace``."""
        return if_exists_of(self.job.job)

    @property
    def errors(self) -> list[str]:
        return [f"table {p.name}: {e}" for p in self.plans for e in p.errors]

    @property
    def estimate(self) -> Estimate:
        rows = [p.estimate.rows for p in self.plans]
        return Estimate(rows=sum(r or 0 for r in rows), exact=all(p.estimate.exact for p in self.plans))

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.name, "file": self.job.path, "kind": "database copy",
                "identifiers": self.job.job.copy_.identifiers, "if_exists": self.if_exists,
                "before": self.before,
                "create": self.create, "tables": [p.to_dict() for p in self.plans], "constraints": self.constraints,
                "views": self.views, "workers": self.job.job.parallel.workers, "warnings": self.warnings,
                "errors": self.errors}

    def close(self) -> None:
        for p in self.plans + [p for _, p in self.held]:
            p.close()
        for part in (self.catalog, self.target):
            close = getattr(part, "close", None)
            if close:
                close()


def _copy_targets() -> str:
    """The destination types a whole-database copy can go to, from their declared capabilities."""
    able = [kind.names[0] for kind in registry.connector_types()
            if kind.capabilities is not None and kind.capabilities.whole_databases]
    return " or ".join(able) or "a database"


def plan_database(loaded: LoadedJob, preview_rows: int = 5) -> DatabasePlan:
    """Describe every table of the source and plan its copy; writes nothing."""
    job = loaded.job
    if job.conflict is not None or job.write_mode == WriteMode.UPSERT:
        raise ConfigError("a whole-database copy takes mode append or replace; 'conflict' applies to one table")
    if job.mapping.columns:
        raise ConfigError("a whole-database copy maps columns by name; 'mapping.columns' applies to one table")
    declared = getattr(registry.module_for(job.destination.type), "sink_capabilities", None)
    if declared is not None and not declared().whole_databases:
        raise ConfigError(loaded.located(("destination",), (
            f"a {job.destination.type} destination cannot receive a whole-database copy (tables: on the source); "
            f"copy into {_copy_targets()}, or copy each table with its own job (source table:, destination table:)")))
    catalog = registry.open_source(job.source, loaded.base_dir)
    target = registry.open_sink(job.destination, loaded.base_dir)
    for part, needs, role in ((catalog, "table_source", "source"), (target, "table_sink", "destination")):
        if not hasattr(part, needs):
            raise ConfigError(f"{part.description} cannot be the {role} of a whole-database copy")
    plans: list[Plan] = []
    held: list[tuple[TableDef, Plan]] = []  # tables copy.if_exists: skip leaves out, should a resumed run need them
    try:
        described = catalog.tables()
        if not described:
            raise ConfigError(f"{catalog.description}: no table matches tables: {job.source.tables!r}")
        fold = job.copy_.identifiers == "lower"
        tables = apply_policy(described, fold)
        views: list[ViewDef] = [dataclasses.replace(v, name=v.name.lower() if fold else v.name)
                                for v in (catalog.views() if hasattr(catalog, "views") else [])]
        occupied, absent = _occupied(target, tables)
        warnings: list[str] = []
        if_exists = if_exists_of(job)
        skipping = set(occupied) if if_exists == "skip" else set()
        if skipping:
            warnings += [f"table {name} is not copied: the destination has it with {counted(rows, 'row')} "
                         "(copy.if_exists: skip)" for name, rows in occupied.items()]
        elif occupied and if_exists == "fail":
            warnings.append(_occupied_message(occupied, target.description) + " (unless the run resumes this copy)")
        replacing = set(occupied) if if_exists == "replace" else set()
        before = target.drop_ddl([t for t in tables if t.name in replacing]) if replacing else []
        create = {t.name: target.table_ddl(t) for t in tables if t.name in absent | replacing}
        # One partition per table: the workers copy several tables at once instead. Each table is
        # new, emptied or left out, so its rows are appended (mode replace is if_exists: replace).
        per_table = job.model_copy(update={"parallel": Parallel(workers=1), "mode": WriteMode.APPEND})
        for source_table, table in zip(described, tables):
            sub_job = per_table.model_copy(update={"mapping": mapping_of(source_table, table)})
            sub = dataclasses.replace(loaded, job=sub_job, name=f"{loaded.name}.{table.name}")
            source = catalog.table_source(source_table.name)
            try:
                sink = target.table_sink(table.name)
            except BaseException:
                source.close()
                raise
            table_plan = build_plan(sub, source, sink, preview_rows)
            if table.name in create:  # the destination's own CREATE TABLE runs in place of the generic one
                table_plan.target = dataclasses.replace(table_plan.target, ddl=create[table.name])
            if table.name in skipping:
                held.append((table, table_plan))
            else:
                plans.append(table_plan)
        copied = [t for t in tables if t.name not in skipping]
        constraints = target.constraint_ddl(copied, absent=frozenset(replacing))
        view_statements = target.view_ddl(views, tables) if views else []
    except BaseException:
        for p in plans + [p for _, p in held]:
            p.close()
        for part in (catalog, target):
            part.close()
        raise
    warnings += [f"table {p.name}: {w}" for p in plans for w in p.warnings]
    # What the destination had to change or leave out: an index renamed because its name is taken
    # in a namespace wider than the source's, a CHECK or default that does not translate, a view.
    warnings += list(getattr(catalog, "notes", None) or [])  # what the source cannot describe (an index on expressions)
    warnings += list(getattr(target, "notes", None) or [])
    creating = list(dict.fromkeys(s for statements in create.values() for s in statements))  # one CREATE SCHEMA
    return DatabasePlan(loaded, catalog, target, copied, plans, constraints, warnings, before=before, held=held,
                        create=creating, views=view_statements,
                        occupied=occupied if if_exists == "fail" else {})


def if_exists_of(job: Any) -> str:
    """``copy.if_exists``; ``mode: replace`` makes its default ``replace`` (tables are dropped and
    copied again, keys and all, where replacing each table's rows in place would trip over the
    foreign keys between them)."""
    if job.write_mode == WriteMode.REPLACE and "if_exists" not in job.copy_.model_fields_set:
        return "replace"
    return job.copy_.if_exists


def _occupied(target: Any, tables: list[TableDef]) -> tuple[dict[str, int], set[str]]:
    """The copy's tables the destination has with rows (and how many), and those it lacks."""
    occupied: dict[str, int] = {}
    absent: set[str] = set()
    for table in tables:
        sink = target.table_sink(table.name)
        try:
            if sink.table_info() is None:
                absent.add(table.name)
            else:
                rows = sink.count_rows() or 0
                if rows:
                    occupied[table.name] = rows
        finally:
            sink.close()
    return occupied, absent


def _occupied_message(occupied: dict[str, int], destination: str) -> str:
    listed = ", ".join(f"{name} ({counted(rows, 'row')})" for name, rows in occupied.items())
    return (f"{destination} has {counted(len(occupied), 'table')} of this copy with rows already: {listed}; "
            f"{IF_EXISTS_HINT}")


def run_database(plan: DatabasePlan, options: RunOptions) -> RunReport:
    """Copy every table, then apply keys, indexes, foreign keys and identity resets."""
    started = time.monotonic()
    ledger = L.Ledger(L.state_dir_for(plan.job.base_dir, options.state_dir))
    try:
        previous = ledger.latest(plan.name, plan.job.path)
        if options.resume and previous is not None and not previous.unfinished:
            return RunReport(previous.id, plan.name, previous.status, Counts.from_json(previous.counts), 0.0, None,
                             resumed=True, already_finished=True,
                             warnings=[f"run {previous.id} already finished; nothing was changed"])
        resuming = options.resume and previous is not None
        if plan.occupied and not resuming:
            unfinished = (f"; or continue the unfinished run {previous.id} with portl run --resume"
                          if previous is not None and previous.unfinished else "")
            raise ConfigError(_occupied_message(plan.occupied, plan.target.description) + unfinished)
        plans, constraints = list(plan.plans), plan.constraints
        if resuming:
            ledger.reopen(previous.id)
            record = previous
            plans, constraints = _resumed(plan, set(previous.meta.get("tables") or []))
        else:
            any_plan = (plan.plans or [p for _, p in plan.held])[0]
            record = ledger.start_run(plan.name, plan.job.path, any_plan.job_hash,
                                      {"tables": [t.name for t in plan.tables], "destination": plan.target.description})
        options.events.run_id = record.id
        options.events.emit("copy_started", tables=len(plans))
        reports: dict[str, RunReport] = {}
        lock = threading.Lock()
        tables_seen = {p.name: ledger.latest(p.name, plan.job.path) is not None for p in plans}

        def copy_table(table_plan: Plan, abort: threading.Event) -> None:
            if abort.is_set() or options.stop.is_set():
                return
            # A table that never started in the run being resumed starts now.
            resume = options.resume and tables_seen.get(table_plan.name, False)
            sub_options = dataclasses.replace(options, events=options.events.child(), resume=resume)
            report = run(table_plan, sub_options)
            with lock:
                reports[table_plan.name] = report

        status, error = L.FAILED, None
        late_warnings: list[str] = []  # what the statements after the data left out
        try:
            if plan.before and not resuming:
                plan.target.execute_ddl(plan.before)
            if plan.create:
                plan.target.execute_ddl(plan.create)
            LocalExecutor(plan.job.job.parallel.workers).map(copy_table, plans, threading.Event())
            if options.stop.is_set():
                raise PortlError("stopped by the user; continue with --resume")
            options.events.emit("constraints", statements=len(constraints))
            late_warnings = list(plan.target.execute_ddl(constraints) or [])  # e.g. a column left nullable
            late_warnings += _create_views(plan)
            status = L.SUCCEEDED
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            counts = Counts()
            warnings = list(plan.warnings) + late_warnings
            for name, report in reports.items():
                counts.add(report.counts)
                warnings += [f"table {name}: {w}" for w in report.warnings if w not in plan.warnings]
            ledger.finish_run(record.id, status, counts.to_json(), error)
        return RunReport(record.id, plan.name, status, counts, time.monotonic() - started, None,
                         resumed=options.resume, warnings=warnings,
                         earlier_rows=counts.read - sum(r.rows_moved for r in reports.values()))
    finally:
        ledger.close()


def _resumed(plan: DatabasePlan, first: set[str]) -> tuple[list[Plan], list[str]]:
    """The tables a resumed copy goes on with, and the statements after the data. The run being
    resumed decided which tables to copy: one ``copy.if_exists: skip`` would leave out now, because
    that run had begun filling it, is copied on. The constraint statements are worked out again
    from the destination as it is when tables were dropped first or the tables differ (the plan
    described them as for the start of a copy)."""
    extra = [(t, p) for t, p in plan.held if t.name in first]
    plans = plan.plans + [p for _, p in extra]
    if not extra and not plan.before:
        return plans, plan.constraints
    return plans, plan.target.constraint_ddl(plan.tables + [t for t, _ in extra])


def _create_views(plan: DatabasePlan) -> list[str]:
    """Create the views one by one, again while one more succeeds (a view may read another that
    comes after it by name). One the destination refuses is reported, not fatal: every table is
    in by then."""
    pending, refused, progress = list(plan.views), {}, True
    while pending and progress:
        progress, refused = False, {}
        for statement in list(pending):
            try:
                plan.target.execute_ddl([statement])
            except PortlError as exc:
                refused[statement] = str(exc)
            else:
                pending.remove(statement)
                progress = True
    return [f"a view is not copied: the destination refused it: {refused[s]}" for s in pending]
