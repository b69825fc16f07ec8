"""The reject file: every row that was not loaded because of bad data, with where and why.

One CSV file per job (``<job>.rejects.csv`` beside the job file unless ``rejects.path`` says
otherwise) with the columns ``source, line, record, column, value, error, original``. Rows are
appended before the batch they belong to commits, and the file's length is part of that batch's
checkpoint state: a resumed run first cuts the file back to the last committed length, so a row is
never listed twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from typing import Any

from portl.connectors.base import Reject
from portl.errors import PortlError

HEADER = ["source", "line", "record", "column", "value", "error", "original"]


class RejectFile:
    """Appends rejects to the reject file; created on the first reject."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._size = os.path.getsize(path) if os.path.exists(path) else 0
        self.count = 0

    @property
    def size(self) -> int:
        """Bytes committed so far (the value saved in checkpoints)."""
        return self._size

    def start_fresh(self) -> None:
        """A new run: the previous run's reject file is replaced."""
        with self._lock:
            if os.path.exists(self.path):
                os.remove(self.path)
            self._size = 0

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes: rejects of uncommitted batches disappear."""
        with self._lock:
            if os.path.exists(self.path):
                with open(self.path, "r+b") as handle:
                    handle.truncate(size)
            self._size = size if os.path.exists(self.path) else 0

    def append(self, rejects: list[Reject]) -> int:
        """Write rejects durably; return the file's new size."""
        if not rejects:
            return self._size
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        with self._lock:
            new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            if new:
                writer.writerow(HEADER)
            for r in rejects:
                writer.writerow([r.source, _blank(r.line), _blank(r.record), _blank(r.column), _text(r.value), r.error, _blank(r.original)])
            folder = os.path.dirname(self.path)
            try:
                if folder:
                    os.makedirs(folder, exist_ok=True)
                with open(self.path, "a", encoding="utf-8", newline="") as handle:
                    handle.write(buffer.getvalue())
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:  # the disk filled, or the folder changed since the job was checked
                raise PortlError(f"cannot write the reject file {self.path}: {exc.strerror or exc}; the batch was not "
                                 "committed. Free the space or fix the folder (or set rejects.path), then continue "
                                 "with --resume") from exc
            self._size = os.path.getsize(self.path)
            self.count += len(rejects)
            return self._size


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
