"""Structured run events: ``{ts, level, run_id, batch, event, details}``.

The engine emits; front doors subscribe (the CLI renders a progress bar and a log, or prints one
JSON object per line with ``--log-format json``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One thing that happened during a run."""

    event: str
    level: str = "info"
    run_id: str | None = None
    batch: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts)) + f".{int(self.ts % 1 * 1000):03d}Z"
        return {"ts": stamp, "level": self.level, "run_id": self.run_id, "batch": self.batch,
                "event": self.event, "details": self.details}


Listener = Callable[[Event], None]


class Events:
    """Fan-out of events to listeners, safe to call from worker threads."""

    def __init__(self, listeners: list[Listener] | None = None):
        self._listeners = list(listeners or [])
        self._lock = threading.Lock()
        self.run_id: str | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def child(self) -> Events:
        """Events for a run inside this one (a table of a database copy): same listeners, own run id."""
        return Events(self._listeners)

    def emit(self, event: str, level: str = "info", batch: int | None = None, **details: Any) -> None:
        item = Event(event, level, self.run_id, batch, details)
        with self._lock:
            for listener in self._listeners:
                listener(item)
