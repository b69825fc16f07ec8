"""Where the command line writes, and how: people read text on the terminal (results on stdout,
progress, warnings and errors on stderr); programs ask for ``--format json`` and get JSON on
stdout, errors included. ``--quiet`` leaves only errors on stderr; ``--verbose`` adds detail."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from portl.errors import PortlError

# Piped output is read in files and logs, not on an 80-column terminal: give tables room.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


class Format(str, enum.Enum):
    """What a command prints: text for people, or JSON for programs."""

    text = "text"
    json = "json"


class Settings:
    """What the command being run asked for, read by the error handler and the renderers."""

    debug = False
    json = False
    quiet = False
    verbose = False


settings = Settings()


def configure(*, debug: bool = False, format: Format | str = Format.text, quiet: bool = False, verbose: bool = False) -> None:
    """Record the command's output options; ``--quiet`` and ``--verbose`` given before the command
    (``portl -q run ...``) stay on."""
    settings.debug = settings.debug or debug
    settings.json = settings.json or Format(format) is Format.json
    settings.quiet = settings.quiet or quiet
    settings.verbose = settings.verbose or verbose
    if settings.quiet and settings.verbose:
        import typer

        raise typer.BadParameter("--quiet and --verbose exclude each other", param_hint="--verbose")
    err.quiet = settings.quiet


def asks_for_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON, read before it is parsed: a usage error (an unknown
    option, a bad value) is then reported as JSON too."""
    pairs = zip(args, args[1:])
    return any(a in ("--format=json", "--log-format=json") for a in args) or any(
        a in ("--format", "--log-format") and b == "json" for a, b in pairs)


def print_json(data: Any, *, lines: bool = False) -> None:
    """``data`` as JSON on stdout: indented, or on one line (``lines``: one of a stream of JSON lines)."""
    text = json.dumps(data, default=str, ensure_ascii=False, indent=None if lines else 2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error_document(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """An error as ``--format json`` prints it: ``{"event": "error", "error": {type, message, exit_code,
    problems, report}}`` (an event, so that it also ends the JSON lines of ``run --log-format json``)."""
    problems = getattr(exc, "problems", None) or []
    message = str(exc).split("\n", 1)[0].rstrip(":") if problems else str(exc)
    error: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": message,
        "exit_code": exit_code,
        "problems": [{"file": p.file, "line": p.line, "column": p.column, "message": p.message} for p in problems],
    }
    report = getattr(exc, "report", None)
    if report is not None and hasattr(report, "to_json"):
        error["report"] = report.to_json()
    return {"event": "error", "error": error}


def show_error(exc: BaseException, exit_code: int, *, label: str = "error") -> None:
    """An error: always a sentence on stderr (even with --quiet), and with --format json also the
    JSON document on stdout, for the program reading it."""
    err.quiet = False
    if settings.json:
        print_json(error_document(exc, exit_code), lines=True)
    text = str(exc) if isinstance(exc, PortlError) else f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
    err.print(f"[bold red]{label}:[/] {escape(text)}", soft_wrap=True)
