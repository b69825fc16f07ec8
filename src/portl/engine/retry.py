"""Retries with exponential backoff and jitter; only transient errors are retried."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

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
    delays = [] if policy.strategy == "fail" else backoff_delays(policy)
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except TransientError as exc:
            if attempt > len(delays):
                raise
            delay = delays[attempt - 1]
            if on_retry:
                on_retry(attempt, exc, delay)
            sleep(delay)
