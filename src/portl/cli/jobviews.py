"""How ``portl submit`` and ``portl jobs`` show a server's jobs to people: a table like
``portl runs``, one job like ``portl runs show``, and a progress line while waiting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

COUNTS = ("read", "inserted", "updated", "skipped", "rejected")


def render_jobs(console: Console, jobs: list[dict[str, Any]], server: str) -> None:
    """`portl jobs list`: one line per job, newest first."""
    if not jobs:
        console.print(f"no jobs on {escape(server)} for this tenant (with these filters)")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("job", "name", "status", "created"):
        table.add_column(name, no_wrap=True)
    for name in (*COUNTS, "duration"):
        table.add_column(name, justify="right", no_wrap=True)
    for job in jobs:
        counts = job.get("counts") or {}
        table.add_row(job["id"], escape(job.get("name") or "—"), _status(job["status"]), _when(job.get("created_at")),
                      *[f"{counts.get(k, 0):,}" for k in COUNTS], _duration(job))
    console.print(table)


def render_job(console: Console, job: dict[str, Any]) -> None:
    """`portl jobs show ID`, and the end of `portl submit --wait`."""
    console.print(f"[bold]job[/] {job['id']}\n[bold]name[/] {escape(job.get('name') or '—')}\n"
                  f"[bold]status[/] {_status(job['status'])}")
    if job.get("labels"):
        console.print("[bold]labels[/] " + escape(", ".join(f"{k}={v}" for k, v in sorted(job["labels"].items()))))
    when = f"[bold]created[/] {_when(job.get('created_at'))}"
    if job.get("started_at"):
        when += f"   [bold]started[/] {_when(job['started_at'])}"
    if job.get("finished_at"):
        when += f"   [bold]finished[/] {_when(job['finished_at'])}   ({_duration(job)})"
    console.print(when)
    counts = job.get("counts") or {}
    console.print("[bold]counts[/] " + ", ".join(f"{k} {counts.get(k, 0):,}" for k in COUNTS))
    console.print(f"[bold]progress[/] {progress_line(job)}")
    if job.get("attempts", 0) > 1:
        console.print(f"[bold]attempts[/] {job['attempts']}")
    if job.get("error"):
        console.print(f"[bold red]error[/] {escape(job['error'])}", soft_wrap=True)


def progress_line(job: dict[str, Any]) -> str:
    """``running: 12,000 of 50,000 rows (24%), 8,000 rows/s, about 5 s left``."""
    p = job.get("progress") or {}
    done, total = p.get("rows_done", 0), p.get("rows_total")
    line = f"{job['status']}: {done:,} rows" if not total else f"{job['status']}: {done:,} of {total:,} rows ({done * 100 // total}%)"
    if p.get("rows_per_s"):
        line += f", {p['rows_per_s']:,.0f} rows/s"
    if p.get("eta_s") is not None and job["status"] == "running":
        line += f", about {p['eta_s']:,.0f} s left"
    return line


def _status(status: str) -> str:
    colour = {"succeeded": "green", "queued": "yellow", "running": "yellow", "cancelling": "yellow"}.get(status, "red")
    return f"[{colour}]{status}[/]"


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def _when(ts: str | None) -> str:
    at = _parse(ts)
    if at is None:
        return "—"
    return (at.astimezone() if at.tzinfo else at).strftime("%Y-%m-%d %H:%M:%S")


def _duration(job: dict[str, Any]) -> str:
    start, end = _parse(job.get("started_at")), _parse(job.get("finished_at"))
    if start is None or end is None:
        return "—"
    return f"{(end - start).total_seconds():,.1f} s"


def render_log(console: Console, entries: list[dict[str, Any]]) -> None:
    """`portl jobs logs ID`: one line per record, ``rejected people.csv, line 11, record 10 (key 10):
    column age, value 'old': why``."""
    if not entries:
        console.print("no records logged for this job (with these filters)")
        return
    for e in entries:
        if e["outcome"] == "loaded" and e.get("key") is None:  # a batch's own entry: its range and counts
            console.print(escape(f"batch {e.get('batch')}: {e.get('source_location') or 'unknown range'}: "
                                 f"{e.get('value') or 'no counts recorded'}"), soft_wrap=True)
            continue
        line = f"{e['outcome']} {e.get('source_location') or 'unknown location'}"
        if e.get("key") is not None:
            line += f" (key {e['key']})"
        detail = []
        if e.get("column"):
            detail.append(f"column {e['column']}")
        if e.get("value") is not None:
            detail.append(f"value {e['value']!r}")
        if detail:
            line += ": " + ", ".join(detail)
        console.print(escape(f"{line}: {e.get('error') or 'no reason recorded'}"), soft_wrap=True)
