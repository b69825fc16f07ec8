"""Which files of a glob are loaded: the news behind a line per file as a run goes.

The engine does not know what a file is; it knows checkpoints. A glob's checkpoint says which
file its partition stands in (``file``) and which file the partition ends before (``end_file``),
so a committed checkpoint standing in file 5 tells that the partition has finished files before
5, and a finished partition (``done``) that it has finished them all. A file is loaded when every
partition this run reads of it (one, or one per byte range) has finished it: then, and only then,
all the rows read of it are committed, and :class:`FileProgress` says ``file_finished``.

Rows and seconds count this process's work: a file a resumed run finishes counts the rows it
loaded, and ``earlier_rows`` those a run before had committed, when the partition reads only
that file (a partition walking several files, ``workers: 1``, cannot tell its files' rows apart).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from portl.connectors.base import Checkpoint

News = list[tuple[str, dict[str, Any]]]
"""Events to emit: (event name, details)."""


class FileProgress:
    """Rows read and time spent per file; turns committed checkpoints into ``file_finished`` news."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._lock = threading.Lock()
        self._rows: dict[int, int] = {}
        self._earlier: dict[int, int] = {}
        self._began: dict[int, float] = {}
        self._reading: set[tuple[str, int]] = set()  # (partition, file) read so far
        self._waiting: dict[int, set[str]] = {}  # file -> partitions of this run still to finish it
        self._next: dict[str, list[int]] = {}  # partition -> [first file it has not finished, end]

    def expect(self, starts: list[Checkpoint], names: list[str]) -> None:
        """The partitions a run reads (finished ones are left out) of the files ``names``: a file
        is loaded once each of those reading it has finished it. What was read before (a plan's
        preview) is forgotten."""
        with self._lock:
            self._names = list(names)
            self._rows.clear()
            self._earlier.clear()
            self._began.clear()
            self._reading.clear()
            for start in starts:
                if start.done:
                    continue
                first, end = int(start.position["file"]), int(start.position["end_file"])
                self._next[start.partition] = [first, end]
                for index in range(first, end):
                    self._waiting.setdefault(index, set()).add(start.partition)

    def began(self, partition: str, index: int, earlier_rows: int) -> None:
        """``partition`` starts reading file ``index``, after ``earlier_rows`` of it committed
        before. A read opened again after a dropped connection starts from a checkpoint of this
        run: only a partition's first start counts."""
        with self._lock:
            if (partition, index) in self._reading:
                return
            self._reading.add((partition, index))
            self._began.setdefault(index, time.monotonic())
            self._earlier[index] = self._earlier.get(index, 0) + earlier_rows

    def read(self, index: int, rows: int) -> None:
        """``rows`` more source rows of file ``index`` handed to the engine."""
        with self._lock:
            self._rows[index] = self._rows.get(index, 0) + rows

    def committed(self, checkpoint: Checkpoint) -> News:
        """The files ``checkpoint``, just committed, finishes (none for a partition not expected)."""
        news: News = []
        with self._lock:
            place = self._next.get(checkpoint.partition)
            if place is None:
                return news
            upto = place[1] if checkpoint.done else min(int(checkpoint.position.get("file", place[0])), place[1])
            for index in range(place[0], upto):
                waiting = self._waiting.get(index, set())
                waiting.discard(checkpoint.partition)
                if not waiting:
                    news.append(("file_finished", self._finished(index)))
            place[0] = max(place[0], upto)
        return news

    def _finished(self, index: int) -> dict[str, Any]:
        began = self._began.get(index)
        details = {"file": self._names[index], "rows": self._rows.get(index, 0),
                   "seconds": round(time.monotonic() - began, 3) if began is not None else 0.0}
        if self._earlier.get(index):
            details["earlier_rows"] = self._earlier[index]
        return details
