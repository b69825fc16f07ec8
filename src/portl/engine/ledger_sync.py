"""The ledger's copy of each partition's checkpoint and of the run's counts, written on a thread of
its own.

The checkpoint that counts is the one committed in the destination with its batch; the ledger's
copy is what ``portl runs show`` prints while a run goes on. Writing it (an SQLite transaction,
an fsync or two) after every commit kept the destination waiting: on a busy disk that was 10 ms
a batch, half a second of a million-row load. So commits hand the latest state over and this
thread writes it, newest only: a state replaced before it was written is never written.
:meth:`LedgerSync.close` writes what is left, before the run's outcome is recorded.
"""

from __future__ import annotations

import threading
from typing import Any

from portl.state.ledger import Ledger


class LedgerSync:
    """Writes checkpoints and counts to the ledger behind the writers."""

    def __init__(self, ledger: Ledger, run_id: str):
        self._ledger, self._run_id = ledger, run_id
        self._checkpoints: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._counts: dict[str, Any] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="portl-ledger", daemon=True)
        self._thread.start()

    def checkpoint(self, partition: str, checkpoint: dict[str, Any], state: dict[str, Any],
                   counts: dict[str, Any] | None) -> None:
        """Record a committed checkpoint (and the run's counts after it), soon."""
        with self._cond:
            if self._error is not None:
                raise self._error
            self._checkpoints[partition] = (checkpoint, state)
            if counts is not None:
                self._counts = counts
            self._cond.notify()

    def close(self) -> None:
        """Write what is pending, stop the thread, and raise what went wrong writing, if anything."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._checkpoints and self._counts is None and not self._closed:
                    self._cond.wait()
                if not self._checkpoints and self._counts is None:
                    return
                checkpoints, self._checkpoints = self._checkpoints, {}
                counts, self._counts = self._counts, None
            try:
                self._ledger.record_progress(self._run_id, checkpoints, counts)
            except BaseException as exc:  # handed to the loading threads; the run fails with it
                with self._cond:
                    self._error = exc
                return
