"""Runs in the background: ``portl run --detach`` starts one, ``portl stop`` asks one to stop.

A detached run is an ordinary ``portl run ... --log-format json`` in a process of its own: a new
session (closing the terminal sends it no SIGHUP), standard input from ``/dev/null``, its output
(the JSON events, messages and the final summary) appended to a log in the state folder,
``logs/<run_id>.log``. The command that starts it returns once the run is recorded in the ledger,
so the id it prints always names a run that exists; if the child fails before that (a bad job file,
a destination that refuses the connection), its problems are shown and the exit code is its own.

The run id is only known once the child has opened its run, so the child writes to
``logs/.starting-<token>.log`` and the parent renames that file when it reads the id from the
child's first event (the child keeps writing to the same file through its open descriptor). A
resumed run keeps its id: each detached attempt of it gets the next free name,
``<run_id>.2.log``, ``<run_id>.3.log``..., and ``portl logs`` reads them in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from portl.cli.output import err, out, print_json, settings
from portl.errors import EXIT_FAILURE, ConfigError, PortlError

#: Seconds ``--detach`` waits for the background run to be recorded in the ledger. Planning reads
#: the source's schema and connects to the destination, which can be slow on a busy server.
START_TIMEOUT = float(os.environ.get("PORTL_DETACH_TIMEOUT", "120"))


def logs_dir(state_dir: str) -> str:
    """The folder of the background runs' logs, inside the state folder."""
    return os.path.join(state_dir, "logs")


def log_files(state_dir: str, run_id: str) -> list[str]:
    """The log files of ``run_id``, oldest attempt first (empty for a run that never ran detached)."""
    folder = logs_dir(state_dir)
    first = os.path.join(folder, f"{run_id}.log")
    found = [first] if os.path.exists(first) else []
    attempt = 2
    while os.path.exists(path := os.path.join(folder, f"{run_id}.{attempt}.log")):
        found.append(path)
        attempt += 1
    return found


def _free_log_name(state_dir: str, run_id: str) -> str:
    taken = log_files(state_dir, run_id)
    name = f"{run_id}.log" if not taken else f"{run_id}.{len(taken) + 1}.log"
    return os.path.join(logs_dir(state_dir), name)


@dataclass
class Started:
    """A background run the ledger has recorded."""

    run_id: str
    pid: int
    log: str


def detach(argv: list[str], job_file: str, state_dir: str | None, *, dry_run: bool, all_jobs: bool) -> None:
    """Start ``portl`` with ``argv`` (the command line, without ``--detach``) in the background,
    wait until its run is in the ledger and print the run id; raise when it ends before that."""
    from portl.state.ledger import state_dir_for

    if job_file == "-":
        raise PortlError("--detach cannot read the job from standard input: the background run has none "
                         "(it reads /dev/null); save the job to a file and pass its path")
    if dry_run:
        raise ConfigError("--dry-run and --detach exclude each other: a dry run writes nothing and only prints the "
                          "plan; run it in the foreground")
    if all_jobs:
        raise ConfigError("--all and --detach exclude each other: each job of the file is a run of its own; start "
                          "one detached run per job with --job NAME")
    if not os.path.isfile(job_file):
        raise ConfigError(f"no job file {job_file!r} (from {os.getcwd()}); check the path")
    folder = state_dir_for(os.path.dirname(os.path.abspath(job_file)), state_dir)
    started = _start(argv, folder)
    _say_started(started, folder)


