"""Rendering plans, run reports and the ledger for people (rich) and programs (JSON)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from portl.engine.plan import Plan, preview_text
from portl.plural import counted, plural
from portl.types import logical_of

if TYPE_CHECKING:
    from rich.syntax import Syntax

    from portl.engine.run import RunReport
    from portl.state.ledger import RunRecord


def render_plan(console: Console, plan: Any) -> None:
    """The plan, section by section, as `portl plan` and `--dry-run` print it."""
    if not isinstance(plan, Plan):
        render_database_plan(console, plan)
        return
    data = plan.to_dict()
    console.rule(f"[bold]Plan for job {escape(plan.name)}[/]")
    console.print(f"[dim]{escape(plan.job.path)} — nothing has been written[/]")
    console.print("\n[bold]Resolved job[/] (secrets masked)")
    console.print(_code(console, yaml.safe_dump(plan.resolved_config(), sort_keys=False, allow_unicode=True), "yaml"))

    est = plan.estimate
    size = []
    if est.rows is not None:
        size.append(counted(est.rows, "row") + ("" if est.exact else " (estimated)"))
    if est.bytes:
        size.append(f"{est.bytes / 1e6:,.1f} MB")
    console.print(f"[bold]Source[/]: {escape(plan.source.description)}" + (f" — {', '.join(size)}" if size else ""))
    schema = Table("column", "type", box=None, pad_edge=False)
    for f in plan.source_schema:
        schema.add_row(escape(f.name), str(logical_of(f)))
    console.print(schema)
    for note in plan.source_notes:
        console.print(f"  [dim]note: {escape(note)}[/]")
    if getattr(plan, "incremental", None) is not None:
        console.print("  [bold]incremental[/]")
        for line in plan.incremental.lines:
            console.print(f"    {escape(line)}")

    d = data["destination"]
    how = d["mode"] + (f" on ({', '.join(d['key'])}), strategy {d['strategy']}" if d["key"] else "")
    state = "exists" if d["exists"] else "will be created"
    console.print(f"\n[bold]Destination[/]: {escape(plan.sink.description)} ({state}) — {how}; {d['bulk_method']}")

    console.print("\n[bold]Mapping[/]")
    table = Table("source", "transform", "destination", "type", "notes", box=None, pad_edge=False)
    for c in data["mapping"]:
        notes = [c["origin"]] + (["required"] if c["required"] else [])
        table.add_row(escape(", ".join(c["source"]) or "—"), escape(" → ".join(c["transforms"]) or "—"),
                      escape(c["destination"]), c["type"], escape(", ".join(notes)))
    console.print(table)
    if data["unmapped_source_columns"]:
        console.print(f"  [dim]not loaded: {escape(', '.join(data['unmapped_source_columns']))}[/]")

    if plan.target.ddl:
        console.print("\n[bold]DDL[/] (before loading)")
        for statement in plan.target.ddl:
            console.print(_code(console, statement + ";", "sql", word_wrap=True))
    if plan.target.per_batch:
        console.print(f"\n[bold]Per batch[/] (about {plan.job.job.batch.size:,} rows; transaction per {plan.job.job.transaction})")
        for statement in plan.target.per_batch:
            console.print(_code(console, statement, "sql", word_wrap=True))

    if plan.hooks:
        console.print("\n[bold]Hooks[/]")
        for event, lines in plan.hooks.items():
            for line in lines:
                console.print(f"  {event}: {escape(line)}")

    if getattr(plan, "checks", None):
        console.print(f"\n[bold]Quality checks[/] ({len(plan.checks)}; a critical failure fails the run)")
        for line in plan.checks:
            console.print(f"  {escape(line)}")

    if plan.preview:
        first = "the first row" if len(plan.preview) == 1 else f"the first {len(plan.preview)} rows"
        console.print(f"\n[bold]Preview[/]: {first} as {plural(len(plan.preview), 'it')} would be written")
        # One line per destination column and one column per row, so that wide tables still fit.
        good = [r for r in plan.preview if r.values is not None]
        preview = Table(box=None, pad_edge=False)
        preview.add_column("column", no_wrap=True)
        for r in good:
            preview.add_column(_where(r))
        for c in plan.mapping.columns:
            preview.add_row(escape(c.name), *[escape(_cell(r.values.get(c.name))) for r in good])
        if good:
            console.print(preview)
        for row in plan.preview:
            if row.values is None:
                console.print(f"  [red]would be rejected[/]: {_where(row)}, column {escape(row.column or '?')}: {escape(row.error or '')}")

    console.print(f"\n[bold]Rejected rows go to[/]: {escape(plan.reject_path)}")
    console.print(f"[bold]Workers[/]: {plan.job.job.parallel.workers}   [bold]Retry[/]: {plan.job.job.retry.strategy} "
                  f"({counted(plan.job.job.retry.attempts, 'attempt')})")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for error in plan.errors:
        console.print(f"[red]error:[/] {escape(error)}")


def render_database_plan(console: Console, plan: Any) -> None:
    """A whole-database copy: each table's copy, then the keys and constraints added after."""
    console.rule(f"[bold]Plan for job {escape(plan.name)}: copy {counted(len(plan.plans), 'table')}[/]")
    console.print(f"[dim]{escape(plan.job.path)} — nothing has been written[/]")
    console.print(f"[bold]From[/] {escape(plan.catalog.description)}  [bold]to[/] {escape(plan.target.description)}; "
                  f"{counted(plan.job.job.parallel.workers, 'table')} at a time")
    copy = plan.job.job.copy_
    names = "the source's, exactly, quoted" if copy.identifiers == "keep" else "folded to lower case"
    existing = {"fail": "the run stops", "skip": "left as they are", "replace": "dropped and copied again"}
    console.print(f"[bold]Names[/]: {names} (copy.identifiers: {copy.identifiers}). [bold]Tables with rows "
                  f"already[/]: {existing[plan.if_exists]} (copy.if_exists: {plan.if_exists})")
    overview = Table("table", "rows", "columns", "primary key", "indexes", "foreign keys", box=None, pad_edge=False)
    for t in plan.tables:
        overview.add_row(escape(t.name), "?" if t.rows is None else f"{t.rows:,}", str(len(t.schema)),
                         escape(", ".join(t.primary_key) or "—"), str(len(t.indexes)), str(len(t.foreign_keys)))
    console.print(overview)
    if plan.before:
        console.print("\n[bold]Before the copy[/]: tables copied again (copy.if_exists: replace)")
        for statement in plan.before:
            console.print(_code(console, statement + ";", "sql", word_wrap=True))
    for table_plan in plan.plans:
        console.print(f"\n[bold]{escape(table_plan.name)}[/]: {escape(table_plan.source.description)} -> {escape(table_plan.sink.description)}")
        for statement in table_plan.target.ddl:
            console.print(_code(console, statement + ";", "sql", word_wrap=True))
        for statement in table_plan.target.per_batch[:1]:
            console.print(_code(console, statement, "sql", word_wrap=True))
    if plan.constraints:
        console.print("\n[bold]After the data[/]: keys, CHECK constraints, indexes, foreign keys, identity counters")
        for statement in plan.constraints:
            console.print(_code(console, statement + ";", "sql", word_wrap=True))
    if plan.views:
        console.print("\n[bold]Views[/], one by one")
        for statement in plan.views:
            console.print(_code(console, statement + ";", "sql", word_wrap=True))
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for error in plan.errors:
        console.print(f"[red]error:[/] {escape(error)}")


