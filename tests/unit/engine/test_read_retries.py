"""A source read that fails with a transient error opens again after the last chunk it produced."""

import pyarrow as pa
import pytest

from portl.connectors.base import Checkpoint, Chunk
from portl.engine.retry import resumable_read
from portl.errors import TerminalError, TransientError
from portl.spec.models import Retry

START = Checkpoint("0", {"offset": 0})


class FlakySource:
    """Ten chunks of one row (values 0..9); ``failures`` maps a chunk number to the errors its
    read meets before it, one per attempt."""

    def __init__(self, failures: dict[int, list[Exception]] | None = None):
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.opened_at: list[int] = []
        self.closed = 0

    def read(self, start: Checkpoint):
        offset = start.position["offset"]
        self.opened_at.append(offset)
        try:
            for n in range(offset, 10):
                pending = self.failures.get(n)
                if pending:
                    raise pending.pop(0)
                yield Chunk(pa.RecordBatch.from_pydict({"v": [n]}), Checkpoint("0", {"offset": n + 1}, n + 1))
        finally:
            self.closed += 1


def values(chunks) -> list[int]:
    return [v for chunk in chunks for v in chunk.data.column("v").to_pylist()]


def test_a_dropped_read_opens_again_after_the_last_chunk_and_yields_every_row_once():
    source = FlakySource({4: [TransientError("lost connection")]})
    told = []
    chunks = resumable_read(source.read, START, Retry(attempts=3), lambda *args: told.append(args), sleep=lambda s: None)
    assert values(chunks) == list(range(10))
    assert source.opened_at == [0, 4]
    attempt, error, _wait, at = told[0]
    assert (len(told), attempt, str(error), at.position) == (1, 1, "lost connection", {"offset": 4})


def test_the_broken_read_is_closed_before_the_next_one_opens():
    source = FlakySource({2: [TransientError("gone away")]})
    closed_when_reopened = []
    original = source.read

    def read(start):
        closed_when_reopened.append(source.closed)
        return original(start)

    list(resumable_read(read, START, Retry(attempts=2), sleep=lambda s: None))
    assert closed_when_reopened == [0, 1] and source.closed == 2


def test_reads_that_fail_without_progress_stop_after_the_last_attempt():
    source = FlakySource({6: [TransientError("down")] * 5})
    got = []
    with pytest.raises(TransientError, match="down"):
        for chunk in resumable_read(source.read, START, Retry(attempts=3, backoff_ms=1), sleep=lambda s: None):
            got.append(chunk)
    assert values(got) == list(range(6)) and source.opened_at == [0, 6, 6]


def test_progress_between_failures_starts_the_attempt_count_again():
    source = FlakySource({2: [TransientError("drop")], 5: [TransientError("drop")], 8: [TransientError("drop")]})
    chunks = resumable_read(source.read, START, Retry(attempts=2), sleep=lambda s: None)
    assert values(chunks) == list(range(10)) and source.opened_at == [0, 2, 5, 8]


def test_strategy_fail_does_not_reopen_a_read():
    source = FlakySource({3: [TransientError("drop")]})
    with pytest.raises(TransientError):
        list(resumable_read(source.read, START, Retry(strategy="fail", attempts=5), sleep=lambda s: None))
    assert source.opened_at == [0]


def test_a_terminal_read_error_is_never_retried():
    source = FlakySource({3: [TerminalError("no such table")]})
    with pytest.raises(TerminalError):
        list(resumable_read(source.read, START, Retry(attempts=5), sleep=lambda s: None))
    assert source.opened_at == [0]


def test_a_read_that_fails_to_open_is_retried_from_where_it_was():
    calls = []
    source = FlakySource()

    def read(start):
        calls.append(start.position["offset"])
        if len(calls) == 1:
            raise TransientError("too many connections")
        return source.read(start)

    assert values(resumable_read(read, START, Retry(attempts=2), sleep=lambda s: None)) == list(range(10))
    assert calls == [0, 0]


def test_an_error_thrown_in_by_the_consumer_is_not_retried_as_a_read():
    source = FlakySource()
    chunks = resumable_read(source.read, START, Retry(attempts=5), sleep=lambda s: None)
    next(chunks)
    with pytest.raises(TransientError, match="the writer's"):
        chunks.throw(TransientError("the writer's"))
    assert source.opened_at == [0] and source.closed == 1
