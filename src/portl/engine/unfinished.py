"""A job's unfinished runs, as the destination itself records them.

The run ledger is the user's record of what ran, but it is a file on one machine, found through the
job file or ``PORTL_HOME``: a run started from another folder, with another ``--state-dir`` or on
another worker may not see it. The checkpoints committed with the batches are in the destination, so
the destination decides whether a job has a run that stopped half-way:

- every checkpoint's state names the job (:func:`job_key`: the job's name and its destination table
  or file) and how many partitions the run read;
- a run that succeeds commits one more checkpoint, :data:`FINISHED`, before the destination's
  ``finish`` (a table swap, a file rename);
- a run of the job with committed checkpoints and no :data:`FINISHED` one did not finish. A new run
  of an append job refuses to start while one is there; any other new run says what it will do and
  has the destination forget it (``Sink.forget_run``), since it will never be continued.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from portl.connectors.base import Checkpoint, RunCheckpoints

FINISHED = "~finished"
"""The partition name of the checkpoint a successful run commits last."""


def job_key(name: str, destination: Any) -> str:
    """What identifies a job in its destination: its name and the table or file it writes. The
    job file's path is left out on purpose: the same job run from another folder, or from a copy of
    the file on another machine, is the same job."""
    where = getattr(destination, "table", None) or os.path.basename(str(getattr(destination, "path", "") or ""))
    return f"{name} -> {where}" if where else name


@dataclass
class Unfinished:
    """A run of the job that committed batches in the destination and did not finish."""

    run_id: str
    committed: RunCheckpoints

    @property
    def rows(self) -> int:
        """Source rows committed, over all partitions."""
        return sum(int((state.get("counts") or {}).get("read", 0)) for _, state in self.committed.values())

    @property
    def partitions(self) -> int:
        """How many partitions the run read (at least those that committed something)."""
        declared = max((int(state.get("partitions") or 0) for _, state in self.committed.values()), default=0)
        return max(declared, len(self.committed))

    @property
    def rows_before(self) -> int | None:
        for _, state in self.committed.values():
            if "rows_before" in state:
                return state["rows_before"]
        return None

    def starts(self, fresh: list[Checkpoint]) -> list[Checkpoint]:
        """Where each partition goes on: its committed checkpoint, or its start in ``fresh`` (the
        source's partitions, cut again into :attr:`partitions`) when it committed nothing."""
        starts = [self.committed[s.partition][0] if s.partition in self.committed else s for s in fresh]
        named = {s.partition for s in starts}
        starts += [cp for partition, (cp, _) in sorted(self.committed.items()) if partition not in named]
        return starts


def unfinished_runs(sink: Any, key: str, ledger_run: str | None = None) -> list[Unfinished]:
    """The job's unfinished runs in the destination, oldest first. ``ledger_run``, the ledger's
    latest unfinished run, is looked up by id as well: checkpoints committed before they named
    their job are found that way."""
    if not sink.capabilities.resumable:
        return []
    runs = dict(sink.job_checkpoints(key))
    if ledger_run is not None and ledger_run not in runs:
        committed = sink.load_checkpoints(ledger_run)
        if committed:
            runs[ledger_run] = committed
    return [Unfinished(run_id, committed) for run_id, committed in sorted(runs.items())
            if committed and FINISHED not in committed]
