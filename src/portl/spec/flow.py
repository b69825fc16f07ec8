"""Loading a flow file (``version: 2``): YAML in, a validated flow out, or every problem with its
file:line:column.

In order: parse the YAML keeping positions; find the connections the steps name (in the file's
``connections:``, else in the connections file, as for v1 jobs); substitute ``${env:NAME}`` in
the connections; validate with :func:`~portl.spec.flow_models.flow_model`; then the rules that
span several steps: unique ids and result names, each step's connection of the right kind, one
database per flow. A ``migrate`` step's v1 job is loaded here too, so that ``portl validate``
reports its problems. Templates are checked later, by :mod:`portl.steps.checks`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from portl.errors import ConfigError, Problem
from portl.spec.connections import ConnectionBook, resolve_references
from portl.spec.envsubst import Substitution, substitute
from portl.spec.flow_models import (
    DB_STEP_TYPES, DB_TYPES, FlowBase, MigrateStep, OutboxEnqueueStep, StepBase, flow_model, iter_steps,
)
from portl.spec.loader import JobText, LoadedJob, _ordered, _substitute_env, load_job, read_job_file
from portl.spec.models import job_model
from portl.spec.positions import Path, Positions, dotted, parse_yaml
from portl.spec.problems import Context, validation_problems

__all__ = ["LoadedFlow", "load_flow", "flow_json_schema"]


@dataclass(frozen=True)
class LoadedFlow:
    """A validated flow and where it came from. ``jobs`` holds the v1 job of each ``migrate`` step,
    by step id; ``positions`` locates every value of the file (for problems found later)."""

    flow: FlowBase
    name: str
    path: str
    base_dir: str
    text: str
    positions: Positions
    jobs: dict[str, LoadedJob] = field(default_factory=dict)

    @property
    def database(self) -> str | None:
        """The name of the connection the DB steps and the outbox use, if the flow has one."""
        return database_connection(self.flow)

    def connection(self, name: str) -> Any:
        return self.flow.connections[name]

    def problem(self, path: Path, message: str) -> Problem:
        """A Problem located at ``path`` of the flow file."""
        return self.positions.problem(path, message)


def load_flow(path: str | JobText, connections_file: str | None = None, environ: Mapping[str, str] | None = None) -> LoadedFlow:
    """Load and validate the flow in ``path`` (or a :class:`JobText` already read). Named connections
    the file does not define are looked up as for v1 jobs (``connections_file``, ``PORTL_CONNECTIONS``,
    ``connections.yaml`` beside the file). Raises :class:`ConfigError` listing every problem."""
    environ = os.environ if environ is None else environ
    source = read_job_file(path)
    text, path = source.text, source.name
    parsed = parse_yaml(text, path)
    problems = list(parsed.problems)
    positions = parsed.positions
    data = parsed.data
    if not isinstance(data, dict):
        what = "empty" if data is None else "not a mapping of keys"
        raise ConfigError(problems=[Problem(f"the flow file is {what}; a flow has version: 2 and steps:", path, 1, 1)])
    data = dict(data)
    if data.get("name") is None:
        data["name"] = source.stem

    problems += _env_outside_connections(data.get("steps"), ("steps",), positions)
    failed = _resolve_connections(data, positions, path, connections_file, environ, problems)
    substituted = Substitution()
    if isinstance(data.get("connections"), dict):
        data["connections"], _ = substitute(data["connections"], environ, ("connections",), substituted)
    problems += [positions.problem(p, f"{reason} (used in {dotted(positions.shown(p))})") for p, reason in substituted.failures]

    model = flow_model()
    flow = None
    try:
        flow = model.model_validate(data)
    except ValidationError as exc:
        ctx = Context(data=data, positions=positions, root="the flow", hidden=frozenset(substituted.changed),
                      skip=frozenset(p for p, _ in substituted.failures))
        problems += validation_problems(exc, model, ctx)
    jobs: dict[str, LoadedJob] = {}
    if flow is not None:
        problems += structure_problems(flow, positions, failed)
        jobs = _migrate_jobs(flow, data, positions, path, connections_file, environ, problems)
    if problems or flow is None:
        raise ConfigError(problems=_ordered(problems, path))
    return LoadedFlow(flow, flow.name or source.stem, source.absolute, source.base_dir, text, positions, jobs)


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of flow files (``portl schema --flow``), for editors."""
    schema = flow_model().model_json_schema(by_alias=True)
    schema["title"] = "Portl flow file (version 2)"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def database_connection(flow: FlowBase) -> str | None:
    """``transaction.connection``, else the only database connection of the flow."""
    if flow.transaction.connection:
        return flow.transaction.connection
    names = [n for n, c in flow.connections.items() if getattr(c, "type", None) in DB_TYPES]
    return names[0] if len(names) == 1 else None


# --- connections -------------------------------------------------------------------------------


