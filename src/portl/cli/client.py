"""``portl submit`` and ``portl jobs …``: the command line as a client of a Portl server (``portl
serve``), reached at --server with a tenant's --api-key. httpx is imported only when one of these
commands runs."""

from __future__ import annotations

import sys
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape

from portl.cli.output import Format, configure, err, out, print_json, settings
from portl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, ConfigError, Interrupted

if TYPE_CHECKING:
    from portl.cli.serverapi import ServerClient

DEFAULT_SERVER = "http://127.0.0.1:8080"
FINISHED_EXIT = {"succeeded": 0, "failed": EXIT_FAILURE, "partial": EXIT_FAILURE, "cancelled": EXIT_INTERRUPTED}
"""A finished job's status, and the exit code of `portl submit --wait` for it."""

jobs_app = typer.Typer(help="List, show, cancel, retry and delete the jobs submitted to a Portl server; read their record logs.", no_args_is_help=True,
                       rich_markup_mode=None)

Server = Annotated[str, typer.Option("--server", help="The Portl server's address.", envvar="PORTL_SERVER", metavar="URL")]
ApiKey = Annotated[Optional[str], typer.Option("--api-key", help="A tenant's API key (from `portl tenants create` or "
                                               "`portl keys create`).", envvar="PORTL_API_KEY", metavar="KEY",
                                               show_default=False, show_envvar=True)]
OutputFormat = Annotated[Format, typer.Option("--format", help="text for people, or json for programs (errors too).", case_sensitive=False)]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")]
JobId = Annotated[str, typer.Argument(help="The job's id, as `portl submit` printed it.", metavar="ID")]
Labels = Annotated[Optional[list[str]], typer.Option("--label", help="key=value; repeat for several.", metavar="K=V")]
Interval = Annotated[float, typer.Option("--interval", help="With --wait: seconds between two looks at the job.", min=0.05,
                                         metavar="S")]


def _connect(server: str, api_key: str | None) -> ServerClient:
    if not api_key:
        raise ConfigError("no API key: pass --api-key KEY or set PORTL_API_KEY (an admin makes one with "
                          "`portl tenants create TENANT` or `portl keys create TENANT`)")
    if not server.startswith(("http://", "https://")) or len(server) <= len("https://"):
        raise ConfigError(f"--server should be the server's http:// or https:// address, e.g. {DEFAULT_SERVER}; "
                          f"got {server!r}")
    from portl.cli.serverapi import ServerClient

    return ServerClient(server, api_key)


def _labels(given: list[str] | None) -> dict[str, str]:
    labels = {}
    for pair in given or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} should be key=value, e.g. team=billing", param_hint="--label")
        labels[key.strip()] = value
    return labels


def _job_path(job_id: str) -> str:
    try:
        return f"/api/v1/jobs/{uuid.UUID(job_id)}"
    except ValueError:
        raise ConfigError(f"{job_id!r} is not a job id: a job's id is a UUID, as `portl submit` printed it and "
                          "`portl jobs list` shows it") from None


