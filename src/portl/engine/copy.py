"""Whole-database copies: ``source: {..., tables: "*"}`` into a database destination.

As pgloader does: create the tables, copy them (``parallel.workers`` tables at a time), then add
primary keys, indexes and foreign keys and reset identity counters. Each table is an ordinary
:class:`~portl.engine.plan.Plan` run under its own name (``<job>.<table>``) in the ledger, so a
killed copy resumes table by table; the keys and constraints come last, once every table is in.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from portl.connectors import registry
from portl.connectors.base import Estimate, TableDef, WriteMode
from portl.engine.executor import LocalExecutor
from portl.engine.plan import Plan, build_plan
from portl.engine.run import Counts, RunOptions, RunReport, run
from portl.errors import ConfigError, PortlError
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

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def errors(self) -> list[str]:
        return [f"table {p.name}: {e}" for p in self.plans for e in p.errors]

    @property
    def estimate(self) -> Estimate:
        rows = [p.estimate.rows for p in self.plans]
        return Estimate(rows=sum(r or 0 for r in rows), exact=all(p.estimate.exact for p in self.plans))

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.name, "file": self.job.path, "kind": "database copy",
                "tables": [p.to_dict() for p in self.plans], "constraints": self.constraints,
                "workers": self.job.job.parallel.workers, "warnings": self.warnings, "errors": self.errors}

    def close(self) -> None:
        for p in self.plans:
            p.close()
        for part in (self.catalog, self.target):
            close = getattr(part, "close", None)
            if close:
                close()


def plan_database(loaded: LoadedJob, preview_rows: int = 5) -> DatabasePlan:
    """Describe every table of the source and plan its copy; writes nothing."""
    job = loaded.job
    if job.conflict is not None or job.write_mode == WriteMode.UPSERT:
        raise ConfigError("a whole-database copy takes mode append or replace; 'conflict' applies to one table")
    if job.mapping.columns:
        raise ConfigError("a whole-database copy maps columns by name; 'mapping.columns' applies to one table")
    catalog = registry.open_source(job.source, loaded.base_dir)
    target = registry.open_sink(job.destination, loaded.base_dir)
    for part, needs, role in ((catalog, "table_source", "source"), (target, "table_sink", "destination")):
        if not hasattr(part, needs):
            raise ConfigError(f"{part.description} cannot be the {role} of a whole-database copy")
    plans: list[Plan] = []
    try:
        tables = catalog.tables()
        if not tables:
            raise ConfigError(f"{catalog.description}: no table matches tables: {job.source.tables!r}")
        # One partition per table: the workers copy several tables at once instead.
        per_table = job.model_copy(update={"parallel": Parallel(workers=1)})
        for table in tables:
            sub = dataclasses.replace(loaded, job=per_table, name=f"{loaded.name}.{table.name}")
            source = catalog.table_source(table.name)
            try:
                sink = target.table_sink(table.name)
            except BaseException:
                source.close()
                raise
            plans.append(build_plan(sub, source, sink, preview_rows))
        constraints = target.constraint_ddl(tables)
    except BaseException:
        for p in plans:
            p.close()
        for part in (catalog, target):
            part.close()
        raise
    warnings = [f"table {p.name}: {w}" for p in plans for w in p.warnings]
    # What the destination had to change in the keys and indexes, e.g. an index renamed because
    # its name is taken in a namespace wider than the source's.
    warnings += list(getattr(target, "notes", None) or [])
    return DatabasePlan(loaded, catalog, target, tables, plans, constraints, warnings)


def run_database(plan: DatabasePlan, options: RunOptions) -> RunReport:
    """Copy every table, then apply keys, indexes, foreign keys and identity resets."""
    started = time.monotonic()
    ledger = L.Ledger(options.state_dir)
    try:
        previous = ledger.latest(plan.name, plan.job.path)
        if options.resume and previous is not None and not previous.unfinished:
            return RunReport(previous.id, plan.name, previous.status, Counts.from_json(previous.counts), 0.0, None,
                             resumed=True, already_finished=True,
                             warnings=[f"run {previous.id} already finished; nothing was changed"])
        if options.resume and previous is not None:
            ledger.reopen(previous.id)
            record = previous
        else:
            record = ledger.start_run(plan.name, plan.job.path, plan.plans[0].job_hash,
                                      {"tables": [t.name for t in plan.tables], "destination": plan.target.description})
        options.events.run_id = record.id
        options.events.emit("copy_started", tables=len(plan.plans))
        reports: dict[str, RunReport] = {}
        lock = threading.Lock()
        tables_seen = {p.name: ledger.latest(p.name, plan.job.path) is not None for p in plan.plans}

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
        try:
            LocalExecutor(plan.job.job.parallel.workers).map(copy_table, plan.plans, threading.Event())
            if options.stop.is_set():
                raise PortlError("stopped by the user; continue with --resume")
            options.events.emit("constraints", statements=len(plan.constraints))
            plan.target.execute_ddl(plan.constraints)
            status = L.SUCCEEDED
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            counts = Counts()
            warnings = list(plan.warnings)
            for name, report in reports.items():
                counts.add(report.counts)
                warnings += [f"table {name}: {w}" for w in report.warnings if w not in plan.warnings]
            ledger.finish_run(record.id, status, counts.to_json(), error)
        return RunReport(record.id, plan.name, status, counts, time.monotonic() - started, None,
                         resumed=options.resume, warnings=warnings)
    finally:
        ledger.close()
