"""The ``portl`` command line: each command parses its options and calls one function below."""

from __future__ import annotations

import gc
import os
import sys
import traceback
from typing import Annotated, Optional

import typer

from portl.cli import output
from portl.cli.client import jobs_app, submit
from portl.cli.files import files_app
from portl.cli.init import init_command
from portl.cli.outbox import outbox_app
from portl.cli.quality import check as check_command
from portl.cli.output import Format, configure, err, out, print_json
from portl.cli.reports import report_command
from portl.cli.runcommands import logs_command, open_ledger, stop_command
from portl.cli.service import keys_app, serve, service_app, tenants_app, worker
from portl.cli.signals import StopOnSignals
from portl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, PortlError

app = typer.Typer(
    name="portl",
    help="Move data between systems, correctly and fast. Run `portl COMMAND --help` for each command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's help: rewrapped to the terminal, option names never cut off at 80 columns
)
runs_app = typer.Typer(help="List the runs in the ledger, or show one.", invoke_without_command=True, rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
app.add_typer(outbox_app, name="outbox")
app.add_typer(service_app, name="service")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("worker")(worker)
app.command("init")(init_command)
app.command("submit")(submit)
app.command("check")(check_command)
app.command("report")(report_command)
app.add_typer(jobs_app, name="jobs")
app.add_typer(files_app, name="files")
app.command("logs")(logs_command)
app.command("stop")(stop_command)

JobFile = Annotated[str, typer.Argument(help="The job file (YAML), or - to read it from standard input.", metavar="JOB_FILE")]
JobName = Annotated[Optional[str], typer.Option("--job", "-j", help="Which job, when the file holds several.", metavar="NAME")]
Connections = Annotated[Optional[str], typer.Option("--connections", help="Connections file (default: connections.yaml beside the job).", envvar="PORTL_CONNECTIONS", metavar="FILE")]
StateDir = Annotated[Optional[str], typer.Option("--state-dir", help="Folder of the run ledger (default: .portl beside the job file, or $PORTL_HOME).", envvar="PORTL_STATE_DIR", metavar="DIR")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")]
OutputFormat = Annotated[Format, typer.Option("--format", help="text for people, or json for programs (errors too).", case_sensitive=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print more: each committed batch of a run, every event of a flow.")]
FullRefresh = Annotated[bool, typer.Option("--full-refresh", help="An incremental job: read the whole source again, as the first run did, instead of only what is past the last run's mark (needs conflict, or an empty destination).")]
Rows = Annotated[Optional[int], typer.Option("--rows", help="With --dry-run or plan: mapped rows shown in the preview (default 5); for a flow, items shown per batch (default 3).", min=0, metavar="N")]
LogLevel = Annotated[str, typer.Option("--log-level", help="Flows: the least important events shown: debug (every step of every item), info, warning or error.", metavar="LEVEL")]
PREVIEW_ROWS, PREVIEW_ITEMS = 5, 3


def _show_version(value: bool) -> None:
    if value:
        from portl import __version__

        print(f"portl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Move data between systems, correctly and fast. Run `portl COMMAND --help` for each command.

    --quiet and --verbose work before the command (portl -q run job.yaml) and after it.
    """
    configure(quiet=quiet, verbose=verbose)


@app.command()
def run(
    job_file: JobFile,
    job: JobName = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Run every job of a multi-job file, in order; stop at the first that fails.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and write nothing (same as `portl plan`).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the job's last run where its last committed batch ended.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Start a new run even though the last one did not finish.")] = False,
    full_refresh: FullRefresh = False,
    format: OutputFormat = Format.text,
    log_format: Annotated[Format, typer.Option("--log-format", help="json: also every event, one JSON line each, before the summary (implies --format json).", case_sensitive=False)] = Format.text,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar (on a terminal).")] = True,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background, in a process that outlives the terminal: print the run id once the run is recorded and return (its log: `portl logs RUN`; `portl stop RUN` stops it).")] = False,
    connections: Connections = None,
    state_dir: StateDir = None,
    rows: Rows = None,
    log_level: LogLevel = "info",
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Run a job (read, map, write batch by batch) or a flow (its steps in order, in one transaction).

    Exit codes: 0 success, 1 failure, 2 invalid job or options, 3 more rejected rows than
    validation.max_rejects, 130 stopped with Ctrl-C and 143 with SIGTERM (resumable with
    --resume; a second signal rolls back the batch in flight). A flow: 1 a step failed (its
    transaction rolled back), 2 also when --dry-run finds errors, 130 rolled back. With --all, the
    exit code of the first job that failed. The run ledger is kept in .portl beside the job file.
    With --detach: 0 once the background run is recorded, or the exit code it failed with before.
    """
    if detach:
        from portl.cli.background import detach as in_background
        from portl.cli.runcommands import child_args

        configure(debug=debug, format=format, quiet=quiet, verbose=verbose)
        in_background(child_args(job_file, job=job, resume=resume, restart=restart, full_refresh=full_refresh,
                                 connections=connections, state_dir=state_dir, log_level=log_level, debug=debug),
                      job_file, state_dir, dry_run=dry_run, all_jobs=all_jobs)
        return
    events = log_format is Format.json
    configure(debug=debug, format=Format.json if events else format, quiet=quiet, verbose=verbose)
    if log_level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("expected debug, info, warning or error", param_hint="--log-level")
    if rows is not None and not dry_run:
        raise typer.BadParameter("--rows sets how much of the plan's preview --dry-run shows; add --dry-run, or use `portl plan`",
                                 param_hint="--rows")
    from portl.spec.loader import file_version, read_job_file

    source = read_job_file(job_file)
    if file_version(source) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job, "--all": all_jobs, "--resume": resume, "--restart": restart,
                                   "--full-refresh": full_refresh})
        if dry_run:
            if flows.plan(out, source, connections, output.settings.json, PREVIEW_ITEMS if rows is None else rows):
                raise typer.Exit(2)
            return
        if output.settings.quiet:
            log_level = "error"
        elif output.settings.verbose:
            log_level = "debug"
        flows.run(err, source, connections, state_dir=state_dir, json_events=events, json_report=output.settings.json,
                  log_level=log_level, stopper=StopOnSignals)
        return
    if resume and restart:
        raise typer.BadParameter("--resume and --restart exclude each other", param_hint="--restart")
    if resume and full_refresh:
        raise typer.BadParameter("--resume continues a run with the window it began with; --full-refresh starts a "
                                 "new one: give one of them", param_hint="--full-refresh")
    if all_jobs and job:
        raise typer.BadParameter("--all runs every job of the file and --job chooses one: give one of them", param_hint="--all")
    from portl.cli.jobs import JobsRun

    names: list[str | None] = [job]
    if all_jobs:
        from portl.spec.loader import job_names

        names = list(job_names(source))
    ran = JobsRun(names, shown=all_jobs)
    for name in names:
        with ran.job(name):
            report = _run_job(source, name, dry_run=dry_run, resume=resume, restart=restart, full_refresh=full_refresh,
                              json_events=events,
                              progress=progress, connections=connections, state_dir=state_dir,
                              rows=PREVIEW_ROWS if rows is None else rows)
            ran.finished(name, report)
    ran.summary()


def _run_job(source, job, *, dry_run: bool, resume: bool, restart: bool, full_refresh: bool, json_events: bool, progress: bool,
             connections: str | None, state_dir: str | None, rows: int):
    """Plan one job, then print the plan (dry-run) or run it; returns the report (None for a dry-run)."""
    from portl.cli.render import render_plan, render_report
    from portl.cli.watch import RunWatcher
    from portl.engine.plan import plan as make_plan
    from portl.engine.run import RunOptions, run as execute
    from portl.spec.loader import load_job

    settings = output.settings
    loaded = load_job(source, job, connections)
    the_plan = make_plan(loaded, preview_rows=rows, full_refresh=full_refresh)
    try:
        if dry_run:
            if settings.json:
                print_json(the_plan.to_dict())
            else:
                render_plan(out, the_plan)
            return None
        options = RunOptions(state_dir=state_dir, resume=resume, restart=restart)
        watcher = RunWatcher(err, the_plan, json_events=json_events, verbose=settings.verbose,
                             progress=progress and err.is_terminal and not settings.quiet and not settings.json)
        options.events.subscribe(watcher)
        again = "-" if loaded.path == "<stdin>" else loaded.path  # a job read from standard input is read so again
        with StopOnSignals(options.stop, err, halt=options.halt, resume_hint=f"portl run {again} --resume"):
            with watcher:
                try:
                    report = execute(the_plan, options)
                except PortlError as exc:
                    watcher.close()
                    partial = getattr(exc, "report", None)
                    if partial is not None and not settings.json:
                        render_report(err, partial, json_out=False)
                    raise
        render_report(err, report, json_out=settings.json)
        return report
    finally:
        the_plan.close()


@app.command()
def plan(
    job_file: JobFile,
    job: JobName = None,
    format: OutputFormat = Format.text,
    connections: Connections = None,
    rows: Rows = None,
    full_refresh: FullRefresh = False,
    debug: Debug = False,
) -> None:
    """Show exactly what `portl run` would do, and write nothing.

    The resolved job (secrets masked), the source schema, the mapping table, the DDL and the SQL
    per batch, the first mapped rows with rejects explained, a row estimate and warnings. For a
    flow (version: 2): each step on the first items of each batch, with the SQL and parameters of
    DB steps and the HTTP and Lambda requests, calling nothing. Exit code 2 when the plan finds
    errors (with --format json, an invalid job prints its problems as JSON on stdout).
    """
    configure(debug=debug, format=format)
    from portl.spec.loader import file_version, read_job_file

    source = read_job_file(job_file)
    if file_version(source) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job, "--full-refresh": full_refresh})
        if flows.plan(out, source, connections, output.settings.json, PREVIEW_ITEMS if rows is None else rows):
            raise typer.Exit(2)
        return
    from portl.cli.render import render_plan
    from portl.engine.plan import plan as make_plan
    from portl.spec.loader import load_job

    the_plan = make_plan(load_job(source, job, connections), preview_rows=PREVIEW_ROWS if rows is None else rows,
                         full_refresh=full_refresh)
    try:
        if output.settings.json:
            print_json(the_plan.to_dict())
        else:
            render_plan(out, the_plan)
    finally:
        the_plan.close()
    if the_plan.errors:
        raise typer.Exit(2)


@app.command()
def validate(
    job_file: JobFile,
    job: JobName = None,
    format: OutputFormat = Format.text,
    connections: Connections = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Check a job file against the job language; report every problem with file:line:column.

    Every job of a multi-job file is checked, unless --job names one. Exit code 2 when a job is
    invalid (with --format json, its problems are printed as JSON on stdout).
    """
    configure(debug=debug, format=format, quiet=quiet)
    from portl.cli.jobs import validate_file

    validate_file(job_file, job, connections)


@app.command()
def connectors(format: OutputFormat = Format.text, verbose: Verbose = False) -> None:
    """List the connector types a job can name, and what each can do as a destination."""
    configure(format=format, verbose=verbose)
    from portl.cli.connectors import show_connectors

    show_connectors()


@app.command()
def schema(
    flow: Annotated[bool, typer.Option("--flow", help="The schema of flow files (version: 2) instead of migration jobs.")] = False,
) -> None:
    """Print the JSON Schema of the job language, for editors and linters."""
    if flow:
        from portl.spec.flow import flow_json_schema

        print_json(flow_json_schema())
        return
    from portl.spec.loader import job_json_schema

    print_json(job_json_schema())


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    job: Annotated[Optional[str], typer.Option("--job", "-j", help="Only runs of this job.", metavar="NAME")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.", min=1, metavar="N")] = 20,
    format: OutputFormat = Format.text,
    state_dir: StateDir = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh the table every second (rows, rows/s, status) until the runs listed as running have ended, or Ctrl-C. Not on a terminal: printed once.")] = False,
) -> None:
    """List recent runs: id, job, status, counts, duration."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = state_dir
        return
    configure(format=format)
    from portl.cli.render import render_runs, run_json

    ledger = open_ledger(state_dir)
    try:
        if watch and not output.settings.json:
            from portl.cli.runswatch import watch as watch_runs

            def fetch():
                ledger.settle_stale()  # a watched run whose process died ends the watch too
                return ledger.list(limit=limit, job=job)

            watch_runs(out, fetch, ledger.path)
            return
        runs = ledger.list(limit=limit, job=job)
        if output.settings.json:
            print_json([run_json(r) for r in runs])
        else:
            render_runs(out, runs, ledger.path)
    finally:
        ledger.close()


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of it.", metavar="RUN_ID")],
    format: OutputFormat = Format.text,
    state_dir: Annotated[Optional[str], typer.Option("--state-dir", help="Folder of the run ledger.", envvar="PORTL_STATE_DIR", metavar="DIR")] = None,
) -> None:
    """Show one run: status, counts, checkpoints, error."""
    configure(format=format)
    from portl.cli.render import render_run, run_json

    ledger = open_ledger(state_dir or ctx.obj)
    try:
        record = ledger.get(run_id)
        if record is None:
            raise PortlError(f"no run {run_id!r} in {ledger.path}; `portl runs` lists them")
        if output.settings.json:
            print_json(run_json(record))
        else:
            render_run(out, record)
    finally:
        ledger.close()


def main() -> None:
    """Entry point: run the app and turn errors into a sentence and an exit code."""
    # A command starts by building some hundred thousand objects that live as long as the process
    # (modules, classes, validators) and hardly any garbage: collecting every 700 new objects cost
    # start-up about 40 ms. Runs collect as seldom (engine.run), for the same reason.
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    _return_freed_memory()
    try:
        sys.exit(_run_app())
    finally:
        # The process ends here. Frozen, those objects are left to the OS instead of being walked
        # by the interpreter's last collections (80 ms of a `portl plan`). Nothing relies on their
        # collection: what must reach a file or a server is written and closed explicitly, since
        # a kill -9 at any moment must leave every run resumable.
        gc.freeze()


def _return_freed_memory() -> None:
    """Ask Arrow's allocator (mimalloc) to give freed memory back to the system at once, not
    after a delay, and to commit its arenas as they are used: batches are freed as fast as they
    are read, and a run's peak memory then stays near what it holds (a load with quality checks
    over two workers: 290 MB instead of 365 MB, for the same CPU time). Set before pyarrow is
    imported, which reads them once; a user's own setting wins."""
    os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")
    os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")


def _run_app() -> int:
    """Run the command; an error becomes a sentence on stderr (and, with --format json, a JSON
    document on stdout). Returns the exit code."""
    settings = output.settings
    settings.json = output.asks_for_json(sys.argv[1:])
    try:
        # Without standalone mode typer returns the exit code of typer.Exit instead of raising it.
        code = app(prog_name="portl", standalone_mode=False)
    except PortlError as exc:
        if settings.debug:
            traceback.print_exc()
        output.show_error(exc, exc.exit_code)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        err.quiet = False
        err.print("[yellow]interrupted: the batch in progress was rolled back; continue with --resume[/]")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # a usage error: bad option or argument
            if settings.json:
                print_json(output.error_document(exc, exc.exit_code), lines=True)
            exc.show()
            return exc.exit_code
        if settings.debug:
            traceback.print_exc()
        output.show_error(exc, EXIT_FAILURE, label="internal error")
        return EXIT_FAILURE
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
