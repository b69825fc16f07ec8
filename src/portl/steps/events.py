"""Structured events of a flow run: ``{ts, level, run_id, step_id, idx, event, details}``.

``idx`` is the item's index in its batch (a list of indexes inside nested batches), or None
outside a batch. Listeners get every event at or above the chosen level; ``debug`` adds one
event per step and item, which a run over many items does not pay for unless asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


@dataclass(frozen=True)
class StepEvent:
    """One thing that happened while a flow ran."""

    event: str
    level: str = "info"
    run_id: str | None = None
    step_id: str | None = None
    idx: int | list[int] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts)) + f".{int(self.ts % 1 * 1000):03d}Z"
        return {"ts": stamp, "level": self.level, "run_id": self.run_id, "step_id": self.step_id, "idx": self.idx,
                "event": self.event, "details": self.details}


Listener = Callable[[StepEvent], None]


def idx_value(path: tuple[int, ...]) -> int | list[int] | None:
    """How an item's position is reported: None, its index, or the indexes of nested batches."""
    if not path:
        return None
    return path[0] if len(path) == 1 else list(path)


class FlowEvents:
    """Fan-out of events to listeners at or above ``level``."""

    def __init__(self, listeners: list[Listener] | None = None, level: str = "info"):
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
        self._listeners = list(listeners or [])
        self._threshold = LEVELS[level]
        self._lock = threading.Lock()
        self.run_id: str | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def wants(self, level: str) -> bool:
        """Whether an event of ``level`` reaches anyone (check before building costly details)."""
        return bool(self._listeners) and LEVELS[level] >= self._threshold

    def emit(self, event: str, level: str = "info", step_id: str | None = None, idx: tuple[int, ...] = (), **details: Any) -> None:
        if not self.wants(level):
            return
        item = StepEvent(event, level, self.run_id, step_id, idx_value(idx), details)
        with self._lock:
            for listener in self._listeners:
                listener(item)
