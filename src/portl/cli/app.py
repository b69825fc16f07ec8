"""The ``portl`` command line: each command parses its options and calls one function below."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import traceback
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from portl.cli.init import init_command
from portl.cli.outbox import outbox_app
from portl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, PortlError

app = typer.Typer(
    name="portl",
    help="Move data between systems, correctly and fast. Run `portl COMMAND --help` for each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List the runs in the ledger, or show one.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
app.add_typer(outbox_app, name="outbox")
app.command("init")(init_command)

# Piped output is read in files and logs, not on an 80-column terminal: give tables room.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

JobFile = Annotated[str, typer.Argument(help="The job file (YAML).", metavar="JOB.yaml")]
JobName = Annotated[Optional[str], typer.Option("--job", "-j", help="Which job, when the file holds several.")]
Connections = Annotated[Optional[str], typer.Option("--connections", help="Connections file (default: connections.yaml beside the job).", envvar="PORTL_CONNECTIONS")]
StateDir = Annotated[str, typer.Option("--state-dir", help="Folder of the run ledger.", envvar="PORTL_STATE_DIR")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")]
Rows = Annotated[Optional[int], typer.Option("--rows", help="Mapped rows shown in the plan's preview (default 5); for a flow, items shown per batch (default 3).", min=0)]
LogLevel = Annotated[str, typer.Option("--log-level", help="Flows: the least important events shown: debug (every step of every item), info, warning or error.")]
PREVIEW_ROWS, PREVIEW_ITEMS = 5, 3


class _Context:
    debug = False


@app.command()
def run(
    job_file: JobFile,
    job: JobName = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and write nothing (same as `portl plan`).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the job's last run where its last committed batch ended.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Start a new run even though the last one did not finish.")] = False,
    log_format: Annotated[str, typer.Option("--log-format", help="text (progress bar and summary) or json (one event per line).")] = "text",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar (on a terminal).")] = True,
    connections: Connections = None,
    state_dir: StateDir = ".portl",
    rows: Rows = None,
    log_level: LogLevel = "info",
    debug: Debug = False,
) -> None:
    """Run a job (read, map, write batch by batch) or a flow (its steps in order, in one transaction).

    Exit codes: 0 success, 1 failure, 2 invalid job or options, 3 more rejected rows than
    validation.max_rejects, 130 stopped with Ctrl-C (resumable with --resume). A flow: 1 a step
    failed (its transaction rolled back), 2 also when --dry-run finds errors, 130 rolled back.
    """
    _Context.debug = debug
    if log_format not in ("text", "json"):
        raise typer.BadParameter("expected text or json", param_hint="--log-format")
    if log_level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("expected debug, info, warning or error", param_hint="--log-level")
    from portl.spec.loader import file_version

    if file_version(job_file) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job, "--resume": resume, "--restart": restart})
        if dry_run:
            if flows.plan(out, job_file, connections, False, PREVIEW_ITEMS if rows is None else rows):
                raise typer.Exit(2)
            return
        flows.run(err, job_file, connections, state_dir=state_dir, log_format=log_format, log_level=log_level,
                  stopper=_stop_on_ctrl_c)
        return
    rows = PREVIEW_ROWS if rows is None else rows
    if resume and restart:
        raise typer.BadParameter("--resume and --restart exclude each other", param_hint="--restart")
    from portl.cli.render import render_plan, render_report
    from portl.cli.watch import RunWatcher
    from portl.engine.plan import plan as make_plan
    from portl.engine.run import RunOptions, run as execute
    from portl.spec.loader import load_job

    loaded = load_job(job_file, job, connections)
    the_plan = make_plan(loaded, preview_rows=rows)
    try:
        if dry_run:
            render_plan(out, the_plan)
            return
        options = RunOptions(state_dir=state_dir, resume=resume, restart=restart)
        watcher = RunWatcher(err, the_plan, json_events=log_format == "json", progress=progress and err.is_terminal)
        options.events.subscribe(watcher)
        with _stop_on_ctrl_c(options.stop, err):
            with watcher:
                try:
                    report = execute(the_plan, options)
                except PortlError as exc:
                    watcher.close()
                    partial = getattr(exc, "report", None)
                    if partial is not None and log_format == "text":
                        render_report(err, partial, json_out=False)
                    raise
        render_report(err, report, json_out=log_format == "json")
    finally:
        the_plan.close()


@app.command()
def plan(
    job_file: JobFile,
    job: JobName = None,
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    connections: Connections = None,
    rows: Rows = None,
    debug: Debug = False,
) -> None:
    """Show exactly what `portl run` would do, and write nothing.

    The resolved job (secrets masked), the source schema, the mapping table, the DDL and the SQL
    per batch, the first mapped rows with rejects explained, a row estimate and warnings. For a
    flow (version: 2): each step on the first items of each batch, with the SQL and parameters of
    DB steps and the HTTP and Lambda requests, calling nothing.
    """
    _Context.debug = debug
    if format not in ("text", "json"):
        raise typer.BadParameter("expected text or json", param_hint="--format")
    from portl.spec.loader import file_version

    if file_version(job_file) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job})
        if flows.plan(out, job_file, connections, format == "json", PREVIEW_ITEMS if rows is None else rows):
            raise typer.Exit(2)
        return
    rows = PREVIEW_ROWS if rows is None else rows
    from portl.cli.render import render_plan
    from portl.engine.plan import plan as make_plan
    from portl.spec.loader import load_job

    the_plan = make_plan(load_job(job_file, job, connections), preview_rows=rows)
    try:
        if format == "json":
            print(json.dumps(the_plan.to_dict(), indent=2, default=str))
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
    connections: Connections = None,
    debug: Debug = False,
) -> None:
    """Check a job file against the job language; report every problem with file:line:column."""
    _Context.debug = debug
    from portl.spec.loader import file_version, job_names, load_job

    if file_version(job_file) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job})
        flows.validate(out, job_file, connections)
        return

    names = [job] if job else job_names(job_file)
    for name in names or [None]:
        loaded = load_job(job_file, name, connections)
        j = loaded.job
        what = f"{j.source.type} -> {j.destination.type}, {j.write_mode.value}"
        if j.conflict:
            what += f" on ({', '.join(j.conflict.key)}), strategy {j.conflict.strategy.value}"
        out.print(f"[green]ok[/] {job_file}: job {loaded.name!r} is valid ({what})")


@app.command()
def schema(
    flow: Annotated[bool, typer.Option("--flow", help="The schema of flow files (version: 2) instead of migration jobs.")] = False,
) -> None:
    """Print the JSON Schema of the job language, for editors and linters."""
    if flow:
        from portl.spec.flow import flow_json_schema

        print(json.dumps(flow_json_schema(), indent=2))
        return
    from portl.spec.loader import job_json_schema

    print(json.dumps(job_json_schema(), indent=2))


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    job: Annotated[Optional[str], typer.Option("--job", "-j", help="Only runs of this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.", min=1)] = 20,
    state_dir: StateDir = ".portl",
) -> None:
    """List recent runs: id, job, status, counts, duration."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = state_dir
        return
    from portl.cli.render import render_runs

    ledger = _open_ledger(state_dir)
    try:
        render_runs(out, ledger.list(limit=limit, job=job), ledger.path)
    finally:
        ledger.close()


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of it.")],
    state_dir: Annotated[Optional[str], typer.Option("--state-dir", help="Folder of the run ledger.", envvar="PORTL_STATE_DIR")] = None,
) -> None:
    """Show one run: status, counts, checkpoints, error."""
    from portl.cli.render import render_run

    ledger = _open_ledger(state_dir or ctx.obj or ".portl")
    try:
        record = ledger.get(run_id)
        if record is None:
            raise PortlError(f"no run {run_id!r} in {ledger.path}; `portl runs` lists them")
        render_run(out, record)
    finally:
        ledger.close()


