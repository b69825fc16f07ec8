"""Reading ahead: the next batches are read and mapped on a thread of their own while the current
one is written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def prefetch(items: Iterator[T], abort: threading.Event, depth: int = 1) -> Iterator[T]:
    """Produce items on a reader thread, ``depth`` ahead of the consumer, so that reading and
    mapping the next batch overlaps writing this one. Memory stays bounded by ``depth``."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                box_put(item)
                if stop.is_set() or abort.is_set():
                    break
            box_put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box_put(exc)
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    def box_put(item: Any) -> None:
        """Put, unless the consumer has gone away (it sets ``stop``)."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="portl-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)
