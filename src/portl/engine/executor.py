"""Where the work of a run happens: the executor seam.

``LocalExecutor`` runs partition tasks on threads of this process (pyarrow parsing and the
database drivers release the GIL for the heavy parts). The first failure stops the others: each
task receives an ``abort`` event it checks between batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Runs tasks on up to ``workers`` threads; returns results in task order."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T, threading.Event], R], items: Sequence[T], abort: threading.Event) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            return [fn(item, abort) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items)), thread_name_prefix="portl-worker") as pool:
            futures = [pool.submit(fn, item, abort) for item in items]
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
