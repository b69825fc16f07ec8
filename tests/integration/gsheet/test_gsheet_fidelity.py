"""Type fidelity through a spreadsheet: each column of the fixture table goes Parquet → a tab of
a Google Sheet → Parquet, and every value arrives exactly, or converted as the Google Sheets type
map of docs/connectors.md says (with a warning in the run report where a value changes), or is
rejected with its reason where a cell cannot hold it. Then the mapping's ``type:`` gives back the
types a sheet does not keep (decimals, time zones, bytes, JSON, UUIDs). Against the local Sheets
API of tests/fakes/sheets_server.py, through the real Google client.

One column per run (with ``id``), so a value a sheet refuses costs its own row only in that
column's test, and every other value of the column is still compared.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import uuid
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import portl
from portl.connectors.gsheet.cells import column_array, column_cells, serial_micros
from tests.fakes.sheets_fixtures import LocalSheets, start_local_sheets
from tests.integration.fidelity.systems import Place, seed
from tests.integration.fidelity.table import LOGICAL, NAMES, ROWS

UTC = dt.timezone.utc
EMPTY = "an empty text is an empty cell in a spreadsheet; it was written as one, and reads back as NULL"
MICROS = "keeps microseconds only from about 1720 to 2079"
DOUBLE_NOTE = "a spreadsheet keeps numbers as doubles (15 significant digits)"
ROUNDED = "a spreadsheet number is a double (15 to 17 significant digits); decimals with more"

READ_AS = {  # the Parquet type a column comes back with when the sheet alone decides (no mapping)
    "c_int": "int64", "c_bigint": "int64", "c_ubigint": "double", "c_dec38": "double", "c_dec12": "double",
    "c_float": "double", "c_bool": "bool", "c_text": "string", "c_long": "string", "c_unicode": "string",
    "c_date": "date32[day]", "c_ts": "timestamp[us]", "c_tstz": "timestamp[us]", "c_json": "string",
    "c_bytes": "string", "c_uuid": "string",
}
REFUSED = {  # column -> {id: what the reject says}
    "c_bigint": {i: "has more digits than a spreadsheet number keeps (integers up to 2**53); map it as text"
                 for i in (1, 2, 5)},
    "c_float": {7: "a spreadsheet cell cannot hold nan", 8: "a spreadsheet cell cannot hold inf",
                9: "a spreadsheet cell cannot hold -inf"},
    "c_long": {2: "798,960 characters, more than the 50,000 a spreadsheet cell holds"},
}
WARNED = {  # column -> the run report's warnings about its values (beside the generic ones)
    "c_ubigint": [DOUBLE_NOTE, ROUNDED], "c_dec38": [DOUBLE_NOTE, ROUNDED], "c_dec12": [DOUBLE_NOTE],
    "c_text": [EMPTY], "c_long": [EMPTY], "c_unicode": [EMPTY], "c_bytes": ["written as base64 text", EMPTY],
    "c_ts": [MICROS], "c_tstz": ["written as UTC date-times (a sheet's dates have no time zone)", MICROS],
}
# A double serial number past 2079 (or before 1720) keeps a timestamp to a few microseconds only.
FAR = {("c_ts", 2): dt.datetime(9999, 12, 31, 23, 59, 59, 999960),
       ("c_tstz", 1): dt.datetime(1, 1, 1, 6, 30, 0, 3),
       ("c_tstz", 2): dt.datetime(9999, 12, 31, 23, 59, 59, 999960)}


def sheet_value(name: str, row: dict):
    """What a sheet gives back for the fixture value, as the type map says."""
    value, logical = row[name], LOGICAL[name]
    if (name, row["id"]) in FAR:
        return FAR[name, row["id"]]
    if value is None or value == "" or value == b"":
        return None  # an empty text is an empty cell
    if logical.startswith("decimal"):
        return float(value)
    if logical == "timestamptz":
        return value.astimezone(UTC).replace(tzinfo=None)
    if logical == "bytes":
        return base64.b64encode(value).decode("ascii")
    return value


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> LocalSheets:
    local = start_local_sheets(tmp_path_factory.mktemp("sheets"))
    local.server.create("book", sheets={"Sheet1": []})
    try:
        yield local
    finally:
        local.server.close()


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Place:
    there = Place(tmp_path_factory.mktemp("fidelity"))
    seed("parquet", there)
    return there


def run(place: Place, name: str, source: str, destination: str, columns: str) -> portl.RunReport:
    path = place.folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nsource: {source}\ndestination: {destination}\nmapping: {{columns: {columns}}}\n")
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(place.folder / "state")))
    finally:
        the_plan.close()


def about_values(report: portl.RunReport) -> list[str]:
    return [w for w in report.warnings if not w.startswith("a Parquet file") and "source rows were rejected" not in w]


def into_sheet(sheets: LocalSheets, place: Place, name: str) -> portl.RunReport:
    return run(place, f"into_{name}", "{type: parquet, path: src.parquet}", sheets.destination("book", name),
               f"{{id: {{}}, {name}: {{}}}}")


def rejected(place: Place, job: str) -> dict[int, str]:
    path = place.folder / f"{job}.rejects.csv"
    if not path.exists():
        return {}
    csv.field_size_limit(1 << 24)
    with path.open(newline="") as f:
        return {ROWS[int(r["record"]) - 1]["id"]: r["error"] for r in csv.DictReader(f)}


@pytest.mark.parametrize("name", NAMES[1:])
def test_every_value_goes_through_a_sheet_and_back(sheets, place, name):
    into = into_sheet(sheets, place, name)
    refused = REFUSED.get(name, {})
    assert (into.counts.read, into.counts.inserted, into.counts.rejected) == (len(ROWS), len(ROWS) - len(refused),
                                                                               len(refused))
    assert rejected(place, f"into_{name}") == {
        i: f"refused by the destination: column {name}: {ROWS[i - 1][name]} {why}" if "digits" in why
        else f"refused by the destination: column {name}: {why}" for i, why in refused.items()}
    warned = about_values(into)
    assert len(warned) == len(WARNED.get(name, [])) and all(
        w.startswith(f"column {name}: ") and part in w for w, part in zip(warned, WARNED.get(name, []))), warned

    back = run(place, f"back_{name}", sheets.destination("book", name),
               f"{{type: parquet, path: back_{name}.parquet}}", f"{{id: {{}}, {name}: {{}}}}")
    assert (back.counts.read, back.counts.rejected, about_values(back)) == (len(ROWS) - len(refused), 0, [])
    table = pq.read_table(place.folder / f"back_{name}.parquet")
    assert str(table.schema.field(name).type) == READ_AS[name]
    wanted = [(row["id"], sheet_value(name, row)) for row in ROWS if row["id"] not in refused]
    got = [(r["id"], r[name]) for r in table.to_pylist()]
    assert got == wanted, [(w, g) for w, g in zip(wanted, got) if w != g][:3]


OVERRIDES = {  # column -> the mapping's type read back with, and the Parquet type it gives
    "c_int": ("int", "int32"),
    "c_dec12": ("'decimal(12,2)'", "decimal128(12, 2)"),
    "c_dec38": ("'decimal(38,10)'", "decimal128(38, 10)"),
    "c_ubigint": ("'decimal(20,0)'", "decimal128(20, 0)"),
    "c_tstz": ("timestamptz", "timestamp[us, tz=UTC]"),
    "c_json": ("json", "extension<arrow.json>"),
    "c_uuid": ("uuid", "extension<arrow.uuid>"),
    "c_bytes": ("bytes, format: base64", "binary"),
}
# Decimals with more significant digits than a double: the sheet has the rounded double.
LOST_DIGITS = {("c_dec38", 1): Decimal("-1234567890123456900000000000.0000000000"),
               ("c_dec38", 2): Decimal("9876543210987655000000000000.0000000000"),
               ("c_ubigint", 2): Decimal("18446744073709552000"),
               ("c_ubigint", 3): Decimal("9223372036854776000"),
               ("c_ubigint", 5): Decimal("18446744073709552000")}


def typed_value(name: str, row: dict):
    """The fixture value read back with the mapping's type: exact where the sheet kept its digits."""
    value = row[name]
    if (name, row["id"]) in LOST_DIGITS:
        return LOST_DIGITS[name, row["id"]]
    if (name, row["id"]) in FAR:
        return FAR[name, row["id"]].replace(tzinfo=UTC)
    if value is None or value == b"":
        return None
    if name == "c_uuid":
        return uuid.UUID(value)
    if name == "c_tstz":
        return value.astimezone(UTC)
    return value


