"""``portl runs --watch``: the runs table, refreshed until the runs it lists as running have ended.

Rows per second come from the ledger's counts, which a run records with each batch it commits
(so the figure moves batch by batch, not row by row).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from portl.cli.render import status_words

COLOURS = {"succeeded": "green", "running": "yellow", "interrupted": "yellow"}


def runs_table(runs: list[Any], now: float) -> Table:
    """The runs, newest first, with the rows per second each ran (runs still running: so far)."""
    table = Table(box=None, pad_edge=False)
    for name in ("run", "job", "status", "started"):
        table.add_column(name, no_wrap=True)
    for name in ("read", "inserted", "updated", "skipped", "rejected", "rows/s", "duration"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in runs:
        c = r.counts
        took = (r.ended_at or now) - r.started_at
        rate = f"{c.get('read', 0) / took:,.0f}" if took > 0 else "—"
        colour = COLOURS.get(r.status, "red")
        table.add_row(r.id, escape(r.job), f"[{colour}]{escape(status_words(r.status))}[/]",
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at)),
                      *[f"{c.get(k, 0):,}" for k in ("read", "inserted", "updated", "skipped", "rejected")],
                      rate, f"{took:,.1f} s" + ("" if r.ended_at else " …"))
    return table


def watch(console: Console, fetch: Callable[[], list[Any]], where: str, every_s: float = 1.0) -> None:
    """Show ``fetch()``'s runs, refreshed every ``every_s`` seconds while any run that was
    running when the watch began is still running. Not on a terminal: the table, once."""
    from rich.live import Live

    from portl.state.ledger import RUNNING

    runs = fetch()
    if not runs:
        console.print(f"no runs recorded in {escape(where)}")
        return
    watched = {r.id for r in runs if r.status == RUNNING}
    if not console.is_terminal or not watched:
        console.print(runs_table(runs, time.time()))
        return
    try:
        with Live(runs_table(runs, time.time()), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(every_s)
                runs = fetch()
                live.update(runs_table(runs, time.time()), refresh=True)
                if not any(r.id in watched and r.status == RUNNING for r in runs):
                    break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the watch, not the runs: they go on in their own processes
