"""Retries with exponential backoff and jitter; only transient errors are retried.

Two things are retried: writing a batch (:func:`call_with_retries`, the same batch again in a
new transaction) and reading a source (:func:`resumable_read`, the read opened again from the
checkpoint of the last batch it produced).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from portl.connectors.base import Checkpoint, Chunk
from portl.errors import TransientError
from portl.spec.models import Retry

T = TypeVar("T")


def backoff_delays(policy: Retry, rng: random.Random | None = None) -> list[float]:
    """Seconds to wait before attempts 2..N: doubling from backoff_ms, capped, with full jitter
    on the upper half so that parallel workers do not retry in step."""
    rng = rng or random.Random()
    delays = []
    for attempt in range(1, policy.attempts):
        cap = min(policy.max_backoff_ms, policy.backoff_ms * 2 ** (attempt - 1)) / 1000
        delays.append(cap / 2 + rng.uniform(0, cap / 2))
    return delays


def call_with_retries(fn: Callable[[], T], policy: Retry, on_retry: Callable[[int, Exception, float], None] | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn``; on a TransientError wait and try again, up to ``policy.attempts`` in all.
    With strategy ``fail`` nothing is retried."""
    delays: list[float] | None = None  # drawn at the first failure: most calls never need them
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except TransientError as exc:
            if delays is None:
                delays = [] if policy.strategy == "fail" else backoff_delays(policy)
            if attempt > len(delays):
                raise
            delay = delays[attempt - 1]
            if on_retry:
                on_retry(attempt, exc, delay)
            sleep(delay)


ReadRetry = Callable[[int, Exception, float, Checkpoint], None]


def resumable_read(open_read: Callable[[Checkpoint], Iterator[Chunk]], start: Checkpoint, policy: Retry,
                   on_retry: ReadRetry | None = None, sleep: Callable[[float], None] = time.sleep) -> Iterator[Chunk]:
    """The chunks of ``open_read(start)``. When the read fails with a TransientError (the
    source's connection dropped), wait and call ``open_read`` again with the checkpoint of the
    last chunk produced: every chunk already handed on is behind that checkpoint, so no row
    comes twice and none is skipped.

    ``policy.attempts`` bounds the failed reads in a row; a read that produces a chunk before
    failing starts the count again, so a long read survives a drop now and then. With strategy
    ``fail`` nothing is retried. ``on_retry(attempt, error, wait_s, resume_at)`` is told first.
    """
    delays = [] if policy.strategy == "fail" else backoff_delays(policy)
    at, failures = start, 0
    while True:
        error: TransientError | None = None
        try:
            reader = open_read(at)
        except TransientError as exc:  # a connector that connects before its first chunk
            reader, error = iter(()), exc
        try:
            # Only next() is guarded: an error raised while the consumer holds a chunk is the
            # consumer's, and is never retried as a read.
            while error is None:
                try:
                    chunk = next(reader)
                except StopIteration:
                    return
                except TransientError as exc:
                    error = exc
                    continue
                at, failures = chunk.checkpoint, 0
                yield chunk
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()  # the broken read's connection goes before a new one opens
        if failures >= len(delays):
            raise error
        delay = delays[failures]
        failures += 1
        if on_retry:
            on_retry(failures, error, delay, at)
        sleep(delay)
