"""The incremental settings and the window a run reads (connectors.config, connectors.sql.incremental)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from portl.connectors.config import Incremental, parse_duration
from portl.connectors.sql.incremental import (
    IncrementalError, Window, cursor_type, look_back, new_mark, window,
)
from portl.engine.incremental import last_mark
from portl.connectors.base import Checkpoint
from portl.engine.unfinished import FINISHED

SCHEMA = pa.schema([
    pa.field("id", pa.int64()), pa.field("name", pa.string()), pa.field("updated_at", pa.timestamp("us")),
    pa.field("day", pa.date32()), pa.field("flag", pa.bool_()), pa.field("price", pa.decimal128(10, 2)),
])


def bind_all(values: list):
    def bind(value):
        values.append(value)
        return "?"
    return bind


# --- the settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
                                           ("45s", 45), ("1w", 604800), ("1.5h", 5400), ("2 h", 7200)])
def test_durations_read_as_written(text, seconds):
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["10", "10q", "m", "10m x", "", "ten minutes"])
def test_a_lookback_that_is_no_duration_is_refused_with_examples(text):
    with pytest.raises(ValidationError, match="is not a duration: write a number and a unit"):
        Incremental(cursor="updated_at", lookback=text)


def test_a_numeric_lookback_stays_a_number():
    assert Incremental(cursor="id", lookback=500).lookback_amount() == 500
    assert Incremental(cursor="updated_at", lookback="10m").lookback_amount() == datetime.timedelta(minutes=10)


def test_a_negative_lookback_is_refused():
    with pytest.raises(ValidationError, match="must not be negative"):
        Incremental(cursor="id", lookback=-1)


def test_an_initial_date_from_yaml_is_kept_as_text():
    assert Incremental(cursor="day", initial=datetime.date(2024, 1, 31)).initial == "2024-01-31"


def test_unknown_keys_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        Incremental(cursor="id", lookbak="1m")


# --- the cursor --------------------------------------------------------------------------------


def test_an_unknown_cursor_names_the_columns_and_the_close_one():
    with pytest.raises(IncrementalError, match="has no column Updated_At; did you mean updated_at") as caught:
        cursor_type(Incremental(cursor="Updated_At"), SCHEMA, "table orders")
    assert caught.value.key == "cursor"


def test_a_cursor_of_a_type_without_order_is_refused():
    with pytest.raises(IncrementalError, match="flag of table orders is bool, whose values cannot mark what is new"):
        cursor_type(Incremental(cursor="flag"), SCHEMA, "table orders")


@pytest.mark.parametrize("cursor, lookback, message", [
    ("updated_at", 10, "the lookback is a duration such as 10m"),
    ("id", "10m", "the lookback is a number of its units"),
    ("id", 1.5, "a whole number"),
    ("name", "1m", "text, which has no distance to look back by"),
])
def test_a_lookback_must_suit_the_cursor(cursor, lookback, message):
    with pytest.raises(IncrementalError, match=message) as caught:
        cursor_type(Incremental(cursor=cursor, lookback=lookback), SCHEMA, "t")
    assert caught.value.key == "lookback"


def test_an_initial_value_must_be_of_the_cursor_type():
    with pytest.raises(IncrementalError, match="not a value of that type") as caught:
        cursor_type(Incremental(cursor="updated_at", initial="yesterday"), SCHEMA, "t")
    assert caught.value.key == "initial"


# --- marks and windows -------------------------------------------------------------------------


def test_a_mark_keeps_the_value_in_its_own_form():
    stamp = datetime.datetime(2024, 5, 1, 10, 0, 0, 123000)
    mark = new_mark("updated_at", "timestamp", stamp, None)
    assert mark == {"cursor": "updated_at", "type": "timestamp", "value": "2024-05-01T10:00:00.123000", "form": "datetime"}
    assert new_mark("price", "decimal", Decimal("12.50"), None)["value"] == "12.50"


def test_the_mark_never_goes_back():
    previous = new_mark("id", "bigint", 100, None)
    assert new_mark("id", "bigint", 40, previous)["value"] == 100  # rows deleted since
    assert new_mark("id", "bigint", None, previous)["value"] == 100  # all deleted
    assert new_mark("id", "bigint", 120, previous)["value"] == 120


def test_a_first_run_reads_up_to_the_mark_and_the_null_cursors():
    win = window(Incremental(cursor="id"), "bigint", None, new_mark("id", "bigint", 50, None))
    values: list = []
    assert win.condition('"id"', bind_all(values)) == '("id" <= ? OR "id" IS NULL)'
    assert values == [50]


def test_a_later_run_reads_past_the_previous_mark_less_the_lookback():
    inc = Incremental(cursor="updated_at", lookback="10m")
    before = new_mark("updated_at", "timestamp", datetime.datetime(2024, 5, 1, 10, 0), None)
    mark = new_mark("updated_at", "timestamp", datetime.datetime(2024, 5, 2, 10, 0), before)
    win = window(inc, "timestamp", before, mark)
    assert win.after == datetime.datetime(2024, 5, 1, 9, 50) and not win.nulls
    assert win.describe('"updated_at"') == \
        "WHERE \"updated_at\" > '2024-05-01 09:50:00' AND \"updated_at\" <= '2024-05-02 10:00:00'"


def test_initial_bounds_the_first_run_from_below_and_leaves_out_nulls():
    inc = Incremental(cursor="id", initial=10)
    win = window(inc, "bigint", None, new_mark("id", "bigint", 50, None))
    assert win.describe('"id"') == 'WHERE "id" >= 10 AND "id" <= 50'


def test_a_source_without_values_reads_only_nulls_on_its_first_run_and_nothing_after():
    inc = Incremental(cursor="id")
    empty = new_mark("id", "bigint", None, None)
    assert window(inc, "bigint", None, empty).condition('"id"', bind_all([])) == '"id" IS NULL'
    assert window(inc, "bigint", empty, empty).condition('"id"', bind_all([])) == "1 = 0"
    later = new_mark("id", "bigint", 7, empty)
    assert window(inc, "bigint", empty, later).describe('"id"') == 'WHERE "id" <= 7'


def test_a_mark_of_another_cursor_makes_a_first_run():
    other = new_mark("id", "bigint", 50, None)
    mark = new_mark("updated_at", "timestamp", datetime.datetime(2024, 5, 1), other)
    win = window(Incremental(cursor="updated_at"), "timestamp", other, mark)
    assert win.after is None and win.nulls


@pytest.mark.parametrize("value, amount, kind, expected", [
    (100, 10, "bigint", 90),
    (Decimal("10.50"), 0.25, "decimal", Decimal("10.25")),
    (datetime.date(2024, 5, 2), datetime.timedelta(hours=2), "date", datetime.date(2024, 5, 1)),
    ("2024-05-01 10:00:00", datetime.timedelta(minutes=5), "timestamp", "2024-05-01 09:55:00"),
    ("2024-05-01T10:00:00.250", datetime.timedelta(minutes=5), "timestamp", "2024-05-01T09:55:00.250000"),
    ("2024-05-01T10:00:00Z", datetime.timedelta(hours=1), "timestamptz", "2024-05-01T09:00:00Z"),
    ("2024-05-02", datetime.timedelta(days=1), "date", "2024-05-01"),
    (1714557600, datetime.timedelta(minutes=10), "timestamp", 1714557000),  # epoch seconds in SQLite
])
def test_look_back_keeps_the_value_in_its_own_form(value, amount, kind, expected):
    assert look_back(value, amount, kind) == expected


def test_the_window_condition_binds_every_value():
    values: list = []
    text = Window("c", "bigint", after=5, upto=9).condition('"c"', bind_all(values))
    assert text == '"c" > ? AND "c" <= ?' and values == [5, 9]


# --- the mark a run leaves in the destination -------------------------------------------------


def finished(mark: dict, number: int) -> dict:
    return {FINISHED: (Checkpoint(FINISHED, {}, 0, True), {"incremental": {"previous": None, "mark": mark, "number": number}})}


def test_the_previous_mark_is_the_last_finished_run_s():
    runs = {
        "20240501-020000-aaaaaa": finished({"cursor": "id", "value": 10}, 1),
        "20240501-020000-000000": finished({"cursor": "id", "value": 20}, 2),  # same second, later run
        "20240502-020000-bbbbbb": {"0": (Checkpoint("0", {}), {"incremental": {"mark": {"cursor": "id", "value": 99},
                                                                                "number": 3}})},  # unfinished
    }
    assert last_mark(runs) == ({"cursor": "id", "value": 20}, 2)
    assert last_mark({}) == (None, 0)
