import random

import pytest

from portl.engine.retry import backoff_delays, call_with_retries
from portl.errors import TerminalError, TransientError
from portl.spec.models import Retry


def test_backoff_doubles_and_is_capped():
    delays = backoff_delays(Retry(attempts=6, backoff_ms=100, max_backoff_ms=500), random.Random(1))
    assert len(delays) == 5
    caps = [0.1, 0.2, 0.4, 0.5, 0.5]
    for delay, cap in zip(delays, caps):
        assert cap / 2 <= delay <= cap


def test_transient_errors_are_retried_until_success():
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("database is locked")
        return "ok"

    assert call_with_retries(flaky, Retry(attempts=3, backoff_ms=10), sleep=waits.append) == "ok"
    assert len(calls) == 3 and len(waits) == 2


def test_retries_stop_after_the_last_attempt():
    calls = []

    def always():
        calls.append(1)
        raise TransientError("timeout")

    with pytest.raises(TransientError):
        call_with_retries(always, Retry(attempts=4, backoff_ms=1), sleep=lambda s: None)
    assert len(calls) == 4


def test_terminal_errors_are_never_retried():
    calls = []

    def broken():
        calls.append(1)
        raise TerminalError("no such table")

    with pytest.raises(TerminalError):
        call_with_retries(broken, Retry(attempts=5), sleep=lambda s: None)
    assert len(calls) == 1


def test_strategy_fail_does_not_retry_transient_errors():
    calls = []

    def flaky():
        calls.append(1)
        raise TransientError("locked")

    with pytest.raises(TransientError):
        call_with_retries(flaky, Retry(strategy="fail", attempts=5), sleep=lambda s: None)
    assert len(calls) == 1