def _start(argv: list[str], state_dir: str) -> Started:
    folder = logs_dir(state_dir)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise PortlError(f"cannot create the log folder {folder}: {exc}; set --state-dir to a writable folder") from exc
    starting = os.path.join(folder, f".starting-{uuid.uuid4().hex[:12]}.log")
    # The events go to stdout as JSON lines; a --log-format or --format given earlier is overridden.
    command = [sys.executable, "-m", "portl.cli.app", *argv, "--log-format", "json", "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(starting, "ab") as log, open(os.devnull, "rb") as nothing:
        child = subprocess.Popen(command, stdin=nothing, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True, close_fds=True)
    try:
        run_id = _wait_for_run(child, starting, state_dir)
    except BaseException:
        if child.poll() is not None and os.path.exists(starting):
            os.unlink(starting)  # no run came of it: its output has been shown
        raise
    final = _free_log_name(state_dir, run_id)
    os.replace(starting, final)
    return Started(run_id, child.pid, final)


def _wait_for_run(child: subprocess.Popen, log_path: str, state_dir: str) -> str:
    """The id of the child's run, once the ledger holds it; the child's problems if it ends first."""
    from portl.state.ledger import Ledger, ledger_exists

    deadline = time.monotonic() + START_TIMEOUT
    lines: list[str] = []
    with open(log_path, encoding="utf-8", errors="replace") as reading:
        pending = ""
        while True:
            ended = child.poll() is not None
            pending += reading.read()
            *complete, pending = pending.split("\n")
            for line in complete:
                lines.append(line)
                run_id = _run_id_of(line)
                if run_id and ledger_exists(state_dir):
                    ledger = Ledger(state_dir)
                    try:
                        if ledger.get(run_id) is not None:
                            return run_id
                    finally:
                        ledger.close()
            if ended:
                if pending:
                    lines.append(pending)
                _relay_failure(lines, child.returncode)
            if time.monotonic() > deadline:
                raise PortlError(
                    f"the background run (pid {child.pid}) did not record its run within {START_TIMEOUT:.0f} s; it is "
                    f"still running and writes to {log_path}. Look there, and end it with `kill -INT {child.pid}` if it "
                    "hangs (PORTL_DETACH_TIMEOUT sets how long to wait)")
            time.sleep(0.05)


def _run_id_of(line: str) -> str | None:
    """The run id an event line names (``resuming`` names it in its details), else None."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") in ("report", "error", "jobs"):
        return None
    details = event.get("details") if isinstance(event.get("details"), dict) else {}
    return event.get("run_id") or details.get("run_id")


def _relay_failure(lines: list[str], code: int) -> None:
    """The child ended before its run was recorded: show what it said, end with its exit code."""
    import typer

    shown = False
    for line in lines:
        try:
            document = json.loads(line)
        except ValueError:
            document = None
        if isinstance(document, dict):
            if settings.json:
                print_json(document, lines=True)
            if document.get("event") == "report" and not settings.json:
                # e.g. --resume of a run that had finished: nothing ran, nothing to follow
                err.print(f"run {document.get('run_id')} of job {escape(str(document.get('job')))}: "
                          f"{escape(str(document.get('status')))}; nothing was started in the background")
                shown = True
            continue
        if line.strip():
            err.print(escape(line), soft_wrap=True, highlight=False)
            shown = True
    if code == 0:
        raise typer.Exit(0)
    if not shown:
        err.print(f"[bold red]error:[/] the background run ended with exit code {code} before it started a run")
    raise typer.Exit(code or EXIT_FAILURE)


def _say_started(started: Started, state_dir: str) -> None:
    if settings.json:
        print_json({"event": "detached", "run_id": started.run_id, "pid": started.pid, "log": started.log})
        return
    out.print(started.run_id)  # alone on stdout: `id=$(portl run job.yaml --detach)`
    where = _state_dir_option(state_dir)
    err.print(f"started run {started.run_id} in the background (pid {started.pid}); its log: {escape(started.log)}\n"
              f"  follow it: portl logs {started.run_id} --follow{escape(where)}\n"
              f"  see it:    portl runs --watch{escape(where)}\n"
              f"  stop it:   portl stop {started.run_id}{escape(where)}", soft_wrap=True)


def _state_dir_option(state_dir: str, job_dir: str = os.curdir) -> str:
    """`` --state-dir DIR`` when a command would not find this ledger by itself: ``portl runs``,
    ``logs`` and ``stop`` look in the current folder (``job_dir`` ``.``), ``portl run`` beside the job."""
    from portl.state.ledger import state_dir_for

    here = state_dir_for(job_dir, os.environ.get("PORTL_STATE_DIR"))
    if os.path.abspath(here) == os.path.abspath(state_dir):
        return ""
    return f" --state-dir {state_dir}"


# --- portl stop -----------------------------------------------------------------------------------

RUN_EXIT_CODES = {"succeeded": 0, "interrupted": 130, "reject_limit": 3, "failed_checks": 4}


def stop(ledger: Any, run_id: str, *, timeout: float, now: bool) -> None:
    """Ask the process of a running run to stop after its current batch (``now``: also abort the
    batch in flight), then wait up to ``timeout`` seconds for the ledger to show it ended."""
    import typer

    from portl.state.ledger import RUNNING, process_alive

    record = ledger.get(run_id)
    if record is None:
        raise PortlError(f"no run {run_id!r} in {ledger.path}; `portl runs` lists them")
    if record.status != RUNNING:
        ended = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.ended_at)) if record.ended_at else "earlier"
        err.print(f"run {record.id} is not running: it ended {escape(record.status)} at {ended}; nothing to stop")
        raise typer.Exit(EXIT_FAILURE)
    owner = record.meta.get("process") or {}
    pid = owner.get("pid")
    if not pid or not owner.get("pid_started"):
        raise PortlError(f"run {record.id} did not record the identity of its process (pid and start time), so it "
                         "cannot be told from another process that took its pid; stop it where it runs (Ctrl-C)")
    alive = process_alive(owner)
    if alive is None:
        raise PortlError(f"run {record.id} runs on host {owner.get('host')}, not this one; run `portl stop` there")
    if not alive:
        raise PortlError(f"run {record.id}'s process {pid} has ended without recording an outcome; `portl runs` marks "
                         "it interrupted, and --resume continues it")
    # A second SIGINT aborts the batch in flight: a stop asked again (after a --timeout) must
    # not send it, so the first stop leaves a note saying which process it signalled.
    note = os.path.join(logs_dir(ledger.state_dir), f"{record.id}.stopping")
    asked = _asked_before(note, owner)
    if asked is not None and not now:
        err.print(f"run {record.id} (pid {pid}) was asked to stop at {asked}; waiting for its current batch "
                  "(--now aborts it)...")
    else:
        if asked is None:
            _signal(pid, signal.SIGINT)
            _leave_note(note, owner)
        what = "abort the batch in flight (rolled back)" if now else "stop after its current batch"
        err.print(f"asked run {record.id} (pid {pid}) to {what}...")
        if now:
            if asked is None:
                # Signals sent back to back can arrive as one: the second must find the first handled.
                time.sleep(0.5)
            if process_alive(owner):
                _signal(pid, signal.SIGINT)
    ended = _wait_until_ended(ledger, record.id, timeout)
    if ended is None:
        err.print(f"[yellow]run {record.id} is still running after {timeout:g} s (a batch can take long);[/] "
                  f"`portl runs` shows it, `portl stop {record.id} --now` aborts the batch in flight")
        raise typer.Exit(EXIT_FAILURE)
    read = ended.counts.get("read", 0)
    again = f"portl run {ended.job_path} --resume{_state_dir_option(ledger.state_dir, os.path.dirname(ended.job_path))}"
    if ended.unfinished:
        err.print(f"run {record.id} [yellow]{escape(ended.status)}[/]: {read:,} source rows committed. "
                  f"Continue it with: {escape(again)}", soft_wrap=True)
    else:
        err.print(f"run {record.id} ended {escape(ended.status)} before it stopped ({read:,} source rows); nothing to "
                  "continue", soft_wrap=True)


def _asked_before(note: str, owner: dict[str, Any]) -> str | None:
    """When this very process (same pid and start time) was asked to stop before: at what time."""
    try:
        with open(note, encoding="utf-8") as handle:
            told = json.load(handle)
    except (OSError, ValueError):
        return None
    if told.get("pid") != owner.get("pid") or told.get("pid_started") != owner.get("pid_started"):
        return None  # a note about an earlier process of the run (before a --resume)
    return time.strftime("%H:%M:%S", time.localtime(told.get("at", 0)))


def _leave_note(note: str, owner: dict[str, Any]) -> None:
    try:
        os.makedirs(os.path.dirname(note), exist_ok=True)
        with open(note, "w", encoding="utf-8") as handle:
            json.dump({"pid": owner.get("pid"), "pid_started": owner.get("pid_started"), "at": time.time()}, handle)
    except OSError:
        pass  # without the note a second stop aborts the batch, as a second Ctrl-C does


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it ended between the check and the signal: the ledger says how
    except PermissionError as exc:
        raise PortlError(f"not allowed to signal process {pid} (it belongs to another user): {exc}") from exc


def _wait_until_ended(ledger: Any, run_id: str, timeout: float) -> Any:
    """The run's record once it is no longer running, or None after ``timeout`` seconds."""
    from portl.state.ledger import RUNNING

    deadline = time.monotonic() + timeout
    while True:
        ledger.settle_stale()  # a process that died on the way is counted as stopped
        record = ledger.get(run_id)
        if record is not None and record.status != RUNNING:
            return record
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)
