"""Incremental runs: each run reads only what is new since the job's last finished run.

A source with ``incremental:`` in its config is an
:class:`~portl.connectors.base.IncrementalSource`. The plan asks it for the *mark* this run will
leave (the cursor's maximum now, the files that exist now), given the mark of the last finished
run, and restricts it to the *window* between the two. Where the marks are kept:

- the window (previous mark, new mark, and the run's number among the job's incremental runs) is
  part of the state of every checkpoint the run commits, so it lands in the destination in the same
  transaction as the rows it describes: the partitions' first checkpoints (a run spread over
  processes), each batch's, and the ``~finished`` one;
- the next run's *previous* mark is the new mark of the job's last **finished** run, read from its
  ``~finished`` checkpoint (:func:`last_mark`): a run that stopped half-way moves nothing;
- a resumed run, or a partition loaded by another process, reads the window its run began with
  (:func:`continue_window`), not a newer one: the rows it goes on with are the rows it began with.

The destination must keep the checkpoints of finished runs (``capabilities.keeps_runs``): a file
destination, which forgets them once it is renamed into place, cannot hold a mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portl.connectors.base import IncrementalSource, RunCheckpoints, WriteMode
from portl.engine.unfinished import FINISHED, job_key
from portl.errors import ConfigError

STATE_KEY = "incremental"
"""The key of the window in a checkpoint's state."""


@dataclass
class IncrementalPlan:
    """A run's window: the mark of the job's last finished run (None on its first), the mark this
    run leaves, the run's number among the job's incremental runs, and the plan's lines."""

    previous: dict[str, Any] | None
    mark: dict[str, Any]
    number: int = 1
    lines: list[str] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return {"previous": self.previous, "mark": self.mark, "number": self.number}

    def to_json(self) -> dict[str, Any]:
        return {**self.to_state(), "lines": list(self.lines)}


def last_mark(runs: dict[str, RunCheckpoints]) -> tuple[dict[str, Any] | None, int]:
    """The mark the job's last finished incremental run left in the destination, and that run's
    number (0 and None when no run finished). Runs are ordered by their number, then their id."""
    best: tuple[tuple[int, str], dict[str, Any]] | None = None
    for run_id, committed in runs.items():
        finished = committed.get(FINISHED)
        window = finished[1].get(STATE_KEY) if finished is not None else None
        if not window or window.get("mark") is None:
            continue
        rank = (int(window.get("number") or 0), run_id)
        if best is None or rank > best[0]:
            best = (rank, window)
    if best is None:
        return None, 0
    return best[1]["mark"], best[0][0]


def plan_incremental(loaded: Any, source: Any, sink: Any, full_refresh: bool = False) -> IncrementalPlan | None:
    """The window of a job whose source reads incrementally (None for any other job), with the
    source restricted to it. Raises :class:`ConfigError` at the line of the setting at fault.

    ``full_refresh`` reads the whole source again, as the job's first run did (no previous mark),
    up to a new mark that the runs after it read on from. The rows loaded before are then read
    again: with ``conflict`` they are upserted; without it the destination must be empty."""
    incremental = getattr(loaded.job.source, STATE_KEY, None)
    if incremental is None:
        return None
    where = ("source", STATE_KEY)
    if not isinstance(source, IncrementalSource):
        raise ConfigError(loaded.located(where, f"{source.description} cannot read incrementally: remove "
                                                "'incremental', or read from a database table, a query or a file glob"))
    if loaded.job.write_mode == WriteMode.REPLACE:
        raise ConfigError(loaded.located(("mode",), "mode replace would keep only the rows of this run's window: "
                                                    "an incremental job appends or upserts (give 'conflict')"))
    if incremental.lookback is not None and loaded.job.conflict is None:  # also refused when the job is loaded
        raise ConfigError(loaded.located(where + ("lookback",), "a lookback reads rows again that the last run loaded; "
                                         "without a conflict key they would be loaded twice: add 'conflict: {key: "
                                         "[<the key column>]}', or remove the lookback"))
    if not sink.capabilities.keeps_runs:
        raise ConfigError(loaded.located(where, f"{sink.description} keeps no record of finished runs, so it cannot "
                                                "hold the mark an incremental run leaves; load into a database table"))
    previous, number = last_mark(sink.job_checkpoints(job_key(loaded.name, loaded.job.destination)))
    set_aside = None
    if full_refresh:
        _refresh_allowed(loaded, sink, previous)
        set_aside, previous = previous, None
    try:
        mark = source.incremental_mark(previous)
        source.restrict(previous, mark)
        lines = source.describe_incremental(previous, mark)
    except ConfigError as exc:
        key = getattr(exc, "key", None)
        raise ConfigError(loaded.located(where + ((key,) if key else ()), str(exc))) from None
    if set_aside is not None:
        lines.append(f"full refresh: every row again, setting aside the last finished run's mark ({_value(set_aside)})")
    return IncrementalPlan(previous, mark, number + 1, lines)


def _refresh_allowed(loaded: Any, sink: Any, previous: dict[str, Any] | None) -> None:
    """Refuse a full refresh that would load rows twice: one without a conflict key into a
    destination that already holds rows."""
    if loaded.job.conflict is not None or previous is None:
        return
    held = sink.count_rows()
    if held:
        raise ConfigError(f"--full-refresh reads every row of the source again, and {sink.description} already holds "
                          f"{held:,} rows: without a conflict key they would be loaded twice. Add 'conflict: {{key: "
                          "[<the key column>]}' so they are upserted, or empty the destination first")


def saved_window(committed: RunCheckpoints) -> dict[str, Any] | None:
    """The window a run's committed checkpoints hold (any of them: they all hold the same)."""
    for _, state in committed.values():
        if state.get(STATE_KEY):
            return state[STATE_KEY]
    return None


def continue_window(plan: Any, committed: RunCheckpoints, state_extra: dict[str, Any]) -> str | None:
    """Restrict the plan's source to the window of the run whose checkpoints are ``committed``, and
    put it in ``state_extra`` for the checkpoints still to come. Returns a note for the run report
    when that window is not the one the plan showed, else None.

    A run that began before its job was incremental read everything: it goes on as a first run
    would, up to the plan's mark."""
    fresh: IncrementalPlan | None = getattr(plan, "incremental", None)
    if fresh is None:
        return None
    window = saved_window(committed)
    if window is None:
        if not committed:
            return None
        window = {"previous": None, "mark": fresh.mark, "number": fresh.number}
    plan.source.restrict(window.get("previous"), window["mark"])
    state_extra[STATE_KEY] = window
    if window["mark"] != fresh.mark or window.get("previous") != fresh.previous:
        return ("the run continued reads the window it began with (up to its mark "
                f"{_value(window['mark'])}), not the newer one the plan shows ({_value(fresh.mark)}); "
                "the next run reads on from there")
    return None


def _value(mark: dict[str, Any]) -> str:
    if "value" in mark:
        return str(mark["value"])
    files = mark.get("files")
    return f"{len(files)} files" if isinstance(files, (dict, list)) else "a mark"
