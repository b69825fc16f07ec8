"""The progress bar of ``portl check``: bytes (or rows) read, rows/s, ETA, on a terminal only."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console

from portl.engine.events import Event


class CheckProgress:
    """Listens to ``check_started`` / ``batch_checked`` events; shows nothing when not ``enabled``."""

    def __init__(self, console: Console, *, enabled: bool):
        self.console = console
        self.enabled = enabled
        self.bar: Any = None
        self.task: Any = None
        self.by_bytes = False
        self.rows = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CheckProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        d = event.details
        if event.event == "check_started":
            from rich.progress import (
                BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
            )

            self.by_bytes = bool(d.get("bytes"))
            self.bar = Progress(TextColumn("[bold]checking"), BarColumn(), TaskProgressColumn(),
                                TextColumn("{task.fields[rows]:>12,} rows"), TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.task = self.bar.add_task("check", total=d.get("bytes") if self.by_bytes else d.get("rows"), rows=0, rate=0.0)
            self.bar.start()
        elif event.event == "batch_checked" and self.bar is not None:
            with self._lock:
                self.rows += d.get("rows", 0)
                elapsed = self.bar.tasks[0].elapsed or 0.0
                step = d.get("bytes", 0) if self.by_bytes else d.get("rows", 0)
                self.bar.update(self.task, advance=step, rows=self.rows, rate=self.rows / elapsed if elapsed else 0.0)