def _referenced(data: dict[str, Any]) -> list[tuple[str, Path]]:
    """Connection names the raw flow data uses, with where (read defensively: not validated yet)."""
    found: list[tuple[str, Path]] = []
    transaction = data.get("transaction")
    if isinstance(transaction, dict) and isinstance(transaction.get("connection"), str):
        found.append((transaction["connection"], ("transaction", "connection")))

    def visit(steps: Any, path: Path) -> None:
        if not isinstance(steps, list):
            return
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            here = path + (index,)
            if isinstance(step.get("connection"), str):
                found.append((step["connection"], here + ("connection",)))
            call = step.get("call")
            if isinstance(call, dict) and isinstance(call.get("connection"), str):
                found.append((call["connection"], here + ("call", "connection")))
            for key in ("then", "else", "steps"):
                visit(step.get(key), here + (key,))

    visit(data.get("steps"), ("steps",))
    return found


def _resolve_connections(data: dict[str, Any], positions: Positions, path: str, connections_file: str | None,
                         environ: Mapping[str, str], problems: list[Problem]) -> set[str]:
    """Copy each named connection the file does not define from the connections file into
    ``data['connections']``; report names found nowhere. Returns those names."""
    own = data.get("connections")
    if own is not None and not isinstance(own, dict):
        return set()
    own = dict(own or {})
    book = ConnectionBook(own, positions, path, connections_file, environ)
    failed: set[str] = set()
    for name, where in _referenced(data):
        if name in own or name in failed:
            continue
        named = book.find(name)
        if named is None:
            failed.add(name)
            if book.usable:
                problems.append(positions.problem(where, f"{dotted(where)}: {book.unknown(name)}"))
            continue
        own[name] = named.settings
        positions.graft(("connections", name), named.positions, named.path)
    problems.extend(p for p in book.problems if p not in problems)
    if own:
        data["connections"] = own
    return failed


def _env_outside_connections(value: Any, path: Path, positions: Positions) -> list[Problem]:
    """``${env:NAME}`` in a step: it would be sent as written, so it is refused with the fix.
    (A ``migrate`` step's inline job substitutes it as v1 jobs do.)"""
    if isinstance(value, dict):
        if value.get("type") == "migrate":
            value = {k: v for k, v in value.items() if k != "job"}
        return [p for key, item in value.items() for p in _env_outside_connections(item, path + (key,), positions)]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _env_outside_connections(item, path + (index,), positions)]
    if isinstance(value, str) and "${env:" in value:
        return [positions.problem(path, f"{dotted(path)}: ${{env:...}} works in connections only, where secrets stay masked; "
                                        "put this value in a connection (e.g. the headers of an http connection)")]
    return []


# --- rules across steps ------------------------------------------------------------------------


_KIND_OF_STEP = {"api.call": ("http",), "lambda.invoke": ("lambda",), **{t: DB_TYPES for t in DB_STEP_TYPES}}
_KIND_NAME = {"http": "an http connection", "lambda": "a lambda connection"}


def structure_problems(flow: FlowBase, positions: Positions, failed: set[str] = frozenset()) -> list[Problem]:
    """Problems no single model can see: repeated names, connections of the wrong kind, a
    database missing or ambiguous, several databases."""
    problems: list[Problem] = []
    ids: dict[str, Path] = {}
    results: dict[str, Path] = {}
    for step, path, _ in iter_steps(flow.steps):
        if step.id in ids:
            problems.append(positions.problem(path + ("id",), f"step id '{step.id}' is already used at {dotted(positions.shown(ids[step.id]))}; ids must be unique"))
        ids.setdefault(step.id, path)
        if step.name in results and results[step.name] != path:
            problems.append(positions.problem(path + (("save_as",) if step.save_as else ("id",)),
                                              f"the result name '{step.name}' is already used by the step at {dotted(positions.shown(results[step.name]))}; "
                                              "give one of them another save_as"))
        results.setdefault(step.name, path)

    database = database_connection(flow)
    uses_database = any(s.type in DB_STEP_TYPES or isinstance(s, OutboxEnqueueStep) for s, _, _ in iter_steps(flow.steps))
    db_names = [n for n, c in flow.connections.items() if getattr(c, "type", None) in DB_TYPES]
    tx = flow.transaction.connection
    if tx is not None and tx not in failed:
        problems += _kind_problem(flow, positions, tx, DB_TYPES, ("transaction", "connection"), "the transaction")
    elif tx is None and uses_database and len(db_names) != 1:
        message = ("the flow has database steps but no database connection; add one (type: postgres or mysql) under connections"
                   if not db_names else f"the flow has {len(db_names)} database connections ({', '.join(db_names)}); "
                   "name the one its steps use with transaction: {connection: <name>}")
        problems.append(positions.problem(("transaction",) if positions.site(("transaction",)) else ("steps",), message))

    for step, path, _ in iter_steps(flow.steps):
        problems += _step_connection_problems(flow, positions, step, path, database, failed)
    return problems


