"""The sliding-minute request counter, on a clock the tests move: what it lets through, when it
says to come back, and that a refused request is not counted."""

from __future__ import annotations

import pytest

from portl.service.ratelimit import MemoryRateLimiter, RedisRateLimiter, limiter_from_environment, verdict


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_the_limit_is_let_through_and_the_next_request_refused():
    limiter = MemoryRateLimiter(Clock(600.0))

    answers = [limiter.hit(1, 5) for _ in range(6)]

    assert [a.allowed for a in answers] == [True] * 5 + [False]


def test_each_tenant_has_its_own_count():
    limiter = MemoryRateLimiter(Clock(600.0))
    for _ in range(5):
        limiter.hit(1, 5)

    assert limiter.hit(1, 5).allowed is False
    assert limiter.hit(2, 5).allowed is True


def test_a_burst_just_before_a_minute_ends_still_counts_just_after():
    clock = Clock(659.0)  # one second before the minute 660 begins
    limiter = MemoryRateLimiter(clock)
    for _ in range(5):
        assert limiter.hit(1, 5).allowed

    clock.at = 661.0

    assert limiter.hit(1, 5).allowed is False


def test_requests_of_the_previous_minute_slide_out_of_the_window():
    clock = Clock(600.0)
    limiter = MemoryRateLimiter(clock)
    for _ in range(5):
        limiter.hit(1, 5)
    clock.at = 660.0 + 15.0  # a quarter into the next minute: 5 * 45/60 = 3.75 of them still count

    assert limiter.hit(1, 5).allowed is True  # 3.75 + 1 <= 5
    assert limiter.hit(1, 5).allowed is False  # 3.75 + 1 + 1 > 5


def test_retry_after_is_when_one_more_request_fits():
    # 5 of 5 at the start of a minute: in the next minute they weigh 5 * (60 - s) / 60, and one
    # more fits once that is at most 4, at s = 12: 60 + 12 seconds from now.
    assert verdict(previous=0, current=5, elapsed_s=0.0, per_minute=5).retry_after_s == 72
    # 10 last minute, 2 this one, 30 s in: 10 * (30 - t) / 60 + 3 <= 5 once t >= 18.
    assert verdict(previous=10, current=2, elapsed_s=30.0, per_minute=5).retry_after_s == 18


def test_retry_after_is_at_least_one_second():
    answer = verdict(previous=60, current=4, elapsed_s=59.5, per_minute=5)  # fits in half a second

    assert answer.allowed is False
    assert answer.retry_after_s == 1


def test_a_client_that_waits_as_told_gets_through():
    clock = Clock(600.0)
    limiter = MemoryRateLimiter(clock)
    for _ in range(5):
        limiter.hit(1, 5)
    refused = limiter.hit(1, 5)
    for _ in range(20):  # refused requests meanwhile are not counted
        limiter.hit(1, 5)

    clock.at += refused.retry_after_s

    assert limiter.hit(1, 5).allowed is True


def test_the_counts_are_in_redis_when_the_broker_is_redis_and_in_memory_otherwise():
    assert isinstance(limiter_from_environment({}), MemoryRateLimiter)
    assert isinstance(limiter_from_environment({"PORTL_BROKER": "amqp://rabbit//"}), MemoryRateLimiter)
    redis_limiter = limiter_from_environment({"PORTL_BROKER": "redis://127.0.0.1:6379/13"})
    assert isinstance(redis_limiter, RedisRateLimiter)
    redis_limiter.close()


def test_an_unreachable_redis_lets_requests_through_and_says_so_once(caplog):
    pytest.importorskip("redis")
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")

    answers = [limiter.hit(1, 1) for _ in range(3)]

    assert all(a.allowed for a in answers)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["the request rate counter in Redis cannot be reached (ConnectionError); requests are not "
                        "limited until it can"]
