"""When a call is tried again, and the one attempt loop that HTTP and Lambda calls share.

A call is retried with exponential backoff and jitter (the engine's :func:`backoff_delays`) when
its failure is in the policy's ``retry_on``: ``5xx`` answers, ``timeout``, ``connection`` errors
by default; ``4xx`` or exact statuses such as ``429`` only when named. An answer that says the
request itself is wrong does not improve by sending it again, so 4xx is never retried unless asked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from portl.engine.retry import backoff_delays
from portl.errors import CallError
from portl.spec.models import Retry

RETRY_CLASSES = ("5xx", "4xx", "timeout", "connection")
DEFAULT_RETRY_ON = frozenset({"5xx", "timeout", "connection"})
MAX_ATTEMPTS = 100
MAX_RETRY_AFTER_S = 30.0  # a server asking for a longer pause is not waited for within one run
_STATUS = re.compile(r"^[1-5][0-9][0-9]$")

#: ``on_attempt(attempt_number, outcome, details)``: outcome is "ok", "retry" or "failed".
OnAttempt = Callable[[int, str, dict[str, Any]], None]


def retry_on_values(values: Iterable[Any]) -> frozenset[str]:
    """``values`` as a ``retry_on`` set; raises ValueError naming a value that is not a retry class
    (5xx, 4xx, timeout, connection) nor an HTTP status such as 429."""
    if isinstance(values, str):
        values = [values]
    found = set()
    for value in values:
        text = str(value).strip().lower()
        if text not in RETRY_CLASSES and not _STATUS.match(text):
            raise ValueError(f"retry_on: {value!r} is not one of {', '.join(RETRY_CLASSES)} nor an HTTP status such as 429")
        found.add(text)
    return frozenset(found)


@dataclass(frozen=True)
class CallPolicy:
    """How often a call is tried and after what failures: a step's ``retry:``, or the defaults."""

    max_attempts: int = 3
    backoff_ms: int = 200
    retry_on: frozenset[str] = DEFAULT_RETRY_ON

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"retry.max_attempts must be between 1 and {MAX_ATTEMPTS}, not {self.max_attempts}")
        if self.backoff_ms < 0:
            raise ValueError(f"retry.backoff_ms must be 0 or more, not {self.backoff_ms}")
        object.__setattr__(self, "retry_on", retry_on_values(self.retry_on))

    def retries_status(self, status: int) -> bool:
        """Whether an answer with this HTTP status is worth another attempt."""
        if str(status) in self.retry_on:
            return True
        return (500 <= status <= 599 and "5xx" in self.retry_on) or (400 <= status <= 499 and "4xx" in self.retry_on)

    def retries_failure(self, kind: str) -> bool:
        """Whether a ``timeout`` or ``connection`` failure is worth another attempt."""
        return kind in self.retry_on

    def delays(self) -> list[float]:
        """Seconds to wait before attempts 2..max_attempts (doubling, capped at 10 s, jittered)."""
        return backoff_delays(Retry(attempts=self.max_attempts, backoff_ms=self.backoff_ms))


@dataclass(frozen=True)
class CallResult:
    """A successful call: its status, its answer (parsed JSON when the answer is JSON, else its
    text, None when empty), the answer's headers, and how many attempts it took."""

    status: int | None
    body: Any
    headers: dict[str, str]
    attempts: int


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: a result, or a failure with whether trying again may help."""

    result: CallResult | None = None
    problem: str = ""
    status: int | None = None
    retryable: bool = False
    why_not_retried: str = ""
    retry_after_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def run_attempts(what: str, policy: CallPolicy, attempt: Callable[[], Attempt], on_attempt: OnAttempt | None = None,
                 details: dict[str, Any] | None = None, sleep: Callable[[float], None] = time.sleep) -> CallResult:
    """Call ``attempt`` until it succeeds, fails for good, or the policy's attempts are used up.

    ``what`` starts the error message (``POST https://api.example.com/items``); ``details`` go
    into every ``on_attempt`` report. The final failure raises :class:`CallError`.
    """
    delays: list[float] = []  # drawn at the first retry: most calls never need them
    base = dict(details or {})
    number = 0
    while True:
        number += 1
        started = time.perf_counter()
        outcome = attempt()
        report = {**base, "attempt": number, "max_attempts": policy.max_attempts, **outcome.details,
                  "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}
        if outcome.status is not None:
            report["status"] = outcome.status
        if outcome.result is not None:
            if on_attempt:
                on_attempt(number, "ok", report)
            return replace(outcome.result, attempts=number)
        report["error"] = outcome.problem
        if outcome.retryable and number < policy.max_attempts:
            delays = delays or policy.delays()
            delay = delays[number - 1]
            if outcome.retry_after_s is not None:
                delay = max(delay, min(outcome.retry_after_s, MAX_RETRY_AFTER_S))
            report["retry_in_ms"] = round(delay * 1000)
            if on_attempt:
                on_attempt(number, "retry", report)
            sleep(delay)
            continue
        if on_attempt:
            on_attempt(number, "failed", report)
        raise CallError(f"{what} {outcome.problem}{_tries(number, policy, outcome)}", status=outcome.status,
                        attempts=number, retryable=outcome.retryable)


def _tries(number: int, policy: CallPolicy, outcome: Attempt) -> str:
    if number > 1:
        return f" (gave up after {number} attempts)"
    if not outcome.retryable and policy.max_attempts > 1:
        reason = outcome.why_not_retried or "this failure is not in retry_on"
        return f" (not retried: {reason})"
    return " (1 attempt; retry.max_attempts allows no more)" if outcome.retryable else ""


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay form; None for a date or garbage."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
