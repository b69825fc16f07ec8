"""Writing the batches of one partition two at a time, committing them in order.

A batch's write is mostly the destination's work (Postgres parsing and inserting the rows of a
COPY); the client then waits on a commit, a checkpoint and the next batch. When the destination
takes several writers (each batch in its own transaction on its own connection), the next batch
of the same partition can be written while the previous one finishes, so that a second server
process works alongside the first.

The ``slots`` shared by every partition bound how many batches have their rows being written at
once (the destination's busy streams). A batch gives its slot back once its rows are written,
when it waits for its turn (:meth:`Turn.wait`): its checkpoint and commit are round trips and a
disk flush, not the server's work, so another batch's rows go in meanwhile. With two partitions
and two slots, each partition writes its next batch while its previous one commits, and the
partition left once the other is done gets both slots.

The checkpoint committed with a batch says "the partition is loaded up to here", so batch *n*
must never commit before batch *n-1*: each write waits for its turn (:class:`Turn`) after its
rows are written and before its checkpoint and commit. When a batch fails, the batches after it
roll back instead of committing (:class:`Abandoned`), and the failure of the first one is raised,
exactly as if they had been written one after another.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """Raised in a batch waiting for its turn when an earlier batch of its partition failed:
    its transaction rolls back. Never reported: the earlier batch's failure is."""


class _Order:
    """Whose turn it is to commit, in one partition, and the first batch that failed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._failed_at: int | None = None

    def wait(self, number: int) -> None:
        with self._cond:
            while self._next < number and not self._failed_before(number):
                self._cond.wait()
            if self._failed_before(number):
                raise Abandoned()

    def _failed_before(self, number: int) -> bool:
        return self._failed_at is not None and self._failed_at < number

    @property
    def failed(self) -> bool:
        return self._failed_at is not None

    def abandon(self) -> None:
        """Every batch not yet committed rolls back (the caller was interrupted)."""
        with self._cond:
            self._failed_at = -1
            self._cond.notify_all()

    def finish(self, number: int, ok: bool) -> None:
        with self._cond:
            if ok:
                self._next = max(self._next, number + 1)
            else:
                self._failed_at = number if self._failed_at is None else min(self._failed_at, number)
            self._cond.notify_all()


class Turn:
    """One batch's place in its partition's commit order, and its writer slot."""

    def __init__(self, order: _Order, number: int, slot: threading.Semaphore | None = None):
        self._order, self.number = order, number
        self._slot = slot
        self._lock = threading.Lock()

    def written(self) -> None:
        """The batch's rows are written: its slot goes to another batch (once)."""
        with self._lock:
            slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()

    def wait(self) -> None:
        """Give the slot back, then block until every earlier batch has committed; raise
        :class:`Abandoned` if one failed."""
        self.written()
        self._order.wait(self.number)


_local = threading.local()


def current_turn() -> Turn | None:
    """The turn of the batch this thread is writing, when it writes in a pipeline."""
    return getattr(_local, "turn", None)


def write_in_order(items: Iterator[T], write: Callable[[T], None], depth: int, slots: threading.Semaphore,
                   stopped: Callable[[], bool]) -> T | None:
    """Call ``write(item)`` for each item on up to ``depth`` threads, each holding one of
    ``slots`` (shared by all partitions) while it writes its rows, up to its turn.
    Inside ``write``, :func:`current_turn` must be waited for before committing.

    Stops taking items once ``stopped()``; the writes under way still finish. Returns the last
    item written, every write having committed, or raises the first failure in item order.
    """
    order = _Order()
    pending: deque[Future] = deque()
    last: T | None = None

    def run(item: T, number: int) -> None:
        turn = _local.turn = Turn(order, number, slots)
        ok = False
        try:
            write(item)
            ok = True
        finally:
            _local.turn = None
            order.finish(number, ok)
            turn.written()  # a write that failed before its turn still holds its slot

    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="portl-writer") as pool:
        try:
            for number, item in enumerate(items):
                if stopped() or order.failed:
                    break
                while len(pending) >= depth:
                    pending.popleft().result()
                slots.acquire()
                try:
                    pending.append(pool.submit(run, item, number))
                except BaseException:
                    slots.release()
                    raise
                last = item
        except KeyboardInterrupt:
            # Aborted here (a second Ctrl-C): the writes under way roll back rather than commit. A
            # write's own failure is not this: the batches before it still commit.
            order.abandon()
            raise
        finally:
            # The writes under way finish (or roll back after a failure) before anything is raised.
            failure: BaseException | None = None
            while pending:
                try:
                    pending.popleft().result()
                except Abandoned:
                    pass  # an earlier batch failed: its error is the one to raise
                except BaseException as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
    return last
