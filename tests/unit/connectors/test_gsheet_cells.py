"""Google Sheets cells and Arrow: column types, serial dates, values a sheet cannot hold, keys."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest
from pydantic import ValidationError

from portl.connectors.gsheet.cells import (
    DATE_FORMAT, Refusal, cell_key_text, column_array, column_cells, infer_type, key_text,
)
from portl.connectors.gsheet.config import Config, spreadsheet_id


@pytest.mark.parametrize("text, expected", [
    ("1AbC-d_9", "1AbC-d_9"),
    ("https://docs.google.com/spreadsheets/d/1AbC-d_9/edit#gid=0", "1AbC-d_9"),
    (" https://docs.google.com/spreadsheets/d/XYZ ", "XYZ"),
])
def test_the_spreadsheet_id_is_taken_from_an_id_or_a_url(text, expected):
    assert spreadsheet_id(text) == expected


def test_a_spreadsheet_that_is_neither_id_nor_url_is_refused():
    with pytest.raises(ValueError, match="neither a spreadsheet ID nor a Google Sheets URL"):
        spreadsheet_id("https://example.com/sheet")


def test_an_api_key_never_shows_and_a_range_names_no_tab():
    config = Config(type="gsheet", spreadsheet="abc", sheet="t", api_key="secret-key")
    assert "secret-key" not in repr(config) and "secret-key" not in str(config.model_dump())
    with pytest.raises(ValidationError, match="without a sheet name"):
        Config(type="gsheet", spreadsheet="abc", range="t!A1:B2")


@pytest.mark.parametrize("values, number_format, expected", [
    ([1, 2, None], None, pa.int64()),
    ([1, 2.5], None, pa.float64()),
    ([2 ** 53], None, pa.float64()),
    ([45000, 45001], "DATE", pa.date32()),
    ([45000.25], "DATE_TIME", pa.timestamp("us")),
    ([0.5], "TIME", pa.string()),
    ([True, False], None, pa.bool_()),
    ([1, "a"], None, pa.string()),
    ([None, None], None, pa.string()),
])
def test_a_column_type_comes_from_its_values_and_number_format(values, number_format, expected):
    assert infer_type(values, number_format) == expected


def test_serial_numbers_become_dates_and_times_from_1899_12_30():
    dates, _ = column_array([1, 45292, None], pa.date32(), "DATE")
    assert dates.to_pylist() == [dt.date(1899, 12, 31), dt.date(2024, 1, 1), None]
    stamps, _ = column_array([45292.75], pa.timestamp("us"), "DATE_TIME")
    assert stamps.to_pylist() == [dt.datetime(2024, 1, 1, 18, 0)]
    times, _ = column_array([0.5, 45292.25], pa.string(), "TIME")
    assert times.to_pylist() == ["12:00:00", "06:00:00"]


def test_a_value_that_does_not_fit_its_column_is_named_and_left_null():
    ints, bad = column_array([1, 2.5, "x", 4], pa.int64(), None)
    assert ints.to_pylist() == [1, None, None, 4]
    assert bad == {1: "not a whole number", 2: "not a number: 'x'"}


def test_text_columns_take_numbers_as_written():
    text, bad = column_array(["a", 3, 2.5, True, None], pa.string(), None)
    assert text.to_pylist() == ["a", "3", "2.5", "TRUE", None] and not bad


def test_dates_are_written_as_serial_numbers_with_a_date_format():
    (cell, empty) = column_cells("d", pa.array([dt.date(2024, 1, 1), None]))
    assert cell == {"userEnteredValue": {"numberValue": 45292.0}, "userEnteredFormat": {"numberFormat": DATE_FORMAT}}
    assert empty == {}


@pytest.mark.parametrize("array, reason", [
    (pa.array(["ok", "x" * 50_001]), "50,001 characters, more than the 50,000 a spreadsheet cell holds"),
    (pa.array([1.0, math.nan]), "a spreadsheet cell cannot hold nan"),
    (pa.array([1, 2 ** 60]), "more digits than a spreadsheet number keeps"),
])
def test_a_value_a_cell_cannot_hold_is_refused_with_its_row(array, reason):
    with pytest.raises(Refusal) as caught:
        column_cells("c", array)
    assert caught.value.row == 1 and caught.value.column == "c" and reason in caught.value.reason


def test_keys_match_whatever_form_their_numbers_take():
    assert key_text(1) == key_text(1.0) == cell_key_text({"userEnteredValue": {"numberValue": 1}}) == "1"
    assert key_text(dt.date(2024, 1, 1)) == cell_key_text(column_cells("d", pa.array([dt.date(2024, 1, 1)]))[0]) == "45292"
    assert key_text("") is None and cell_key_text({}) is None