@pytest.mark.parametrize("name", OVERRIDES)
def test_the_mapping_gives_back_the_types_a_sheet_does_not_keep(sheets, place, name):
    if not (place.folder / f"into_{name}.yaml").exists():
        into_sheet(sheets, place, name)
    logical, arrow = OVERRIDES[name]
    back = run(place, f"typed_{name}", sheets.destination("book", name),
               f"{{type: parquet, path: typed_{name}.parquet}}", f"{{id: {{}}, {name}: {{type: {logical}}}}}")
    assert back.counts.rejected == 0
    table = pq.read_table(place.folder / f"typed_{name}.parquet")
    assert str(table.schema.field(name).type) == arrow
    got = {r["id"]: r[name] for r in table.to_pylist()}
    wanted = {row["id"]: typed_value(name, row) for row in ROWS}
    if name == "c_json":
        got = {i: v if v is None else json.loads(v) for i, v in got.items()}
        wanted = {i: v if v is None else json.loads(v) for i, v in wanted.items()}
    problems = {i: (wanted[i], got[i]) for i in got if got[i] != wanted[i]
                or (isinstance(wanted[i], Decimal) and wanted[i].as_tuple() != got[i].as_tuple())}
    assert sorted(got) == [row["id"] for row in ROWS] and not problems, problems


