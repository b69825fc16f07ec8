"""``portl outbox drain|list|retry``: deliver, show and revive the calls flows queued in their
database. The flow file says which database holds the outbox and, by name, the http and lambda
connections the calls go through; their secrets are read from it (and the environment) when a
call is delivered, never stored."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from portl.cli.output import Format, configure, err, out, print_json, settings
from portl.errors import Interrupted, OutboxError

outbox_app = typer.Typer(
    help="Deliver the calls flows queued with outbox.enqueue, list them, and retry dead ones.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FlowFile = Annotated[str, typer.Argument(help="The flow file (YAML, version: 2) whose outbox to use.", metavar="FLOW.yaml")]
Connections = Annotated[Optional[str], typer.Option("--connections", help="Connections file (default: connections.yaml beside the flow).", envvar="PORTL_CONNECTIONS", metavar="FILE")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")]
EXIT_DEAD = 1


@outbox_app.command("drain")
def drain(
    flow_file: FlowFile,
    max_attempts: Annotated[int, typer.Option("--max-attempts", help="Deliveries tried per call before it moves to the dead-letter table.", min=1, max=100)] = 5,
    backoff_ms: Annotated[int, typer.Option("--backoff-ms", help="Wait before a call's second delivery; doubles each time (capped at 5 min), with jitter.", min=0)] = 1000,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Keep going until no call is pending (waiting for retries), or deliver only the calls due now.")] = True,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Stop after handling this many calls.", min=1)] = None,
    log_format: Annotated[Format, typer.Option("--log-format", help="text (a line per call and a summary) or json (one event per line).", case_sensitive=False)] = Format.text,
    connections: Connections = None,
    debug: Debug = False,
) -> None:
    """Deliver the flow's pending calls, in the order they were queued.

    Each call is sent with its dedup key as idempotency key and marked delivered in its own short
    transaction; a failure is retried later with backoff, up to --max-attempts, and then moved to
    the dead-letter table. Delivery is at least once with the same key: a crash after a call was
    answered and before it was marked sends it again, with the same key.

    Exit codes: 0 every call handled was delivered, 1 some calls moved to the dead-letter table
    (see `portl outbox list FLOW.yaml --dead`), 2 an invalid flow file or option, 130 stopped
    with Ctrl-C (the call being sent stays pending).
    """
    configure(debug=debug, format=log_format)
    from portl.steps.outbox import DrainOptions

    loaded, outbox = _open(flow_file, connections)
    drain_id = datetime.now(timezone.utc).strftime("drain-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    show = _JsonEvents(drain_id) if settings.json else _TextEvents(flow_file)
    try:
        options = DrainOptions(max_attempts=max_attempts, backoff_ms=backoff_ms, wait=wait, limit=limit)
        report = outbox.deliver(loaded.name, loaded.flow.connections, options, show)
    except KeyboardInterrupt:
        raise Interrupted(f"drain stopped by the user after {show.delivered} delivered calls; the call being sent, if "
                          "any, and the rest stay pending for the next drain") from None
    finally:
        outbox.close()
    show.summary(loaded.name, report)
    if report.dead:
        raise typer.Exit(EXIT_DEAD)


@outbox_app.command("list")
def list_calls(
    flow_file: FlowFile,
    dead: Annotated[bool, typer.Option("--dead", help="Show the dead-letter table instead.")] = False,
    status: Annotated[Optional[str], typer.Option("--status", help="Only pending or only delivered calls.", metavar="pending|delivered")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many calls, oldest first.", min=1, metavar="N")] = 100,
    format: Annotated[Format, typer.Option("--format", help="text for people, or json (one array of the calls) for programs.", case_sensitive=False)] = Format.text,
    json_out: Annotated[bool, typer.Option("--json", help="The same as --format json.", hidden=True)] = False,
    connections: Connections = None,
    debug: Debug = False,
) -> None:
    """List the flow's calls in the outbox (pending and delivered) or, with --dead, the dead ones."""
    configure(debug=debug, format=Format.json if json_out else format)
    if status not in (None, "pending", "delivered"):
        raise typer.BadParameter("expected pending or delivered (dead calls: --dead)", param_hint="--status")
    if dead and status:
        raise typer.BadParameter("--status applies to the outbox, not to the dead-letter table", param_hint="--status")
    loaded, outbox = _open(flow_file, connections)
    try:
        calls = outbox.calls(loaded.name, dead=dead, status=status, limit=limit + 1)
        counts = outbox.counts(loaded.name)
    finally:
        outbox.close()
    more = len(calls) > limit
    calls = calls[:limit]
    if settings.json:
        print_json([c.to_dict() for c in calls])
        return
    from portl.steps.calls.delivery import Deliverer

    describe = Deliverer(loaded.flow.connections).describe
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "status", "step", "idx", "call", "attempts", "queued", "last error" if dead or status != "delivered" else "delivered"):
        table.add_column(column, overflow="fold")
    for call in calls:
        last = (call.last_error or "") if dead or status != "delivered" else _when(call.delivered_at)
        table.add_row(str(call.id), call.status, call.step_id, "" if call.idx is None else str(call.idx),
                      describe(call.kind, call.connection, call.request, call.dedup_key), str(call.attempts),
                      _when(call.created_at), last)
    which = "dead calls" if dead else (f"{status} calls" if status else "calls")
    out.print(f"outbox of job {loaded.name!r} in {outbox.where}: {counts['pending']} pending, "
              f"{counts['delivered']} delivered, {counts['dead']} dead")
    if calls:
        out.print(table)
    else:
        out.print(f"no {which}")
    if more:
        out.print(f"(only the first {limit}; use --limit to see more)")


