"""How many API requests a tenant may make: its ``requests_per_minute``, counted over a sliding
minute.

The counter is a sliding-window estimate: requests are counted per calendar minute, and the
count of the last 60 seconds is taken as this minute's count plus the previous minute's,
weighted by how much of it is still inside the window. That takes two numbers per tenant rather
than one timestamp per request, and a burst straddling two minutes is still seen as one.

Two places keep the counts, behind one small seam (:class:`RateLimiter`):

- :class:`MemoryRateLimiter`: in this process, for a single ``portl serve``;
- :class:`RedisRateLimiter`: in Redis, when ``PORTL_BROKER`` is a ``redis://`` URL, so that every
  API process of a deployment shares them. Each request is one round trip (INCR and EXPIRE of
  this minute's key, GET of the previous minute's), keys named ``portl:rate:<tenant id>:<minute>``.

A refused request is not counted (the Redis counter takes it back), so a client that waits for
``Retry-After`` gets through. :func:`limiter_from_environment` picks one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("portl.service")

WINDOW_S = 60
KEY_PREFIX = "portl:rate:"
REDIS_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on; when it may not, how many whole seconds until one would."""

    allowed: bool
    retry_after_s: int = 0


class RateLimiter(Protocol):
    """Counts a tenant's requests and says whether one more is within its limit."""

    kind: str

    def hit(self, tenant_id: int, per_minute: int) -> Verdict:
        """Count one request of the tenant, unless it would go over ``per_minute``."""

    def close(self) -> None:
        """Let go of any connection."""


def estimate(previous: int, current: int, elapsed_s: float) -> float:
    """The requests of the last minute, ``elapsed_s`` into the current one."""
    return previous * (WINDOW_S - elapsed_s) / WINDOW_S + current


def verdict(previous: int, current: int, elapsed_s: float, per_minute: int) -> Verdict:
    """The verdict on one more request, given the counts before it."""
    if estimate(previous, current, elapsed_s) + 1 <= per_minute:
        return Verdict(True)
    return Verdict(False, max(1, math.ceil(_wait(previous, current, elapsed_s, per_minute) - 1e-9)))


def _wait(previous: int, current: int, elapsed_s: float, per_minute: int) -> float:
    """Seconds until one more request fits: later in this minute, as the previous minute's
    requests slide out of the window; else in the next minute, as this one's do."""
    if current + 1 <= per_minute and previous > 0:
        # previous * (WINDOW - elapsed - t) / WINDOW + current + 1 <= per_minute
        return WINDOW_S - elapsed_s - WINDOW_S * (per_minute - current - 1) / previous
    into_next = WINDOW_S * (1 - (per_minute - 1) / current) if current else 0.0
    return WINDOW_S - elapsed_s + max(0.0, into_next)


class MemoryRateLimiter:
    """The counts in this process: right for one API process, not shared with others."""

    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, int], int] = {}

    def hit(self, tenant_id: int, per_minute: int) -> Verdict:
        now = self._clock()
        minute, elapsed = divmod(now, WINDOW_S)
        minute = int(minute)
        with self._lock:
            current = self._counts.get((tenant_id, minute), 0)
            previous = self._counts.get((tenant_id, minute - 1), 0)
            answer = verdict(previous, current, elapsed, per_minute)
            if answer.allowed:
                if current == 0:
                    self._forget_before(minute - 1)
                self._counts[(tenant_id, minute)] = current + 1
            return answer

    def _forget_before(self, minute: int) -> None:
        for stale in [k for k in self._counts if k[1] < minute]:
            del self._counts[stale]

    def close(self) -> None:
        pass


class RedisRateLimiter:
    """The counts in Redis, shared by every API process using the same Redis database.

    When Redis cannot be reached the request is let through (and the failure logged once until
    Redis answers again): an outage of the counter should not stop the API."""

    kind = "redis"

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                                socket_connect_timeout=REDIS_TIMEOUT_S)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._clock = clock
        self._failing = False

    def hit(self, tenant_id: int, per_minute: int) -> Verdict:
        now = self._clock()
        minute, elapsed = divmod(now, WINDOW_S)
        key = f"{KEY_PREFIX}{tenant_id}:{int(minute)}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, 2 * WINDOW_S)  # long enough to be the previous minute of the next
            pipe.get(f"{KEY_PREFIX}{tenant_id}:{int(minute) - 1}")
            counted, _, previous = pipe.execute()
            answer = verdict(int(previous or 0), int(counted) - 1, elapsed, per_minute)
            if not answer.allowed:
                self._redis.decr(key)
        except self._errors as exc:
            if not self._failing:
                log.warning("the request rate counter in Redis cannot be reached (%s); requests are not limited "
                            "until it can", type(exc).__name__)
            self._failing = True
            return Verdict(True)
        if self._failing:
            log.info("the request rate counter in Redis is reachable again")
            self._failing = False
        return answer

    def close(self) -> None:
        self._redis.close()


def limiter_from_environment(environ: Mapping[str, str] | None = None) -> MemoryRateLimiter | RedisRateLimiter:
    """In Redis when ``PORTL_BROKER`` is a ``redis://`` (or ``rediss://``) URL, else in memory."""
    environ = os.environ if environ is None else environ
    broker = environ.get("PORTL_BROKER", "").strip()
    if broker.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(broker)
    return MemoryRateLimiter()