def _step_connection_problems(flow: FlowBase, positions: Positions, step: StepBase, path: Path, database: str | None,
                              failed: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    kinds = _KIND_OF_STEP.get(step.type)
    name = step.connection
    if isinstance(step, OutboxEnqueueStep):
        kinds = ("http",) if step.call.type == "api.call" else ("lambda",)
        name, path = step.call.connection, path + ("call",)
    if kinds is None:
        return problems
    if name is not None:
        if name in failed:
            return problems
        problems += _kind_problem(flow, positions, name, kinds, path + ("connection",), f"a {step.type} step")
        if kinds == DB_TYPES and not problems and database is not None and name != database:
            problems.append(positions.problem(path + ("connection",), f"step {step.id} uses database connection '{name}', but the flow's transaction "
                                              f"is on '{database}'; a flow writes through one database connection"))
        return problems
    if kinds == ("lambda",):
        lambdas = [n for n, c in flow.connections.items() if getattr(c, "type", None) == "lambda"]
        if len(lambdas) != 1:
            message = (f"step {step.id} needs a lambda connection; add one under connections (type: lambda)" if not lambdas else
                       f"step {step.id}: the flow has {len(lambdas)} lambda connections ({', '.join(lambdas)}); choose one with connection:")
            problems.append(positions.problem(path, message))
    return problems


def _kind_problem(flow: FlowBase, positions: Positions, name: str, kinds: tuple[str, ...], path: Path, user: str) -> list[Problem]:
    connection = flow.connections.get(name)
    if connection is None:
        close = difflib.get_close_matches(name, list(flow.connections), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else (f"; defined: {', '.join(flow.connections)}" if flow.connections else "")
        return [positions.problem(path, f"{dotted(positions.shown(path))}: unknown connection '{name}'{hint}")]
    kind = getattr(connection, "type", None)
    if kind not in kinds:
        wanted = _KIND_NAME.get(kinds[0], "a database connection (postgres or mysql)")
        return [positions.problem(path, f"{dotted(positions.shown(path))}: {user} needs {wanted}, but '{name}' is of type {kind}")]
    return []


# --- migrate steps -----------------------------------------------------------------------------


def _migrate_jobs(flow: FlowBase, data: dict[str, Any], positions: Positions, path: str, connections_file: str | None,
                  environ: Mapping[str, str], problems: list[Problem]) -> dict[str, LoadedJob]:
    """The v1 job of each ``migrate`` step: a file (relative to the flow's folder) or inline, where
    ``source``/``destination`` may name the flow's connections."""
    jobs: dict[str, LoadedJob] = {}
    base_dir = os.path.dirname(os.path.abspath(path))
    for step, step_path, _ in iter_steps(flow.steps):
        if not isinstance(step, MigrateStep):
            continue
        if isinstance(step.job, str):
            job_file = step.job if os.path.isabs(step.job) else os.path.join(base_dir, step.job)
            try:
                jobs[step.id] = load_job(job_file, None, connections_file, environ)
            except ConfigError as exc:
                if exc.problems:
                    problems.extend(exc.problems)
                else:
                    problems.append(positions.problem(step_path + ("job",), f"step {step.id}: {exc}"))
            continue
        loaded = _inline_job(step, step_path + ("job",), data, positions, path, connections_file, environ, problems)
        if loaded is not None:
            jobs[step.id] = loaded
    return jobs


def _inline_job(step: MigrateStep, where: Path, data: dict[str, Any], positions: Positions, path: str,
                connections_file: str | None, environ: Mapping[str, str], problems: list[Problem]) -> LoadedJob | None:
    job_data = dict(step.job)
    job_data.setdefault("name", f"{data['name']}.{step.id}")
    job_positions = Positions()
    job_positions.graft((), positions, where)
    book = ConnectionBook(data.get("connections") or {}, positions, path, connections_file, environ)
    resolution = resolve_references(job_data, job_positions, book)
    found = list(resolution.problems)
    substituted = _substitute_env(job_data, environ)
    found += [job_positions.problem(p, f"{reason} (used in {dotted(job_positions.shown(p))})") for p, reason in substituted.failures]
    model = job_model()
    job = None
    try:
        job = model.model_validate(job_data)
    except ValidationError as exc:
        ctx = Context(data=job_data, positions=job_positions, root=f"the job of step {step.id}", connections=resolution.used,
                      hidden=frozenset(substituted.changed),
                      skip=frozenset(resolution.failed | {p for p, _ in substituted.failures}))
        found += validation_problems(exc, model, ctx)
    problems.extend(found)
    if found or job is None:
        return None
    absolute = os.path.abspath(path)
    text = yaml.safe_dump(step.job, sort_keys=False, allow_unicode=True)
    return LoadedJob(job=job, name=job.name, path=absolute, base_dir=os.path.dirname(absolute), text=text)