def submit(
    job_file: Annotated[str, typer.Argument(help="The job file (YAML), or - to read it from standard input.", metavar="JOB_FILE")],
    name: Annotated[Optional[str], typer.Option("--name", help="The job's name on the server (default: its name: in the file).", metavar="NAME")] = None,
    label: Labels = None,
    idempotency_key: Annotated[Optional[str], typer.Option("--idempotency-key", help="Submitting again with the same key answers the first job instead of running it twice.", metavar="KEY")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job has finished, then show it.")] = False,
    interval: Interval = 1.0,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Submit a job file to a Portl server, which checks it and runs it; print the job's id.

    Paths in the job are relative to the tenant's files folder on the server. An invalid job, or
    one the tenant is not allowed to run, is refused with every problem located in JOB_FILE (exit
    code 2). With --wait, follow the job until it has finished, then show it: exit code 0 when it
    succeeded, 1 when it failed, 130 when it was cancelled.
    """
    configure(debug=debug, format=format)
    from portl.spec.loader import read_job_file

    source = read_job_file(job_file)
    body: dict[str, Any] = {"job": source.text, "labels": _labels(label)}
    if name is not None:
        body["name"] = name
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with _connect(server, api_key) as client:
        job = client.request("POST", "/api/v1/jobs", json=body, headers=headers, job_file=source.name)
        if not wait:
            if settings.json:
                print_json(job)
            else:
                out.print(job["id"])
            return
        err.print(f"submitted job {job['id']} to {escape(client.shown)}; waiting for it to finish")
        job = _wait(client, job, interval)
    if settings.json:
        print_json(job)
    else:
        from portl.cli.jobviews import render_job

        render_job(out, job)
    raise typer.Exit(FINISHED_EXIT.get(job["status"], EXIT_FAILURE))


def _wait(client: ServerClient, job: dict[str, Any], interval: float) -> dict[str, Any]:
    """The job once it has finished; on a terminal, a progress line meanwhile."""
    from portl.cli.jobviews import progress_line

    live = err.is_terminal and not settings.quiet and not settings.json
    path = f"/api/v1/jobs/{job['id']}"
    shown = ""
    try:
        while job["status"] not in FINISHED_EXIT:
            if live:
                line = progress_line(job)
                sys.stderr.write("\r" + line.ljust(len(shown)))
                sys.stderr.flush()
                shown = line
            time.sleep(interval)
            job = client.request("GET", path)
    except KeyboardInterrupt:
        raise Interrupted(f"stopped waiting; job {job['id']} goes on on the server: follow it with `portl jobs show "
                          f"{job['id']}`, or stop it with `portl jobs cancel {job['id']}`") from None
    finally:
        if live and shown:
            sys.stderr.write("\r" + " " * len(shown) + "\r")
            sys.stderr.flush()
    return job


@jobs_app.command("list")
def jobs_list(
    status: Annotated[Optional[str], typer.Option("--status", help="Only jobs in this status (queued, running, cancelling, cancelled, succeeded, failed, partial).", metavar="STATUS")] = None,
    label: Labels = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many jobs, newest first.", min=1, metavar="N")] = 20,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """List your tenant's jobs on the server, newest first: id, name, status, counts, duration."""
    configure(debug=debug, format=format)
    filters: dict[str, Any] = {"label": [f"{k}:{v}" for k, v in _labels(label).items()]}
    if status is not None:
        filters["status"] = status
    jobs: list[dict[str, Any]] = []
    cursor = None
    with _connect(server, api_key) as client:
        while len(jobs) < limit:
            page = client.request("GET", "/api/v1/jobs", params={**filters, "limit": min(limit - len(jobs), 200),
                                                                 **({"cursor": cursor} if cursor else {})})
            jobs.extend(page["jobs"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        where = client.shown
    if settings.json:
        print_json(jobs[:limit])
        return
    from portl.cli.jobviews import render_jobs

    render_jobs(out, jobs[:limit], where)


@jobs_app.command("show")
def jobs_show(job_id: JobId, server: Server = DEFAULT_SERVER, api_key: ApiKey = None,
              format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Show one job: status, labels, times, counts, progress, error."""
    configure(debug=debug, format=format)
    path = _job_path(job_id)
    with _connect(server, api_key) as client:
        job = client.request("GET", path)
    _show(job)


@jobs_app.command("cancel")
def jobs_cancel(job_id: JobId, server: Server = DEFAULT_SERVER, api_key: ApiKey = None,
                format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Cancel a job: a queued one at once, a running one after the batch it is writing (cancelling,
    then cancelled). A job that has finished cannot be cancelled (exit code 1)."""
    configure(debug=debug, format=format)
    path = _job_path(job_id)
    with _connect(server, api_key) as client:
        job = client.request("PUT", path + "/cancel")
    if settings.json:
        print_json(job)
        return
    then = "; it stops after the batch it is writing" if job["status"] == "cancelling" else ""
    out.print(f"job {job['id']} {job['status']}{then}")


@jobs_app.command("delete")
def jobs_delete(job_id: JobId, server: Server = DEFAULT_SERVER, api_key: ApiKey = None,
                format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Delete a finished job: it is no longer listed or shown. A job still queued or running must
    be cancelled first (exit code 1). The server keeps its record, as the audit trail."""
    configure(debug=debug, format=format)
    path = _job_path(job_id)
    with _connect(server, api_key) as client:
        client.request("DELETE", path)
    if settings.json:
        print_json({"id": str(uuid.UUID(job_id)), "deleted": True})
    else:
        out.print(f"job {uuid.UUID(job_id)} deleted")


def _show(job: dict[str, Any]) -> None:
    if settings.json:
        print_json(job)
        return
    from portl.cli.jobviews import render_job

    render_job(out, job)


@jobs_app.command("logs")
def jobs_logs(
    job_id: JobId,
    outcome: Annotated[Optional[str], typer.Option("--outcome", help="Only records with this outcome, e.g. rejected or skipped.", metavar="OUTCOME")] = None,
    key: Annotated[Optional[str], typer.Option("--key", help="Only the record with this key: why is it not in the destination?", metavar="KEY")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many records, oldest first.", min=1, metavar="N")] = 1000,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Show the records a job did not load as they were: rejected (or skipped), where in the source
    each came from, the column, the value and why."""
    configure(debug=debug, format=format)
    path = _job_path(job_id) + "/logs"
    filters = {name: value for name, value in (("outcome", outcome), ("key", key)) if value is not None}
    entries: list[dict[str, Any]] = []
    cursor, note = None, None
    with _connect(server, api_key) as client:
        while len(entries) < limit:
            page = client.request("GET", path, params={**filters, "limit": min(limit - len(entries), 500),
                                                       **({"cursor": cursor} if cursor else {})})
            entries.extend(page["entries"])
            note = note or page.get("note")
            cursor = page.get("next_cursor")
            if not cursor:
                break
    more = bool(cursor) and len(entries) >= limit
    if settings.json:
        print_json({"entries": entries[:limit], "note": note, "more": more})
        return
    from portl.cli.jobviews import render_log

    render_log(out, entries[:limit])
    if note:
        err.print(escape(note), soft_wrap=True)
    if more:
        err.print(f"more records than --limit {limit}: raise it to see them")


@jobs_app.command("retry")
def jobs_retry(
    job_id: JobId,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job has finished again, then show it.")] = False,
    interval: Interval = 1.0,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Run again what did not succeed of a job that failed, ended partial or was cancelled: its
    dead-lettered and cancelled batches, each from the checkpoint its destination holds, so no row
    is loaded twice. With --wait, exit codes as for `portl submit --wait`."""
    configure(debug=debug, format=format)
    path = _job_path(job_id)
    with _connect(server, api_key) as client:
        job = client.request("POST", path + "/retry")
        if not wait:
            if settings.json:
                print_json(job)
            else:
                out.print(f"job {job['id']} {job['status']} again; it continues from its destination's checkpoints")
            return
        err.print(f"job {job['id']} {job['status']} again; waiting for it to finish")
        job = _wait(client, job, interval)
    _show(job)
    raise typer.Exit(FINISHED_EXIT.get(job["status"], EXIT_FAILURE))
