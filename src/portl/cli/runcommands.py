"""The commands for runs in the background: ``portl logs RUN`` and ``portl stop RUN``
(``portl run --detach`` starts them; ``portl runs --watch`` shows them)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from portl.cli.output import Format, configure, settings
from portl.errors import PortlError

RunId = Annotated[str, typer.Argument(help="Run id, or a unique prefix of it (`portl runs` lists them).", metavar="RUN_ID")]
StateDir = Annotated[Optional[str], typer.Option(
    "--state-dir", help="Folder of the run ledger (default: .portl here, or $PORTL_HOME).", envvar="PORTL_STATE_DIR",
    metavar="DIR")]


def open_ledger(state_dir: str | None):
    """The ledger of the runs started from here: ``--state-dir``, else ``$PORTL_HOME``, else
    ``.portl`` here (the folder of the jobs run from here). Runs whose process died are marked
    interrupted first."""
    from portl.state.ledger import Ledger, ledger_exists, state_dir_for

    folder = state_dir_for(os.curdir, state_dir)
    if not ledger_exists(folder):
        raise PortlError(f"no run ledger in {folder}{os.sep}: a job's ledger is kept in .portl beside its job file; "
                         "run this from the job's folder, or pass --state-dir FOLDER/.portl")
    ledger = Ledger(folder)
    ledger.settle_stale()
    return ledger


def child_args(job_file: str, *, job: str | None, resume: bool, restart: bool, full_refresh: bool,
               connections: str | None, state_dir: str | None, log_level: str, debug: bool) -> list[str]:
    """The ``portl run`` command line a background run is started with: the options given to
    ``portl run --detach`` (``--format``, progress and output options aside: the log takes JSON)."""
    args = ["run", job_file, "--log-level", log_level]
    for flag, given in (("--resume", resume), ("--restart", restart), ("--full-refresh", full_refresh), ("--debug", debug)):
        if given:
            args.append(flag)
    for option, value in (("--job", job), ("--connections", connections), ("--state-dir", state_dir)):
        if value is not None:
            args += [option, value]
    if settings.verbose:
        args.append("--verbose")
    return args


def logs_command(
    run_id: RunId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends; exit with "
                                         "the run's exit code (0 when it succeeded).")] = False,
    format: Annotated[Format, typer.Option("--format", help="text: one readable line per event (time, level, event, "
                                           "counts); json: the events as the run wrote them, one JSON object a line.",
                                           case_sensitive=False)] = Format.text,
    state_dir: StateDir = None,
) -> None:
    """Show the log of a run started with `portl run --detach`: its events and its summary.

    On a terminal the log opens in $PAGER (default: less -R). --follow streams it instead, until
    the run ends. A run that ran in the foreground has no log: its output went to the terminal.
    """
    configure(format=format)
    from portl.cli import runlogs

    as_json = format is Format.json
    ledger = open_ledger(state_dir)
    try:
        record, paths = runlogs.find_logs(ledger, run_id)
        if follow:
            code = runlogs.follow(ledger, record, paths, as_json)
            raise typer.Exit(code)
        runlogs.show(paths, as_json, page=sys.stdout.isatty())
    finally:
        ledger.close()


def stop_command(
    run_id: RunId,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the run to end before giving up "
                                           "(the run goes on; stop it again with --now).", min=0, metavar="SECONDS")] = 30,
    now: Annotated[bool, typer.Option("--now", help="Also abort the batch being written (rolled back), as a second "
                                      "Ctrl-C does; what was committed is kept.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Stop a running run after the batch it is writing, as Ctrl-C does where it runs.

    The run's process is signalled only when it is still the one the ledger recorded (same pid
    and start time). The run ends interrupted; `portl run JOB --resume` continues it. Exit code 1
    when the run is not running or did not end within --timeout.
    """
    configure()
    from portl.cli.background import stop

    ledger = open_ledger(state_dir)
    try:
        stop(ledger, run_id, timeout=timeout, now=now)
    finally:
        ledger.close()