@outbox_app.command("retry")
def retry(
    flow_file: FlowFile,
    ids: Annotated[Optional[list[int]], typer.Argument(help="Ids of dead calls to move back (see `portl outbox list --dead`).", metavar="[ID]...")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Move every dead call of the flow back.")] = False,
    connections: Connections = None,
    debug: Debug = False,
) -> None:
    """Move dead calls back to the outbox as pending, with their attempts reset, for the next drain."""
    configure(debug=debug)
    if bool(ids) == all_:
        raise typer.BadParameter("give the ids of dead calls, or --all (not both)", param_hint="ID")
    loaded, outbox = _open(flow_file, connections)
    try:
        moved = outbox.retry(loaded.name, None if all_ else ids)
    finally:
        outbox.close()
    if not moved:
        out.print(f"no dead calls of job {loaded.name!r}; nothing to retry")
        return
    noun = "call" if len(moved) == 1 else "calls"
    out.print(f"moved {len(moved)} dead {noun} back to the outbox: {', '.join(map(str, moved))}; "
              f"deliver with `portl outbox drain {flow_file}`")


# --- shared pieces ---------------------------------------------------------------------------------


def _open(flow_file: str, connections: str | None) -> tuple[Any, Any]:
    """The loaded flow and an open :class:`~portl.steps.outbox.Outbox` on its database."""
    from portl.spec.flow import load_flow
    from portl.steps.outbox import open_outbox

    loaded = load_flow(flow_file, connections)
    name = loaded.database
    if name is None:
        raise OutboxError(f"{flow_file}: the flow names no database connection for the outbox; add one (type: postgres "
                          "or mysql) under connections, or choose one with transaction: {connection: <name>}")
    return loaded, open_outbox(loaded.connection(name), loaded.base_dir)


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else ""


class _TextEvents:
    """A line per call on stderr as it is handled, then the summary."""

    def __init__(self, flow_file: str):
        self.flow_file = flow_file
        self.delivered = 0

    def __call__(self, event: Any) -> None:
        call, details = event.call, event.details
        self.delivered += event.event == "delivered"
        where = escape(f"#{call.id} {call.step_id}" + ("" if call.idx is None else f"[{call.idx}]"))
        tries = f"attempt {details['attempt']}/{details['max_attempts']}"
        if event.event == "delivered":
            err.print(f"[green]delivered[/] {where} ({tries})", soft_wrap=True)
        elif event.event == "retry_later":
            err.print(f"[yellow]failed[/]    {where} ({tries}): {escape(details['error'])}; retrying in "
                      f"{details['retry_in_ms'] / 1000:g} s", soft_wrap=True)
        else:
            err.print(f"[red]dead[/]      {where} ({tries}): {escape(details['error'])}", soft_wrap=True)

    def summary(self, job: str, report: Any) -> None:
        dead = len(report.dead)
        line = (f"drained job {job!r}: {report.delivered} delivered, {report.failed_attempts} failed attempts retried, "
                f"{dead} moved to the dead-letter table, {report.pending} still pending ({report.seconds:.1f} s)")
        err.print(("[red]" if dead else "[green]") + escape(line) + "[/]", soft_wrap=True)
        if dead:
            err.print(escape(f"see them with `portl outbox list {self.flow_file} --dead`; after fixing the cause, "
                             f"`portl outbox retry {self.flow_file} --all`"), soft_wrap=True)


class _JsonEvents:
    """One JSON event per line on stdout: ``{ts, level, run_id, step_id, idx, event, details}``."""

    def __init__(self, drain_id: str):
        self.drain_id = drain_id
        self.delivered = 0

    def __call__(self, event: Any) -> None:
        call = event.call
        self.delivered += event.event == "delivered"
        level = {"delivered": "info", "retry_later": "warning"}.get(event.event, "error")
        self._emit(level, call.step_id, call.idx, f"outbox.{event.event}",
                   {"id": call.id, "job": call.job, "kind": call.kind, "dedup_key": call.dedup_key, **event.details})

    def summary(self, job: str, report: Any) -> None:
        self._emit("error" if report.dead else "info", None, None, "outbox.drained",
                   {"job": job, "delivered": report.delivered, "failed_attempts": report.failed_attempts,
                    "dead": report.dead, "pending": report.pending, "seconds": round(report.seconds, 3)})

    def _emit(self, level: str, step_id: str | None, idx: int | None, name: str, details: dict[str, Any]) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level,
                  "run_id": self.drain_id, "step_id": step_id, "idx": idx, "event": name, "details": details}
        print(json.dumps(record, default=str), flush=True)
