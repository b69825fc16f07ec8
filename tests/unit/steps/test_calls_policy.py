"""Which failures a call retries, and how the attempts are counted and reported."""

import pytest

from portl.errors import CallError
from portl.steps.calls.policy import Attempt, CallPolicy, CallResult, retry_after, retry_on_values, run_attempts


def test_default_policy_retries_5xx_but_not_4xx():
    policy = CallPolicy()
    assert [policy.retries_status(s) for s in (500, 503, 599)] == [True, True, True]
    assert [policy.retries_status(s) for s in (400, 404, 409, 429)] == [False, False, False, False]


def test_default_policy_retries_timeouts_and_connection_errors():
    policy = CallPolicy()
    assert policy.retries_failure("timeout") and policy.retries_failure("connection")


def test_an_exact_status_in_retry_on_retries_only_that_4xx():
    policy = CallPolicy(retry_on=frozenset({"429"}))
    assert policy.retries_status(429)
    assert not policy.retries_status(409)
    assert not policy.retries_status(503)  # 5xx no longer listed


def test_4xx_in_retry_on_retries_every_client_error():
    policy = CallPolicy(retry_on=["4xx"])
    assert policy.retries_status(400) and policy.retries_status(451)
    assert not policy.retries_failure("timeout")


def test_retry_on_accepts_a_list_and_numbers():
    assert CallPolicy(retry_on=["5XX", 429]).retry_on == frozenset({"5xx", "429"})


def test_an_unknown_retry_class_is_refused_naming_it_and_the_valid_ones():
    with pytest.raises(ValueError) as caught:
        retry_on_values(["5xx", "sometimes"])
    message = str(caught.value)
    assert "'sometimes'" in message and "5xx, 4xx, timeout, connection" in message and "429" in message


@pytest.mark.parametrize("attempts", [0, 101])
def test_max_attempts_out_of_range_is_refused(attempts):
    with pytest.raises(ValueError, match="max_attempts"):
        CallPolicy(max_attempts=attempts)


def test_delays_are_one_fewer_than_attempts_and_grow():
    delays = CallPolicy(max_attempts=5, backoff_ms=100).delays()
    assert len(delays) == 4
    # Doubling with jitter on the upper half: attempt n waits between cap/2 and cap.
    for n, delay in enumerate(delays):
        cap = 0.1 * 2 ** n
        assert cap / 2 <= delay <= cap


def _script(*outcomes):
    remaining = list(outcomes)
    return lambda: remaining.pop(0)


def _ok():
    return Attempt(result=CallResult(200, {"ok": True}, {}, 0), status=200)


def _fail(retryable=True, status=503):
    return Attempt(problem=f"answered {status}", status=status, retryable=retryable, why_not_retried="not listed")


def test_a_call_that_succeeds_on_the_third_attempt_reports_three_attempts():
    seen = []
    result = run_attempts("POST http://x/y", CallPolicy(backoff_ms=0), _script(_fail(), _fail(), _ok()),
                          lambda n, outcome, details: seen.append((n, outcome, details.get("status"))), sleep=lambda s: None)
    assert result.attempts == 3
    assert seen == [(1, "retry", 503), (2, "retry", 503), (3, "ok", 200)]


def test_giving_up_raises_call_error_with_the_attempts_made():
    with pytest.raises(CallError) as caught:
        run_attempts("POST http://x/y", CallPolicy(max_attempts=2, backoff_ms=0), _script(_fail(), _fail()), sleep=lambda s: None)
    assert str(caught.value) == "POST http://x/y answered 503 (gave up after 2 attempts)"
    assert caught.value.attempts == 2 and caught.value.retryable and caught.value.status == 503


def test_a_failure_not_worth_retrying_stops_at_once_and_says_why():
    outcomes = _script(_fail(retryable=False, status=404))
    with pytest.raises(CallError) as caught:
        run_attempts("GET http://x/y", CallPolicy(), outcomes, sleep=lambda s: None)
    assert str(caught.value) == "GET http://x/y answered 404 (not retried: not listed)"
    assert caught.value.attempts == 1 and not caught.value.retryable


def test_the_wait_between_attempts_follows_the_backoff_and_a_retry_after_hint():
    waits = []
    hinted = Attempt(problem="answered 429", status=429, retryable=True, retry_after_s=2.0)
    run_attempts("x", CallPolicy(backoff_ms=100), _script(_fail(), hinted, _ok()), sleep=waits.append)
    assert 0.05 <= waits[0] <= 0.1
    assert waits[1] == 2.0


def test_retry_after_reads_seconds_and_ignores_dates():
    assert retry_after("3") == 3.0
    assert retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert retry_after(None) is None
