"""``portl run``, ``plan`` and ``validate`` for flow files (``version: 2``): rendering plans, run
events and reports for people (rich) and programs (JSON)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.syntax import Syntax
from rich.table import Table

from portl.errors import ConfigError, PortlError
from portl.plural import counted
from portl.steps.events import StepEvent


def load(flow_file: Any, connections: str | None) -> Any:
    """The flow, with its templates checked (every problem at once, located)."""
    from portl.spec.flow import load_flow
    from portl.steps.checks import check_flow

    loaded = load_flow(flow_file, connections)
    check_flow(loaded)
    return loaded


def validate(flow_file: Any, connections: str | None) -> dict[str, Any]:
    """Check the flow; what it is, as ``portl validate`` prints it."""
    loaded = load(flow_file, connections)
    from portl.spec.flow_models import iter_steps

    flow = loaded.flow
    return {"name": loaded.name, "kind": "flow", "steps": sum(1 for _ in iter_steps(flow.steps)),
            "database": loaded.database, "transaction_scope": flow.transaction.scope if loaded.database else None}


def plan(out: Console, flow_file: Any, connections: str | None, as_json: bool, items: int) -> bool:
    """Print the dry-run; True when it found errors."""
    from portl.steps.plan import plan_flow

    the_plan = plan_flow(load(flow_file, connections), preview_items=items)
    if as_json:
        print(json.dumps(the_plan.to_dict(), indent=2, default=str, ensure_ascii=False))
    else:
        render_plan(out, the_plan)
    return bool(the_plan.errors)


def run(err: Console, flow_file: Any, connections: str | None, *, state_dir: str, json_events: bool, json_report: bool,
        log_level: str, stopper: Any) -> None:
    """Run the flow, printing events as they come (``json_events``: one JSON line each) and the
    report at the end (``json_report``: as one JSON line)."""
    from portl.steps.events import FlowEvents
    from portl.steps.runner import FlowOptions, run_flow

    loaded = load(flow_file, connections)
    events = FlowEvents(level=log_level)
    events.subscribe(FlowWatcher(err, json_events))
    options = FlowOptions(state_dir=state_dir, events=events)
    with stopper(options.stop, err, unit="item", aborted="what was not committed was rolled back"):
        try:
            report = run_flow(loaded, options)
        except PortlError as exc:
            partial = getattr(exc, "report", None)
            if partial is not None and not json_report:
                render_report(err, partial, json_out=False)
            raise
    render_report(err, report, json_out=json_report)


# --- the plan ----------------------------------------------------------------------------------


def render_plan(console: Console, plan: Any) -> None:
    """The dry-run, step by step, item by item."""
    console.rule(f"[bold]Plan for flow {escape(plan.name)}[/]")
    console.print(f"[dim]{escape(plan.loaded.path)} — a dry-run: nothing has been called or written[/]")
    if plan.loaded.flow.description:
        console.print(escape(plan.loaded.flow.description))
    table = Table("connection", "what", box=None, pad_edge=False)
    for name, description in plan.connections().items():
        table.add_row(escape(name), escape(description))
    console.print("\n[bold]Connections[/] (secrets masked)")
    console.print(table)
    console.print(f"[bold]Transaction[/]: {escape(plan.transaction())}")
    if any(e.kind == "outbox" for e in plan.entries):
        when = ("delivered after the commit by the run" if plan.loaded.flow.outbox.deliver == "after_commit"
                else "delivered by portl outbox drain")
        console.print(f"[bold]Outbox[/]: queued calls are {when}")
    console.print("\n[bold]Steps[/] (in the order they run; query results and call answers are ⟨placeholders⟩)")
    for entry in plan.entries:
        _render_entry(console, entry)
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for error in plan.errors:
        console.print(f"[red]error:[/] {escape(error)}")
    if not plan.errors:
        console.print("\n[green]no problems found[/]")


def _render_entry(console: Console, entry: Any) -> None:
    pad = "  " * (entry.depth + 1)
    where = "" if entry.idx is None else f"[{'.'.join(map(str, entry.idx)) if isinstance(entry.idx, list) else entry.idx}] "
    head = f"{pad}{where}[bold]{escape(entry.step_id)}[/] [dim]{escape(entry.type)}[/]"
    shown = entry.shown
    if entry.kind == "error":
        console.print(f"{pad}{where}[red]error:[/] {escape(entry.error or '')}")
        return
    if entry.kind == "note":
        console.print(f"{head}: [italic]{escape('; '.join(entry.notes))}[/]")
        return
    if entry.kind == "batch":
        console.print(f"{head}: for each {escape(shown['as'])} in {escape(shown['from'])} — {escape('; '.join(entry.notes))}")
        return
    console.print(head)
    if entry.kind == "read":
        rows = shown.get("rows")
        console.print(f"{pad}  reads {escape(shown.get('file', ''))}: {'? rows' if rows is None else counted(rows, 'row')}, columns "
                      f"{escape(', '.join(shown.get('columns', [])))}" + (f", {shown['rejects']} rejected" if shown.get("rejects") else ""))
    elif entry.kind == "sql":
        for statement in shown.get("sql", []):
            console.print(_sql(statement, pad))
        if shown.get("params"):
            console.print(f"{pad}  params: " + escape(", ".join(f"{k}={_short(v)}" for k, v in shown["params"].items())))
    elif entry.kind == "http":
        request = shown["request"]
        console.print(f"{pad}  {request['method']} {escape(request['url'])}")
        if request.get("query"):
            console.print(f"{pad}  query: {escape(_short(request['query'], 200))}")
        console.print(f"{pad}  headers: " + escape(", ".join(f"{k}: {v}" for k, v in request["headers"].items())))
        if request.get("body") is not None:
            console.print(f"{pad}  body: {escape(_short(request['body'], 400))}")
    elif entry.kind == "lambda":
        console.print(f"{pad}  invoke {escape(shown['function'])} via {escape(shown['endpoint'])}")
        console.print(f"{pad}  payload: {escape(_short(shown['payload'], 400))}")
    elif entry.kind == "outbox":
        box = shown["outbox"]
        request = box["request"]
        what = f"{request['method']} {request['url']}" if "method" in request else f"lambda {request.get('function')}"
        console.print(f"{pad}  queues in the outbox (sent after commit): {escape(what)}; dedup key {box['dedup_key']}")
        body = request.get("body", request.get("payload"))
        if body is not None:
            console.print(f"{pad}  {'body' if 'method' in request else 'payload'}: {escape(_short(body, 400))}")
    elif entry.kind == "migrate":
        console.print(f"{pad}  runs v1 job {escape(shown['job'])}: {escape(shown['source'])} -> {escape(shown['destination'])} "
                      f"({shown['mode']}); its own transactions, not the flow's")
        for statement in shown.get("ddl", []) + shown.get("per_batch", []):
            console.print(_sql(statement, pad))
    for note in entry.notes:
        console.print(f"{pad}  [italic]{escape(note)}[/]")


def _sql(statement: str, pad: str) -> Padding:
    syntax = Syntax(statement, "sql", theme="ansi_dark", background_color="default", word_wrap=True)
    return Padding(syntax, (0, 0, 0, len(pad) + 2))


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, str):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- events and the report ---------------------------------------------------------------------


class FlowWatcher:
    """Prints events: one JSON object per line, or, in text, what a person should see (retries,
    warnings, failures, commits, deliveries)."""

    def __init__(self, console: Console, json_events: bool):
        self.console = console
        self.json_events = json_events

    def __call__(self, event: StepEvent) -> None:
        if self.json_events:
            sys.stdout.write(json.dumps(event.to_json(), default=str, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        d = event.details
        where = f"{event.step_id}" + ("" if event.idx is None else f" item {event.idx}")
        if event.event == "call_attempt" and (d.get("outcome") != "ok" or d.get("attempt", 1) > 1):
            colour = "green" if d.get("outcome") == "ok" else "yellow"
            target = f"{d['method']} {d.get('url', '')}" if d.get("method") else f"lambda {d.get('function', '')}"
            # The error already says the status ("answered 503 ..."); show it alone only when there is none.
            outcome = f": {d['error']}" if d.get("error") else (f" {d['status']}" if d.get("status") is not None else "")
            wait = f"; next attempt in {d['retry_in_ms']} ms" if d.get("retry_in_ms") is not None else ""
            self.console.print(f"[{colour}]attempt {d.get('attempt')}/{d.get('max_attempts')} {d.get('outcome')}[/] "
                               f"{escape(where)} {escape(target)}{escape(outcome)}{wait}")
        elif event.event == "committed" and event.level == "info":
            self.console.print(f"committed: {escape(str(d.get('database', '')))}")
        elif event.event == "rolled_back":
            self.console.print(f"[red]rolled back[/]: {escape(str(d.get('database', '')))} ({escape(str(d.get('kept', '')))})")
        elif event.event == "outbox_drained":
            self.console.print(f"outbox: {d.get('delivered', 0)} delivered, {d.get('pending', 0)} pending, {d.get('dead', 0)} dead")
        elif event.level in ("warning", "error") and event.event not in ("run_finished", "step_failed", "call_attempt", "rolled_back"):
            self.console.print(f"[yellow]{escape(event.event)}[/] {escape(where)}: "
                               + escape(", ".join(f"{k}={v}" for k, v in d.items())))


def render_report(console: Console, report: Any, json_out: bool = False) -> None:
    """The end-of-run summary: status, counts and what each step did."""
    if json_out:
        print(json.dumps({"event": "report", **report.to_json()}, default=str), flush=True)
        return
    colour = "green" if report.status == "succeeded" else "red"
    from portl.cli.render import status_words

    console.print(f"[bold {colour}]{status_words(report.status)}[/] flow {escape(report.job)} run {report.run_id} in "
                  f"{report.duration_s:,.1f} s")
    c = report.counts
    undone = " (rolled back)" if report.rolled_back else ""
    console.print(f"items {c.get('items', 0):,}   rows inserted {c.get('inserted', 0):,}, updated {c.get('updated', 0):,}{undone}   "
                  f"statements {c.get('statements', 0):,}   calls {c.get('calls', 0):,} ({counted(c.get('attempts', 0), 'attempt')})   "
                  f"queued in the outbox {c.get('enqueued', 0):,}")
    table = Table("step", "type", "runs", "skipped", "attempts", "seconds", box=None, pad_edge=False)
    for step in report.steps:
        table.add_row(escape(step.id), step.type, f"{step.runs:,}", f"{step.skipped:,}", f"{step.attempts:,}", f"{step.seconds:,.2f}")
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def reject_v1_options(**given: Any) -> None:
    """Options of migration jobs that mean nothing for a flow are refused, not ignored."""
    wrong = [name for name, value in given.items() if value]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} do{'es' if len(wrong) == 1 else ''} not apply to flows (version: 2): a flow runs "
                          "in one transaction and is simply run again; its calls carry idempotency keys")
