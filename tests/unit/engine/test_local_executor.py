"""The local executor: tasks taken in the order given, the first failure stopping the others,
and a failure confined to its own task letting the others finish first."""

from __future__ import annotations

import threading
import time

import pytest

from portl.engine.executor import LocalExecutor
from portl.errors import SourceError, TerminalError


class Damaged(SourceError):
    """A failure of one task's own input (like one damaged file of a glob)."""

    confined = True

    def __init__(self, message: str):
        super().__init__(message)
        self.also: list[BaseException] = []


def test_with_more_tasks_than_workers_threads_take_them_in_the_order_given():
    started: list[str] = []
    lock = threading.Lock()

    def task(item: str, abort: threading.Event) -> str:
        with lock:
            started.append(item)
        time.sleep(0.02)
        return item.upper()

    result = LocalExecutor(2).map(task, ["big", "mid", "small", "tiny"], threading.Event())

    assert result == ["BIG", "MID", "SMALL", "TINY"]
    assert started[:2] == ["big", "mid"] or started[:2] == ["mid", "big"]
    assert started[2:] == ["small", "tiny"]


def test_the_first_ordinary_failure_stops_the_other_tasks():
    batches: dict[str, int] = {}

    def task(item: str, abort: threading.Event) -> None:
        if item == "bad":
            raise TerminalError("the destination went away")
        for n in range(200):
            if abort.is_set():
                break
            batches[item] = n + 1
            time.sleep(0.005)

    abort = threading.Event()
    with pytest.raises(TerminalError, match="the destination went away"):
        LocalExecutor(2).map(task, ["bad", "long"], abort)

    assert abort.is_set() and batches.get("long", 0) < 200


def test_a_confined_failure_lets_the_other_tasks_finish_then_is_raised():
    batches: dict[str, int] = {}
    told: list[tuple[str, str]] = []

    def task(item: str, abort: threading.Event) -> None:
        if item.startswith("damaged"):
            raise Damaged(f"{item}: CRC check failed")
        for n in range(20):
            if abort.is_set():
                break
            batches[item] = n + 1
            time.sleep(0.005)

    executor = LocalExecutor(2, confine=True, on_confined=lambda item, exc: told.append((item, str(exc))))
    abort = threading.Event()
    with pytest.raises(Damaged) as caught:
        executor.map(task, ["damaged-a", "long", "damaged-b", "short"], abort)

    assert batches == {"long": 20, "short": 20}
    assert not abort.is_set()
    assert str(caught.value) == "damaged-a: CRC check failed"
    assert [str(e) for e in caught.value.also] == ["damaged-b: CRC check failed"]
    assert sorted(told) == [("damaged-a", "damaged-a: CRC check failed"), ("damaged-b", "damaged-b: CRC check failed")]


def test_a_confined_failure_on_one_worker_still_lets_the_next_tasks_run():
    done: list[str] = []

    def task(item: str, abort: threading.Event) -> None:
        if item == "damaged":
            raise Damaged("damaged: truncated")
        done.append(item)

    with pytest.raises(Damaged, match="damaged: truncated"):
        LocalExecutor(1, confine=True).map(task, ["first", "damaged", "last"], threading.Event())

    assert done == ["first", "last"]


def test_without_confinement_a_confined_failure_stops_everything_like_any_other():
    batches: dict[str, int] = {}

    def task(item: str, abort: threading.Event) -> None:
        if item == "damaged":
            raise Damaged("damaged: truncated")
        for n in range(200):
            if abort.is_set():
                break
            batches[item] = n + 1
            time.sleep(0.005)

    abort = threading.Event()
    with pytest.raises(Damaged):
        LocalExecutor(2).map(task, ["damaged", "long"], abort)

    assert abort.is_set() and batches.get("long", 0) < 200
