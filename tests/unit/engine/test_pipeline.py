"""Batches of one partition written two at a time still commit one after another, in order."""

from __future__ import annotations

import threading
import time

import pytest

from portl.engine.pipeline import Abandoned, current_turn, write_in_order


class Writer:
    """Writes items (numbers); item ``n`` takes ``delays[n]`` seconds writing its rows before it
    waits its turn, then ``commits[n]`` seconds committing."""

    def __init__(self, delays: dict[int, float] | None = None, fail: dict[int, str] | None = None,
                 commits: dict[int, float] | None = None):
        self.delays, self.fail, self.commits = delays or {}, fail or {}, commits or {}
        self.committed: list[int] = []
        self.rolled_back: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self.writing = self.most_writing = 0  # batches writing their rows, before their turn
        self.events: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, item: int) -> None:
        with self._lock:
            self.events.append(("write", item))
            self.in_flight += 1
            self.writing += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.most_writing = max(self.most_writing, self.writing)
        written = False
        try:
            time.sleep(self.delays.get(item, 0.0))
            if item in self.fail:
                raise RuntimeError(self.fail[item])
            with self._lock:
                self.writing -= 1
                written = True
            try:
                current_turn().wait()
            except Abandoned:
                self.rolled_back.append(item)
                raise
            time.sleep(self.commits.get(item, 0.0))
            with self._lock:
                self.events.append(("commit", item))
            self.committed.append(item)
        finally:
            with self._lock:
                self.in_flight -= 1
                if not written:
                    self.writing -= 1


def run(writer: Writer, items, depth: int = 2, slots: int = 4, stopped=lambda: False):
    return write_in_order(iter(items), writer, depth, threading.BoundedSemaphore(slots), stopped)


def test_a_later_batch_that_finishes_writing_first_commits_second():
    writer = Writer(delays={0: 0.2, 1: 0.0})
    assert run(writer, [0, 1, 2, 3]) == 3
    assert writer.committed == [0, 1, 2, 3]


def test_a_failed_batch_rolls_back_the_batches_after_it_and_its_error_is_raised():
    writer = Writer(delays={3: 0.05}, fail={2: "batch 2 broke"})
    with pytest.raises(RuntimeError, match="batch 2 broke"):
        run(writer, range(10))
    assert writer.committed == [0, 1]
    assert writer.rolled_back in ([], [3])  # batch 3 was written alongside, then rolled back
    assert max(writer.committed + writer.rolled_back) <= 3  # nothing was started after the failure was seen


def test_a_later_batch_failing_first_does_not_stop_an_earlier_one_from_committing():
    writer = Writer(delays={0: 0.2}, fail={1: "batch 1 broke"})
    with pytest.raises(RuntimeError, match="batch 1 broke"):
        run(writer, [0, 1, 2])
    assert writer.committed == [0]


def test_no_more_batches_are_written_at_once_than_the_depth():
    writer = Writer(delays={n: 0.02 for n in range(8)})
    run(writer, range(8), depth=2)
    assert writer.most_in_flight == 2 and writer.committed == list(range(8))


def test_the_destination_s_writers_bound_the_batches_writing_their_rows():
    writer = Writer(delays={n: 0.02 for n in range(6)})
    run(writer, range(6), depth=2, slots=1)
    assert writer.most_writing == 1 and writer.committed == list(range(6))


def test_a_batch_waiting_to_commit_gives_its_writer_to_the_next_batch():
    # One writer: batch 1 writes its rows while batch 0 commits, instead of after it.
    writer = Writer(delays={n: 0.01 for n in range(4)}, commits={n: 0.2 for n in range(4)})
    run(writer, range(4), depth=2, slots=1)
    assert writer.committed == [0, 1, 2, 3]
    assert writer.most_writing == 1 and writer.most_in_flight == 2
    for n in range(3):
        assert writer.events.index(("write", n + 1)) < writer.events.index(("commit", n))


def test_partitions_sharing_the_writers_never_write_more_rows_at_once_than_there_are_writers():
    slots = threading.BoundedSemaphore(2)
    writer = Writer(delays={n: 0.01 for n in range(40)}, commits={n: 0.01 for n in range(40)})
    parts = [threading.Thread(target=write_in_order, args=(iter(range(k, 40, 3)), writer, 2, slots, lambda: False))
             for k in range(3)]
    for part in parts:
        part.start()
    for part in parts:
        part.join()
    assert sorted(writer.committed) == list(range(40))
    assert writer.most_writing <= 2 and writer.most_in_flight > 2


def test_once_stopped_no_batch_is_taken_and_the_ones_under_way_commit():
    stop = threading.Event()
    writer = Writer(delays={0: 0.1, 1: 0.1})

    def items():
        for n in range(10):
            if n == 2:
                stop.set()
            yield n

    assert write_in_order(items(), writer, 2, threading.BoundedSemaphore(4), stop.is_set) == 1
    assert writer.committed == [0, 1]


def test_an_error_of_the_items_themselves_is_raised_after_the_writes_under_way_commit():
    writer = Writer(delays={0: 0.1})

    def items():
        yield 0
        raise ValueError("the source broke")

    with pytest.raises(ValueError, match="the source broke"):
        write_in_order(items(), writer, 2, threading.BoundedSemaphore(4), lambda: False)
    assert writer.committed == [0]


def test_an_abort_while_batches_are_in_flight_rolls_them_back_instead_of_committing():
    writer = Writer(delays={0: 0.2, 1: 0.2})

    def items():
        yield 0
        yield 1
        raise KeyboardInterrupt  # a second Ctrl-C, while 0 and 1 are still being written

    with pytest.raises(KeyboardInterrupt):
        write_in_order(items(), writer, 2, threading.BoundedSemaphore(4), lambda: False)
    assert writer.committed == [] and sorted(writer.rolled_back) == [0, 1]
