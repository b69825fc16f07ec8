"""``portl logs RUN``: the log of a background run, as readable lines or as its JSON events.

The log (see :mod:`portl.cli.background`) holds the run's JSON events, one per line, the final
summary (``{"event": "report"}`` or ``{"event": "error"}``) and the few messages the run printed
for people (``Ctrl-C received: ...``). Text shows each event as one line: time, level, event and
what it counted; ``--format json`` passes the events through and wraps the messages as
``{"event": "message", "text": ...}``, so that every line is JSON.
"""

from __future__ import annotations

import calendar
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from portl.cli.background import RUN_EXIT_CODES, log_files
from portl.errors import EXIT_FAILURE, PortlError

COUNTS = ("rows", "inserted", "updated", "skipped", "rejected")


def parse(line: str) -> dict[str, Any]:
    """One log line as an event; a line that is not a JSON event becomes a ``message``."""
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if isinstance(event, dict) and "event" in event:
        return event
    return {"event": "message", "level": "info", "text": line}


def text_line(event: dict[str, Any]) -> str:
    """An event for people: ``2026-12-08 01:02:03  info   batch_committed  batch 3: rows 100, inserted 100``."""
    kind = event["event"]
    if kind == "message":
        return event["text"]
    if kind == "report":
        counts = event.get("counts") or {}
        told = ", ".join(f"{k} {v:,}" for k, v in counts.items() if isinstance(v, int) and k != "bytes")
        return f"{'':19}  {'':7}  summary  run {event.get('run_id')} {event.get('status')}: {told}"
    if kind == "error":
        error = event.get("error") or {}
        lines = [f"{'':19}  {'error':7}  error  {error.get('message')} (exit code {error.get('exit_code')})"]
        lines += [f"{'':19}  {'':7}    {_where(p)}{p.get('message')}" for p in error.get("problems") or []]
        return "\n".join(lines)
    when = _local_time(event.get("ts"))
    details = dict(event.get("details") or {})
    details.pop("bytes", None)  # what the progress bar advances by; rows say it for people
    if details.get("partition") == "0":
        details.pop("partition")  # the only partition of a run that has one
    parts = [f"batch {event['batch']}"] if event.get("batch") is not None else []
    parts += [f"{k} {details.pop(k):,}" for k in COUNTS if isinstance(details.get(k), int)]
    totals = details.pop("totals", None) or details.pop("counts", None)
    parts += [f"{k} {_value(v)}" for k, v in details.items() if v not in (None, "", [], {})]
    line = f"{when:19}  {event.get('level', 'info'):7}  {kind}  " + ", ".join(parts)
    if isinstance(totals, dict):
        told = ", ".join(f"{k} {v:,}" for k, v in totals.items() if isinstance(v, int) and k != "bytes")
        line += f" (run so far: {told})" if kind == "batch_committed" else f"; counts: {told}"
    return line


def _where(problem: dict[str, Any]) -> str:
    where = ":".join(str(problem[k]) for k in ("file", "line", "column") if problem.get(k) is not None)
    return f"{where}: " if where else ""


def _value(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def _local_time(stamp: Any) -> str:
    """The event's UTC time stamp (``2026-12-08T01:02:03.123Z``) in local time, to the second."""
    if not isinstance(stamp, str):
        return ""
    try:
        seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return stamp
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


class Renderer:
    """Renders a log's events in order. In text, the sentence a run printed for people after its
    error document (``error: ...``) is left out: the document's line already says it."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._said: str | None = None

    def __call__(self, event: dict[str, Any]) -> str | None:
        if self.as_json:
            return json.dumps(event, default=str, ensure_ascii=False)
        said, self._said = self._said, None
        if event["event"] == "error":
            self._said = f"error: {(event.get('error') or {}).get('message')}"
        elif event["event"] == "message" and said is not None and event["text"] == said:
            return None
        return text_line(event)


def read_lines(paths: list[str]) -> Iterator[str]:
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    yield line.rstrip("\n")


def find_logs(ledger: Any, run_id: str) -> tuple[Any, list[str]]:
    """The run (by id or prefix) and its log files; a clear error for a run without one."""
    record = ledger.get(run_id)
    if record is None:
        raise PortlError(f"no run {run_id!r} in {ledger.path}; `portl runs` lists them")
    paths = log_files(ledger.state_dir, record.id)
    if not paths:
        raise PortlError(f"run {record.id} has no log: it ran in the foreground, where its output went to the "
                         f"terminal (only `portl run --detach` keeps a log); `portl runs show {record.id}` shows its outcome")
    return record, paths


def show(paths: list[str], as_json: bool, page: bool) -> None:
    """Print the whole log; through ``$PAGER`` (default ``less -R``) when ``page``."""
    render = Renderer(as_json)
    text = "".join(f"{shown}\n" for line in read_lines(paths) if (shown := render(parse(line))) is not None)
    pager = os.environ.get("PAGER") or ("less -R" if shutil.which("less") else "")
    if not page or not pager.strip():
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        viewer = subprocess.Popen(shlex.split(pager), stdin=subprocess.PIPE)
    except OSError as exc:
        raise PortlError(f"cannot start the pager {pager!r} ($PAGER): {exc}; set PAGER to a program that reads "
                         "standard input, or pipe the output (portl logs RUN | cat)") from exc
    try:
        assert viewer.stdin is not None
        viewer.stdin.write(text.encode("utf-8", "replace"))
        viewer.stdin.close()
    except BrokenPipeError:
        pass  # the pager was quit before reading all
    viewer.wait()


def follow(ledger: Any, record: Any, paths: list[str], as_json: bool, poll_s: float = 0.2) -> int:
    """Print the log, then its new lines as they come, until the run ends; the run's exit code."""
    from portl.state.ledger import RUNNING, process_alive

    render = Renderer(as_json)
    for line in read_lines(paths[:-1]):
        _emit(render(parse(line)))
    last: dict[str, Any] | None = None
    current = record
    with open(paths[-1], encoding="utf-8", errors="replace") as handle:
        pending, ended_at = "", None
        while True:
            pending += handle.read()
            *complete, pending = pending.split("\n")
            for line in complete:
                if line.strip():
                    event = parse(line)
                    if event["event"] in ("report", "error"):
                        last = event
                    _emit(render(event))
            if ended_at is not None and (time.monotonic() - ended_at > 5 or not process_alive(current.meta.get("process") or {})):
                # The run is recorded as ended and its process is gone: its last words are written.
                pending += handle.read()
                for line in pending.split("\n"):
                    if line.strip():
                        event = parse(line)
                        last = event if event["event"] in ("report", "error") else last
                        _emit(render(event))
                return _exit_code(current, last)
            if ended_at is None:
                ledger.settle_stale()
                current = ledger.get(record.id)
                if current is None or current.status != RUNNING:
                    ended_at = time.monotonic()
                    continue  # read what was written meanwhile before deciding
            time.sleep(poll_s)


def _emit(text: str | None) -> None:
    if text is None:
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _exit_code(record: Any, last: dict[str, Any] | None) -> int:
    """0 for a run that succeeded; else the exit code the run's process ended with, as its log
    says, or the one its status stands for."""
    if last is not None and last["event"] == "error":
        code = (last.get("error") or {}).get("exit_code")
        if isinstance(code, int):
            return code
    status = getattr(record, "status", None)
    return RUN_EXIT_CODES.get(status, EXIT_FAILURE)
