"""Stopping a run from outside: Ctrl-C (SIGINT) and SIGTERM, the signal Docker, systemd and Celery
send before they kill a process.

The first signal asks the run to stop after the batch it is writing: that batch commits with its
checkpoint, the run ends as ``interrupted`` and ``--resume`` continues it. The exit code is 130 for
Ctrl-C and 143 for SIGTERM (128 + the signal's number, as shells report it).

A second signal aborts at once: the run's ``halt`` event tells every writer to roll back the batch
it holds instead of committing it, and the main thread is interrupted where it is. What is
committed keeps its checkpoint, so ``--resume`` still loads every row exactly once; the message
printed on the way out says so, with the committed counts.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from portl.errors import EXIT_INTERRUPTED

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def exit_code(signum: int) -> int:
    return 128 + signum


class StopOnSignals:
    """Within ``with``: the first SIGINT or SIGTERM sets ``stop``; a second one sets ``halt`` (when
    given) and raises :class:`KeyboardInterrupt` in the main thread."""

    def __init__(self, stop: threading.Event, console: Console, unit: str = "batch", halt: threading.Event | None = None,
                 resume_hint: str | None = None, aborted: str | None = None):
        self.stop, self.console, self.unit, self.halt = stop, console, unit, halt
        self.resume_hint = resume_hint
        self.aborted = aborted or f"the {unit} in flight was rolled back"
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            for number in SIGNALS:  # a third signal is the default one: nothing is left to tidy
                signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
            if self.halt is not None:
                self.halt.set()
            self.received = signum
            raise KeyboardInterrupt
        self.received = signum
        self.stop.set()
        again = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        self.console.print(f"[yellow]{NAMES.get(signum, 'signal')} received: stopping after the current {self.unit}... "
                           f"({again} again to abort it, rolling it back)[/]")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        if exc is None or self.received is None:
            return False
        code = exit_code(self.received)
        if isinstance(exc, KeyboardInterrupt):
            self._say_aborted(exc)
            import typer

            raise typer.Exit(code) from None
        if getattr(exc, "exit_code", None) == EXIT_INTERRUPTED:  # stopped after the current batch
            exc.exit_code = code  # type: ignore[union-attr]
        return False

    def _say_aborted(self, exc: BaseException) -> None:
        report = getattr(exc, "report", None)
        kept = ""
        if report is not None:
            batches = report.counts.batches
            kept = (f"; {batches:,} committed {'batch' if batches == 1 else 'batches'} ({report.counts.read:,} source "
                    f"{'row' if report.counts.read == 1 else 'rows'}) are kept, each with its checkpoint")
        hint = f". Continue with: {self.resume_hint}" if self.resume_hint else ""
        self.console.quiet = False
        self.console.print(f"[yellow]aborted: {escape(self.aborted)}{escape(kept)}{escape(hint)}[/]",
                           soft_wrap=True)
