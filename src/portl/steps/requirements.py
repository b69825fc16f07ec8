"""The optional packages a flow needs, checked before anything runs.

A Lambda step needs boto3 (``portl[aws]``); DB steps and the outbox on PostgreSQL need psycopg
(``portl[postgres]``), on MySQL or MariaDB PyMySQL (``portl[mysql]``). Without the check a flow
would find out at its first call, after the steps before it had run. The package is imported, not
only looked up: one that is installed but cannot be imported (a broken install, a missing
library underneath) fails the same way at run time.
"""

from __future__ import annotations

import importlib

from portl.errors import Problem
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import LambdaInvokeStep, MigrateStep, OutboxEnqueueStep, iter_steps
from portl.spec.positions import Path

LAMBDA = ("boto3", "aws")
BY_CONNECTION_TYPE = {
    "postgres": ("psycopg", "postgres"), "postgresql": ("psycopg", "postgres"),
    "mysql": ("pymysql", "mysql"), "mariadb": ("pymysql", "mysql"),
}
"""A database connection's type -> (the module it needs, the extra that installs it)."""


def missing_packages(loaded: LoadedFlow) -> list[Problem]:
    """A problem for each part of the flow whose package cannot be imported, located at that part."""
    needs: list[tuple[Path, str, tuple[str, str]]] = []
    database = loaded.database
    if database is not None:
        kind = getattr(loaded.connection(database), "type", None)
        if kind in BY_CONNECTION_TYPE:
            needs.append((("connections", database, "type"), f"connection {database} ({kind})", BY_CONNECTION_TYPE[kind]))
    for step, path, _ in iter_steps(loaded.flow.steps):
        if isinstance(step, LambdaInvokeStep):
            needs.append((path + ("type",), f"step {step.id} (lambda.invoke)", LAMBDA))
        elif isinstance(step, OutboxEnqueueStep) and step.call.type == "lambda.invoke":
            needs.append((path + ("call", "type"), f"step {step.id} (an outbox lambda.invoke)", LAMBDA))
        elif isinstance(step, MigrateStep) and step.id in loaded.jobs:
            job = loaded.jobs[step.id].job
            for role, part in (("source", job.source), ("destination", job.destination)):
                if part.type in BY_CONNECTION_TYPE:
                    needs.append((path + ("job",), f"step {step.id} (migrate, its {part.type} {role})",
                                  BY_CONNECTION_TYPE[part.type]))
    problems: list[Problem] = []
    failures: dict[str, str | None] = {}
    for path, what, (module, extra) in needs:
        if module not in failures:
            failures[module] = _import_failure(module)
        if failures[module] is not None:
            problems.append(loaded.problem(path, f"{what} needs the {module} package, which cannot be imported "
                                                 f"({failures[module]}); install it with: pip install 'portl[{extra}]'"))
    return problems


def _import_failure(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc) or type(exc).__name__
    return None
