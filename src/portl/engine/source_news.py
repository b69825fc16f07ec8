"""What a source has to say once its checkpoints commit, emitted as run events.

A source may follow a run's commits: ``source.loading(starts)``, told the partitions the run
reads, returns a function the engine calls with each checkpoint once it has committed; the
``[(event, details), ...]`` that returns is emitted. A glob of files says ``file_finished`` this
way (:mod:`portl.connectors.fileset_progress`): the engine never learns what a file is.

Every committed checkpoint already goes to the ledger's copy (:class:`~portl.engine.ledger_sync.LedgerSync`)
from every place that commits one (a batch, a batch found landed after a lost answer, a finished
partition), after the commit, so :class:`SourceNews` stands in front of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portl.connectors.base import Checkpoint
from portl.engine.events import Events
from portl.engine.ledger_sync import LedgerSync


class SourceNews:
    """A :class:`LedgerSync` that also hands each committed checkpoint to the source's follower."""

    def __init__(self, ledger_sync: LedgerSync, follower: Callable[[Checkpoint], list[tuple[str, dict[str, Any]]]],
                 events: Events):
        self._ledger_sync, self._follower, self._events = ledger_sync, follower, events
        self._broken = False

    def checkpoint(self, partition: str, checkpoint: dict[str, Any], state: dict[str, Any],
                   counts: dict[str, Any] | None) -> None:
        """Record the committed checkpoint in the ledger, then emit the source's news of it."""
        self._ledger_sync.checkpoint(partition, checkpoint, state, counts)
        if self._broken:
            return
        try:
            news = self._follower(Checkpoint.from_json(checkpoint))
        except Exception as exc:  # news are a courtesy: the batch is committed, the load goes on without them
            self._broken = True
            self._events.emit("warning", level="warning", message=f"the source stopped telling its progress (the load goes on): {exc}")
            return
        for event, details in news:
            self._events.emit(event, partition=partition, **details)

    def close(self) -> None:
        self._ledger_sync.close()
