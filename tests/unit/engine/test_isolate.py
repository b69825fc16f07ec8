"""Isolating refused rows: a batch the destination refused is written again in parts until each
part is loaded or is one refused row, with few writes when the bad rows are few."""

from __future__ import annotations

import math

import pytest

from portl.connectors.base import WriteResult
from portl.engine.isolate import isolate
from portl.errors import RowRefused, TransientError


class Table:
    """A destination that refuses the rows in ``bad``, naming the first one when ``names_row``;
    a write is all or nothing (as in a savepoint). Remembers every write."""

    def __init__(self, bad: set[int], names_row: bool):
        self.bad, self.names_row = bad, names_row
        self.rows: list[int] = []
        self.writes: list[tuple[int, int]] = []

    def write(self, start: int, stop: int) -> WriteResult:
        self.writes.append((start, stop))
        refused = sorted(r for r in range(start, stop) if r in self.bad)
        if refused:
            raise RowRefused(f"row {refused[0]} is bad", row=refused[0] - start if self.names_row else None)
        self.rows.extend(range(start, stop))
        return WriteResult(inserted=stop - start)

    def first(self, rows: int) -> RowRefused:
        """The refusal of the whole batch's first write."""
        with pytest.raises(RowRefused) as caught:
            self.write(0, rows)
        return caught.value


@pytest.mark.parametrize("names_row", [True, False])
@pytest.mark.parametrize("bad", [{0}, {499}, {999}, {3, 4, 5}, {10, 500, 990}, set(range(0, 1000, 7))])
def test_every_good_row_is_loaded_once_in_order_and_every_bad_row_refused(bad, names_row):
    table = Table(bad, names_row)
    found = isolate(table.write, 1000, table.first(1000))
    assert table.rows == [r for r in range(1000) if r not in bad]
    assert sorted(r for r, _ in found.refused) == sorted(bad)
    assert (found.result.inserted, found.writes) == (1000 - len(bad), len(table.writes) - 1)
    assert all(str(e) == f"row {r} is bad" for r, e in found.refused)


def test_one_bad_row_the_server_names_costs_three_writes():
    table = Table({61_234}, names_row=True)
    found = isolate(table.write, 100_000, table.first(100_000))
    assert table.writes[1:] == [(0, 61_234), (61_235, 80_617), (80_617, 100_000)]
    assert found.writes == 3


def test_one_bad_row_the_server_does_not_name_costs_about_two_writes_per_halving():
    table = Table({61_234}, names_row=False)
    found = isolate(table.write, 100_000, table.first(100_000))
    assert found.writes <= 2 * math.ceil(math.log2(100_000))
    assert [r for r, _ in found.refused] == [61_234]


def test_a_batch_of_bad_rows_costs_about_one_write_per_row_when_the_server_names_them():
    table = Table(set(range(1000)), names_row=True)
    found = isolate(table.write, 1000, table.first(1000))
    assert len(found.refused) == 1000
    assert found.writes < 2 * 1000


def test_of_two_rows_with_the_same_key_the_first_is_loaded():
    keys = [1, 2, 3, 2, 4]

    class Keys(Table):
        def write(self, start, stop):
            self.writes.append((start, stop))
            seen = {keys[r] for r in self.rows}
            for r in range(start, stop):
                if keys[r] in seen:
                    raise RowRefused("duplicate key")
                seen.add(keys[r])
            self.rows.extend(range(start, stop))
            return WriteResult(inserted=stop - start)

    table = Keys(set(), names_row=False)
    found = isolate(table.write, 5, table.first(5))
    assert table.rows == [0, 1, 2, 4]
    assert [r for r, _ in found.refused] == [3]


def test_a_failure_that_is_not_a_refusal_stops_the_isolation():
    def write(start, stop):
        raise TransientError("lost connection")

    with pytest.raises(TransientError, match="lost connection"):
        isolate(write, 10, RowRefused("bad", row=4))


def test_a_named_row_outside_the_part_is_not_trusted():
    table = Table({7}, names_row=False)
    found = isolate(table.write, 10, RowRefused("bad", row=25))
    assert [r for r, _ in found.refused] == [7]


def test_past_the_limit_the_isolation_stops_without_writing_the_rest():
    table = Table(set(range(0, 1000, 2)), names_row=True)
    found = isolate(table.write, 1000, table.first(1000), limit=3)
    assert found.stopped
    assert [r for r, _ in found.refused] == [0, 2, 4, 6]
    assert found.writes < 10


def test_within_the_limit_the_isolation_finishes():
    table = Table({5, 50}, names_row=False)
    found = isolate(table.write, 100, table.first(100), limit=2)
    assert not found.stopped and [r for r, _ in found.refused] == [5, 50]


def test_a_text_block_of_one_record_per_line_is_cut_at_its_lines():
    from portl.connectors.base import Verbatim
    from portl.engine.isolate import record_starts

    assert record_starts(Verbatim(b"1,a\n2,b\n3,c\n", 3)) == [0, 4, 8, 12]
    assert record_starts(Verbatim(b"1,a\n2,b\n3,c", 3)) == [0, 4, 8, 11]  # the source's last line, unended
    assert record_starts(Verbatim(b'1,"a\nb"\n2,c\n', 2)) is None  # a line break inside a value
    assert record_starts(Verbatim(b"", 0)) is None
