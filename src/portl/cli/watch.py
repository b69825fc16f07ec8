"""Watching a run: a progress bar on a terminal, or one JSON event per line."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from portl.engine.events import Event
from portl.engine.plan import Plan
from portl.plural import counted

if TYPE_CHECKING:
    from rich.progress import Progress


class RunWatcher:
    """Listens to run events. Progress advances by bytes when the source knows its size in bytes
    (files; for a glob, the sum of the files' sizes), by rows when it knows its row count, and
    counts rows otherwise. ``verbose`` prints a line per committed batch. A glob's files each get a
    line when loaded (``file_finished``)."""

    def __init__(self, console: Console, plan: Plan, *, json_events: bool, progress: bool, verbose: bool = False):
        self.console = console
        self.json_events = json_events
        self.verbose = verbose
        est = plan.estimate
        self.by_bytes = bool(est.bytes) and not est.exact
        self.total = est.bytes if self.by_bytes else est.rows
        self.bar: Progress | None = None
        if progress and not json_events:
            from rich.progress import (  # only a terminal shows the bar
                BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[rows]:>12,} rows"), TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=console, transient=True,
            )
            self.task = self.bar.add_task(plan.name, total=self.total, rows=0, rate=0.0)
        self._rows = 0

    def __enter__(self) -> RunWatcher:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None

    def __call__(self, event: Event) -> None:
        if self.json_events:
            sys.stdout.write(json.dumps(event.to_json(), default=str) + "\n")
            sys.stdout.flush()
            return
        if event.event == "batch_committed":
            self._rows += event.details.get("rows", 0)
            if self.bar:
                task = self.bar.tasks[0]
                elapsed = task.elapsed or 0.0
                rate = self._rows / elapsed if elapsed > 0 else 0.0
                step = event.details.get("bytes", 0) if self.by_bytes else event.details.get("rows", 0)
                self.bar.update(self.task, advance=step, rows=self._rows, rate=rate)
            if self.verbose:
                d = event.details
                self.console.print(f"batch {event.batch} committed: {d.get('rows', 0):,} rows read, {d.get('inserted', 0):,} inserted, "
                                   f"{d.get('updated', 0):,} updated, {d.get('skipped', 0):,} skipped, {d.get('rejected', 0):,} rejected "
                                   f"({self._rows:,} so far)")
        elif event.event == "file_finished":  # a file of a glob is loaded (connectors.fileset_progress)
            d = event.details
            earlier = f" (and {d['earlier_rows']:,} before the resume)" if d.get("earlier_rows") else ""
            self.console.print(f"loaded {escape(str(d.get('file')))}: {d.get('rows', 0):,} rows in "
                               f"{d.get('seconds', 0):,.1f} s{earlier}")
        elif event.event == "partition_failed":  # the other partitions load on; the run fails at the end
            self.console.print(f"[red]failed[/] (the other partitions load on): {escape(str(event.details.get('error')))}")
        elif event.event == "warning":
            if self.verbose:  # the summary lists every warning at the end
                self.console.print(f"[yellow]warning:[/] {escape(str(event.details.get('message', '')))}")
        elif event.level in ("warning", "error") and event.event != "run_finished":
            details = ", ".join(f"{k}={v}" for k, v in event.details.items() if k != "totals")
            where = f" (batch {event.batch})" if event.batch is not None else ""
            self.console.print(f"[yellow]{event.event}[/]{where}: {escape(details)}")
        elif event.event == "resuming":
            if self.bar and self.by_bytes:  # the bar starts where the run being resumed stopped
                self.bar.reset(self.task, completed=event.details.get("committed_bytes", 0))
            rows = counted(event.details["committed_rows"], "source row")
            self.console.print(f"resuming run {event.details['run_id']}: {rows} already committed")