def _code(console: Console, code: str, lexer: str, word_wrap: bool = False) -> Syntax:
    """Code, highlighted where colours show. Elsewhere it is laid out the same, unlexed: the lexers'
    first use cost a plan some 15 ms, for colours nobody would see."""
    from rich.syntax import Syntax  # pygments: only plans show code

    return Syntax(code, lexer if console.color_system else "text", theme="ansi_dark", background_color="default",
                  word_wrap=word_wrap)


def _where(row: Any) -> str:
    return row.where()


def _cell(value: Any) -> str:
    return preview_text(value)


def render_report(console: Console | None, report: RunReport, json_out: bool = False) -> None:
    """The end-of-run summary: where every source row went."""
    if json_out:
        print(json.dumps({"event": "report", **report.to_json()}, default=str))
        return
    if console is None:
        return
    c = report.counts
    if report.already_finished:
        console.print(f"run {report.run_id} of job {escape(report.job)} already finished; nothing to resume, nothing changed.")
    colour = "green" if report.status == "succeeded" else "red"
    console.print(f"[bold {colour}]{status_words(report.status)}[/] job {escape(report.job)} run {report.run_id}"
                  + ("" if report.already_finished else f" in {report.duration_s:,.1f} s ({report.rows_per_s:,.0f} rows/s)"))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_row("read", f"{c.read:>12,}")
    table.add_row("inserted", f"{c.inserted:>12,}")
    table.add_row("updated", f"{c.updated:>12,}")
    table.add_row("skipped", f"{c.skipped_total:>12,}")
    for reason, n in sorted(c.skipped.items()):
        table.add_row(f"  {escape(reason)}", f"{n:>12,}")
    table.add_row("rejected", f"{c.rejected:>12,}")
    console.print(table)
    if report.reject_path:
        console.print(f"rejected rows: {escape(report.reject_path)}")
    if report.quality:
        _render_quality(console, report)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _render_quality(console: Console, report: RunReport) -> None:
    """The quality checks' outcome under the counts: how many passed, the gate, where the reports are."""
    q = report.quality
    s = q["summary"]
    colour = "green" if q["status"] == "passed" else "red" if q["status"] == "failed_checks" else "yellow"
    failed = s["failed"] + s["error"]
    console.print(f"[bold]quality[/] [{colour}]{s['passed']} of {s['checks']} checks passed[/]"
                  + (f", {failed} failed ({s['critical_failed']} critical)" if failed else "")
                  + (f", {s['skipped']} skipped" if s.get("skipped") else "") + f": {escape(q['gate'])}")
    for item in q["failed"]:
        console.print(f"  [{'red' if item['severity'] == 'critical' else 'yellow'}]{item['severity']}[/] "
                      f"{escape(item['name'])}: {escape(item['message'])}")
    for fmt, path in q["reports"].items():
        console.print(f"  {fmt} report: {escape(path)}")
    if not q["reports"]:
        console.print(f"  report: portl report {report.run_id} --format html -o report.html")