def _open_ledger(state_dir: str):
    from portl.state.ledger import Ledger

    if not os.path.exists(os.path.join(state_dir, "state.db")):
        raise PortlError(f"no run ledger in {state_dir}/ yet: no job has run from here (or pass --state-dir)")
    return Ledger(state_dir)


class _stop_on_ctrl_c:
    """First Ctrl-C: finish the current batch, then stop (resumable). Second: stop at once."""

    def __init__(self, stop: threading.Event, console: Console, unit: str = "batch"):
        self.stop, self.console, self.unit = stop, console, unit

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.stop.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.stop.set()
        self.console.print(f"[yellow]stopping after the current {self.unit}... (Ctrl-C again to abort it, rolling it back)[/]")

    def __exit__(self, *exc):
        if hasattr(self, "previous"):
            signal.signal(signal.SIGINT, self.previous)
        return False


def main() -> None:
    """Entry point: run the app and turn errors into a sentence and an exit code."""
    # A command starts by building some hundred thousand objects that live as long as the process
    # (modules, classes, validators) and hardly any garbage: collecting every 700 new objects cost
    # start-up about 40 ms. Runs collect as seldom (engine.run), for the same reason.
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    try:
        sys.exit(_run_app())
    finally:
        # The process ends here. Frozen, those objects are left to the OS instead of being walked
        # by the interpreter's last collections (80 ms of a `portl plan`). Nothing relies on their
        # collection: what must reach a file or a server is written and closed explicitly, since
        # a kill -9 at any moment must leave every run resumable.
        gc.freeze()


def _run_app() -> int:
    """Run the command; an error becomes a sentence on stderr. Returns the exit code."""
    try:
        # Without standalone mode typer returns the exit code of typer.Exit instead of raising it.
        code = app(standalone_mode=False)
    except PortlError as exc:
        if _Context.debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: the batch in progress was rolled back; continue with --resume[/]")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # a usage error: bad option or argument
            exc.show()
            return exc.exit_code
        if _Context.debug:
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} (run with --debug for the traceback)")
        return EXIT_FAILURE
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
