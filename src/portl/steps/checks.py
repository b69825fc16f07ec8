"""Templates checked before anything runs, each problem located at file:line:column.

For every template and expression of a flow: its syntax; the variables it uses (``steps``,
``job``, ``run_id``, the helpers, and inside a batch the item's name, ``idx`` and ``item_key``);
and each ``steps.<name>`` it reads, which must be the result of a step that runs before it. The
SQL of ``db.query`` and ``db.query_one`` must use exactly the ``:name`` parameters its
``params`` gives. Paths inside results (``steps.read_csv.rows[0].code``) are checked by the
dry-run, which renders the templates on real items.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from portl.errors import ConfigError, Problem
from portl.spec.flow import LoadedFlow
from portl.spec.flow_models import (
    ApiRequestFields, ConditionalStep, DbQueryOneStep, DbQueryStep, DbUpdateStep, GroupStep, LambdaFields,
    OutboxEnqueueStep, StepBase,
)
from portl.spec.positions import Path, dotted
from portl.steps.sql import parameter_names
from portl.steps.templating import ENV, expression_text, has_template

BUILTINS = frozenset({"steps", "job", "run_id"})
ITEM_NAMES = frozenset({"idx", "item_key"})


def check_flow(loaded: LoadedFlow) -> None:
    """Raise :class:`ConfigError` listing every template problem of the flow, and every optional
    package it needs that cannot be imported."""
    from portl.steps.requirements import missing_packages

    problems = template_problems(loaded) + missing_packages(loaded)
    if problems:
        raise ConfigError(problems=problems)


def template_problems(loaded: LoadedFlow) -> list[Problem]:
    """Every template problem of the flow, in document order."""
    problems: list[Problem] = []
    order = _result_order(loaded.flow.steps)
    dialect = loaded.connection(loaded.database).type if loaded.database else "postgres"
    _check_steps(loaded, loaded.flow.steps, ("steps",), (), order, problems, dialect)
    return problems


def _result_order(steps: list[StepBase]) -> dict[str, int]:
    order: dict[str, int] = {}

    def visit(items: list[StepBase]) -> None:
        for step in items:
            order.setdefault(step.name, len(order))
            if isinstance(step, ConditionalStep):
                visit(step.then)
                visit(step.else_)
            elif isinstance(step, GroupStep):
                visit(step.steps)

    visit(steps)
    return order


def _check_steps(loaded: LoadedFlow, steps: list[StepBase], path: Path, aliases: tuple[str, ...], order: dict[str, int],
                 problems: list[Problem], dialect: str) -> None:
    for index, step in enumerate(steps):
        here = path + (index,)
        inner = aliases + ((step.batch.as_,) if step.batch else ())
        position = order[step.name]
        if step.batch is not None:
            _check(loaded, step, step.batch.from_, here + ("batch", "from"), aliases, position, order, problems, expression=True)
            if step.batch.key:
                _check(loaded, step, step.batch.key, here + ("batch", "key"), inner, position, order, problems)
        if step.when is not None:
            _check(loaded, step, step.when, here + ("when",), inner, position, order, problems, expression=True)
        for value, where in _templates(step, here):
            _check(loaded, step, value, where, inner, position, order, problems)
        if isinstance(step, (DbQueryStep, DbQueryOneStep)):
            problems += _param_problems(loaded, step, here, dialect)
        if isinstance(step, ConditionalStep):
            _check_steps(loaded, step.then, here + ("then",), inner, order, problems, dialect)
            _check_steps(loaded, step.else_, here + ("else",), inner, order, problems, dialect)
        elif isinstance(step, GroupStep):
            _check_steps(loaded, step.steps, here + ("steps",), inner, order, problems, dialect)


def _templates(step: StepBase, path: Path) -> Iterator[tuple[Any, Path]]:
    """The templated values of a step's own fields, with their paths."""
    fields: list[tuple[str, Any]] = []
    for name in ("mapping", "params", "where"):
        if hasattr(step, name):
            fields.append((name, getattr(step, name)))
    if isinstance(step, DbUpdateStep):
        fields.append(("set", step.set_))
    if isinstance(step, (ApiRequestFields, LambdaFields)):
        fields += _call_fields(step)
    if isinstance(step, OutboxEnqueueStep):
        fields += [(("call", name), value) for name, value in _call_fields(step.call)]
    for name, value in fields:
        yield from _leaves(value, path + (name if isinstance(name, tuple) else (name,)))


def _call_fields(fields: Any) -> list[tuple[Any, Any]]:
    found = [(name, getattr(fields, name)) for name in ("url", "path", "headers", "query", "body", "function", "payload")
             if getattr(fields, name, None) is not None]
    key = getattr(fields, "idempotency_key", None)
    if isinstance(key, str):
        found.append(("idempotency_key", key))
    return found


def _leaves(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, path + (index,))
    elif isinstance(value, str) and has_template(value):
        yield value, path


def _check(loaded: LoadedFlow, step: StepBase, text: str, path: Path, aliases: tuple[str, ...], position: int,
           order: dict[str, int], problems: list[Problem], expression: bool = False) -> None:
    where = dotted(loaded.positions.shown(path))
    source = "{{ " + expression_text(text) + " }}" if expression else text
    try:
        tree = ENV.parse(source)
        ENV.compile(tree)  # unknown filters and tests are found when compiling
    except TemplateSyntaxError as exc:
        kind = "expression" if expression else "template"
        problems.append(loaded.problem(path, f"{where}: the {kind} is not valid: {exc.message}"))
        return
    allowed = BUILTINS | set(ENV.globals) | (ITEM_NAMES | set(aliases) if aliases else frozenset())
    for name in sorted(meta.find_undeclared_variables(tree) - allowed):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        outside = " (idx and item_key exist only inside a batch)" if name in ITEM_NAMES else ""
        problems.append(loaded.problem(path, f"{where}: '{name}' is undefined{hint}{outside}. Available here: "
                                             f"{', '.join(sorted(allowed - set(ENV.globals)))}, and the helpers"))
    for ref in _step_references(tree):
        if ref not in order:
            close = difflib.get_close_matches(ref, list(order), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(loaded.problem(path, f"{where}: steps.{ref} is not the result of any step{hint}"))
        elif order[ref] >= position:
            when = "is this step's own result" if order[ref] == position else "comes from a step that runs later"
            problems.append(loaded.problem(path, f"{where}: steps.{ref} {when}; a step can read only the results of "
                                                 "steps before it"))


def _step_references(tree: nodes.Template) -> list[str]:
    found: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            if isinstance(node, nodes.Getattr):
                found.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.append(node.arg.value)
    return list(dict.fromkeys(found))


def _param_problems(loaded: LoadedFlow, step: DbQueryStep | DbQueryOneStep, path: Path, dialect: str) -> list[Problem]:
    used = parameter_names(step.sql, "mysql" if dialect in ("mysql", "mariadb") else "postgres")
    given = list(step.params)
    problems = []
    missing = [n for n in used if n not in given]
    if missing:
        problems.append(loaded.problem(path + ("sql",), f"{dotted(loaded.positions.shown(path + ('sql',)))}: the SQL uses "
                                       f"{', '.join(':' + n for n in missing)} but params gives no value for "
                                       f"{'it' if len(missing) == 1 else 'them'}"))
    for name in given:
        if name not in used:
            close = difflib.get_close_matches(name, used, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(loaded.problem(path + ("params", name), f"params.{name} is not used in the SQL (write :{name} "
                                                                    f"where its value goes){hint}"))
    return problems
