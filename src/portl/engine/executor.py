"""Where the work of a run happens: the executor seam.

``LocalExecutor`` runs partition tasks on threads of this process (pyarrow parsing and the
database drivers release the GIL for the heavy parts), in the order given: with more tasks than
workers, each thread takes the next task when its own is done (a source lists its largest
partitions first, so that a long one does not start last and run alone).

The first failure stops the others: each task receives an ``abort`` event it checks between
batches. A failure that only spoils its own task (an exception whose ``confined`` attribute is
true, such as one damaged file of a glob) is the exception, when the caller allows it: the other
tasks run to their end, then the first such failure is raised, holding the others in its
``also`` list when it has one. The caller hears of each at once through ``on_confined``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def is_confined(exc: BaseException) -> bool:
    """Whether ``exc`` spoils only the task that raised it (see the module docstring)."""
    return isinstance(exc, Exception) and bool(getattr(exc, "confined", False))


class LocalExecutor:
    """Runs tasks on up to ``workers`` threads; returns results in task order.

    ``confine``: a confined failure lets the other tasks finish (off for work that is all or
    nothing, like a job in one transaction). ``on_confined(item, exc)`` is told of each."""

    def __init__(self, workers: int, confine: bool = False,
                 on_confined: Callable[[T, BaseException], None] | None = None):
        self.workers = max(1, workers)
        self.confine = confine
        self.on_confined = on_confined

    def map(self, fn: Callable[[T, threading.Event], R], items: Sequence[T], abort: threading.Event) -> list[R]:
        confined: list[BaseException] = []
        task = self._confining(fn, confined) if self.confine else fn
        if self.workers == 1 or len(items) <= 1:
            results = [task(item, abort) for item in items]
        else:
            results = self._on_threads(task, items, abort)
        if confined:
            first = confined[0]
            if hasattr(first, "also"):
                first.also = confined[1:]  # type: ignore[attr-defined]
            raise first
        return results

    def _confining(self, fn: Callable[[T, threading.Event], R], failures: list[BaseException]) -> Callable[[T, threading.Event], R | None]:
        """``fn``, with a confined failure kept aside (the task ends, the others go on)."""
        lock = threading.Lock()

        def task(item: T, abort: threading.Event) -> R | None:
            try:
                return fn(item, abort)
            except Exception as exc:
                if not is_confined(exc):
                    raise
                with lock:
                    failures.append(exc)
                if self.on_confined is not None:
                    self.on_confined(item, exc)
                return None

        return task

    def _on_threads(self, task: Callable[[T, threading.Event], R], items: Sequence[T], abort: threading.Event) -> list[R]:
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items)), thread_name_prefix="portl-worker") as pool:
            futures: list[Future] = [pool.submit(task, item, abort) for item in items]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C: workers finish the batch they are writing, then stop
                abort.set()
                raise
            if any(f.exception() for f in done if f.done()):
                abort.set()
            wait(futures)
            for future in futures:
                if future.exception():
                    raise future.exception()
            return [f.result() for f in futures]