# --- the conversions fixed on the way, one by one ----------------------------------------------------


def test_a_whole_number_past_int64_in_a_float_column_is_read_as_a_double():
    array, bad = column_array([0, 18446744073709551616, 0.5, None], pa.float64(), None)
    assert (array.to_pylist(), bad) == ([0.0, 1.8446744073709552e19, 0.5, None], {})


@pytest.mark.parametrize("when", [dt.datetime(1, 1, 1), dt.datetime(1500, 6, 1, 12, 0, 0, 250000),
                                  dt.datetime(2024, 2, 29, 13, 45, 30, 123456), dt.datetime(1970, 1, 1, 0, 0, 0, 1),
                                  dt.datetime(9999, 12, 31, 23, 59, 59, 999999)])
def test_a_timestamp_of_any_year_is_written_as_a_serial_of_its_own_day(when):
    changed: list[str] = []
    cell, = column_cells("t", pa.array([when], pa.timestamp("us")), changed)
    serial = cell["userEnteredValue"]["numberValue"]
    back = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=serial_micros(serial))
    assert back.date() == when.date() and abs(back - when) < dt.timedelta(microseconds=50)
    assert (back == when) == (not changed)


def test_a_serial_past_the_year_9999_rejects_its_row_when_read_as_a_timestamp():
    array, bad = column_array([45351.5, 2958466.5, None], pa.timestamp("us"), "DATE_TIME")
    assert array.to_pylist() == [dt.datetime(2024, 2, 29, 12), None, None]
    assert bad == {1: "not a date-time of the years 1 to 9999: 2958466.5"}


def test_a_serial_past_the_year_9999_rejects_its_row_when_read_as_a_date():
    array, bad = column_array([-693593, 2958465.75, 2958466, 1e300, None], pa.date32(), "DATE")
    assert array.to_pylist() == [dt.date(1, 1, 1), dt.date(9999, 12, 31), None, None, None]
    assert bad == {2: "not a date of the years 1 to 9999: 2958466", 3: "not a date of the years 1 to 9999: 1e+300"}


def test_values_a_sheet_holds_changed_are_warned_of_once_per_column():
    changed: list[str] = []
    column_cells("note", pa.array(["a", "", None]), changed)
    column_cells("amount", pa.array([Decimal("1.10"), Decimal("12345678901234567.89")], pa.decimal128(20, 2)), changed)
    column_cells("fine", pa.array([Decimal("1.10"), None], pa.decimal128(12, 2)), changed)
    assert changed == [f"column note: {EMPTY}",
                       f"column amount: {ROUNDED}, such as 12345678901234567.89, were written rounded "
                       "(1.2345678901234568e+16)"]