def render_runs(console: Console, runs: list[RunRecord], where: str) -> None:
    """`portl runs`: one line per run, newest first."""
    if not runs:
        console.print(f"no runs recorded in {escape(where)}")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("run", "job", "status", "started"):
        table.add_column(name, no_wrap=True)
    for name in ("read", "inserted", "updated", "skipped", "rejected", "duration"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in runs:
        c = r.counts
        table.add_row(r.id, escape(r.job), _status(r.status), _when(r.started_at), *[f"{c.get(k, 0):,}" for k in ("read", "inserted", "updated", "skipped", "rejected")],
                      f"{(r.ended_at - r.started_at):,.1f} s" if r.ended_at else "—")
    console.print(table)


def render_run(console: Console, r: RunRecord) -> None:
    """`portl runs show ID`."""
    console.print(f"[bold]run[/] {r.id}\n[bold]job[/] {escape(r.job)} ({escape(r.job_path)})\n[bold]status[/] {_status(r.status)}")
    console.print(f"[bold]started[/] {_when(r.started_at)}" + (f"   [bold]ended[/] {_when(r.ended_at)}" if r.ended_at else ""))
    for key in ("destination", "mode", "rejects_file"):
        if r.meta.get(key):
            console.print(f"[bold]{key.replace('_', ' ')}[/] {escape(str(r.meta[key]))}")
    if r.meta.get("incremental"):  # the window of an incremental run (engine.incremental)
        window = r.meta["incremental"]
        console.print(f"[bold]incremental[/] after {escape(_mark_text(window.get('previous')))}, up to "
                      f"{escape(_mark_text(window.get('mark')))}")
    console.print("[bold]counts[/] " + ", ".join(f"{k} {v:,}" for k, v in r.counts.items() if isinstance(v, int)))
    for reason, n in (r.counts.get("skipped_by_reason") or {}).items():
        console.print(f"  skipped: {escape(reason)}: {n:,}")
    if r.checkpoints:
        table = Table("partition", "source rows", "position", "done")
        for partition, cp in r.checkpoints.items():
            point = cp["checkpoint"]
            table.add_row(partition, f"{point.get('rows', 0):,}", escape(json.dumps(point.get("position"))), "yes" if point.get("done") else "no")
        console.print(table)
    if r.error:
        console.print(f"[bold red]error[/] {escape(r.error)}")


def _mark_text(mark: dict[str, Any] | None) -> str:
    """An incremental mark for people: its cursor and value, or how many files it lists."""
    if mark is None:
        return "the start (first run)"
    if "cursor" in mark:
        return f"{mark['cursor']} = {mark.get('value')}"
    files = mark.get("files")
    return f"{len(files)} files" if isinstance(files, (dict, list)) else json.dumps(mark)


def run_json(r: RunRecord) -> dict[str, Any]:
    """A run of the ledger as ``portl runs --format json`` and ``runs show`` print it."""
    return {"run_id": r.id, "job": r.job, "job_path": r.job_path, "status": r.status, "started_at": r.started_at,
            "ended_at": r.ended_at, "duration_s": None if r.ended_at is None else round(r.ended_at - r.started_at, 3),
            "counts": r.counts, "meta": r.meta, "error": r.error,
            "checkpoints": {p: cp.get("checkpoint", cp) for p, cp in r.checkpoints.items()}}


STATUS_WORDS = {"reject_limit": "stopped: too many rejects", "failed_checks": "failed its quality checks"}
"""How a run's status reads for people; ``--format json`` keeps the status itself."""


def status_words(status: str) -> str:
    """``reject_limit`` reads ``stopped: too many rejects``; other statuses read as they are."""
    return STATUS_WORDS.get(status, status)


def _status(status: str) -> str:
    colour = {"succeeded": "green", "running": "yellow", "interrupted": "yellow"}.get(status, "red")
    return f"[{colour}]{status_words(status)}[/]"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"
