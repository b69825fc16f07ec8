"""Cells and Arrow: what a column of a sheet is, and how values cross between the two.

Sheets keeps numbers as doubles and dates as *serial numbers*: days since 1899-12-30, the time
of day as the fraction. A cell is a date because its number format says so, not because of its
value, so a column's type comes from the values of a sample of rows (numbers, booleans, text)
and the number formats of its first data rows (DATE, DATE_TIME, TIME).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.types import logical_of

SERIAL_EPOCH_DAYS = 25569
"""1970-01-01 as a serial number: serials count days from 1899-12-30."""
CELL_CHARACTERS = 50_000
"""The most characters one cell holds."""
MAX_CELLS = 10_000_000
"""The most cells one spreadsheet holds, over all its tabs."""
EXACT_INTEGER = 2 ** 53
DAY_MICROS = 86_400_000_000
FIRST_MICROS, LAST_MICROS = -62_135_596_800_000_000, 253_402_300_799_999_999
"""0001-01-01 and 9999-12-31 23:59:59.999999 in microseconds since 1970: a timestamp's range."""
FIRST_DAY, LAST_DAY = -719_162, 2_932_896
"""0001-01-01 and 9999-12-31 in days since 1970: a date's range."""
DATE_FORMAT = {"type": "DATE", "pattern": "yyyy-mm-dd"}
DATE_TIME_FORMAT = {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}
FORMATTED_KINDS = ("DATE", "DATE_TIME", "TIME")


# --- reading -----------------------------------------------------------------------------------

def infer_type(values: list[Any], number_format: str | None) -> pa.DataType:
    """A column's Arrow type from sampled values (``None`` for an empty cell) and the number
    format type of its first data cells (``DATE``, ``DATE_TIME``, ``TIME`` or None)."""
    seen = [v for v in values if v is not None]
    if not seen:
        return pa.string()
    if all(isinstance(v, bool) for v in seen):
        return pa.bool_()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        if number_format == "DATE":
            return pa.date32()
        if number_format == "DATE_TIME":
            return pa.timestamp("us")
        if number_format == "TIME":
            return pa.string()
        if all(float(v).is_integer() and abs(v) < EXACT_INTEGER for v in seen):
            return pa.int64()
        return pa.float64()
    return pa.string()


def _time_text(serial: float) -> str:
    seconds = round((serial % 1) * 86400)
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def number_text(value: Any) -> str:
    """A cell value as text: integral numbers without ``.0``, booleans as Sheets writes them."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_INTEGER:
        return str(int(value))
    return str(value)


def column_array(values: list[Any], t: pa.DataType, number_format: str | None) -> tuple[pa.Array, dict[int, str]]:
    """The Arrow array of a page's column, and the rows whose value does not fit ``t``
    (index -> why); those hold NULL in the array and are rejected by the source."""
    bad: dict[int, str] = {}
    if pa.types.is_string(t):
        if number_format == "TIME":
            return pa.array([None if v is None else _time_text(v) if isinstance(v, (int, float)) and not
                             isinstance(v, bool) else number_text(v) for v in values], pa.string()), bad
        return pa.array([v if v is None or isinstance(v, str) else number_text(v) for v in values]
                        if any(v is not None and not isinstance(v, str) for v in values) else values, pa.string()), bad
    if pa.types.is_boolean(t):
        fitted = _fit(values, lambda v: isinstance(v, bool), bad, "not TRUE or FALSE")
        return pa.array(fitted, pa.bool_()), bad
    numeric = _fit(values, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), bad, "not a number")
    if pa.types.is_int64(t):
        for i, v in enumerate(numeric):
            if v is not None and not (float(v).is_integer() and abs(v) < EXACT_INTEGER):
                bad[i], numeric[i] = "not a whole number", None
        return pa.array([None if v is None else int(v) for v in numeric], pa.int64()), bad
    # A whole number past int64 comes back from the API as an integer: Arrow takes it as a double.
    serials = pa.array([None if v is None else float(v) for v in numeric], pa.float64())
    if pa.types.is_date(t):
        days = [None if v is None else math.floor(v) - SERIAL_EPOCH_DAYS for v in serials.to_pylist()]
        for i, d in enumerate(days):
            if d is not None and not FIRST_DAY <= d <= LAST_DAY:
                bad[i], days[i] = f"not a date of the years 1 to 9999: {values[i]!r}", None
        return pa.array(days, pa.int32()).cast(pa.date32()), bad
    if pa.types.is_timestamp(t):
        micros = [None if v is None else serial_micros(v) for v in serials.to_pylist()]
        for i, m in enumerate(micros):
            if m is not None and not FIRST_MICROS <= m <= LAST_MICROS:
                bad[i], micros[i] = f"not a date-time of the years 1 to 9999: {values[i]!r}", None
        return pa.array(micros, pa.int64()).cast(t), bad
    return serials, bad


def _fit(values: list[Any], fits: Callable[[Any], bool], bad: dict[int, str], why: str) -> list[Any]:
    out = list(values)
    for i, v in enumerate(out):
        if v is not None and not fits(v):
            bad.setdefault(i, f"{why}: {v!r}")
            out[i] = None
    return out


# --- writing -----------------------------------------------------------------------------------

class Refusal(Exception):
    """A value the sheet cannot hold; ``row`` is its index in the batch."""

    def __init__(self, row: int, column: str, value: Any, reason: str):
        super().__init__(reason)
        self.row, self.column, self.value, self.reason = row, column, value, reason


def _serial_dates(array: pa.Array) -> list[Any]:
    days = pc.cast(pc.cast(array, pa.date32()), pa.int32())
    return pc.add(pc.cast(days, pa.float64()), float(SERIAL_EPOCH_DAYS)).to_pylist()


def serial_micros(serial: float) -> int:
    """Microseconds since 1970 of a serial number: whole days and the fraction apart, so the
    time of day keeps every digit the double has."""
    days = math.floor(serial)
    return (days - SERIAL_EPOCH_DAYS) * DAY_MICROS + round((serial - days) * DAY_MICROS)


def _warn_of_rounded(name: str, array: pa.Array, floats: pa.Array, warnings: list[str]) -> None:
    """A warning when a decimal's double does not read back as the same decimal (more
    significant digits than a double keeps)."""
    unit = decimal.Decimal(1).scaleb(-array.type.scale)
    with decimal.localcontext() as context:
        context.prec = 80
        for exact, near in zip(array.to_pylist(), floats.to_pylist()):
            if exact is not None and decimal.Decimal(repr(near)).quantize(unit) != exact:
                warnings.append(f"column {name}: a spreadsheet number is a double (15 to 17 significant digits); "
                                f"decimals with more, such as {exact}, were written rounded ({near!r})")
                return


def _serial(micros: int) -> float:
    """The serial number nearest ``micros``, but never on the next day (a late time of a far
    date would round up to midnight)."""
    days = micros // DAY_MICROS
    serial = SERIAL_EPOCH_DAYS + days + (micros % DAY_MICROS) / DAY_MICROS
    return math.nextafter(serial, -math.inf) if math.floor(serial) > SERIAL_EPOCH_DAYS + days else serial


def _serial_times(name: str, array: pa.Array, warnings: list[str]) -> list[Any]:
    """Serial numbers of timestamps, rounded once. A double keeps microseconds between about
    1720 and 2079 only; a timestamp further out that would read back changed is warned of."""
    t = array.type
    if t.tz:
        array = pc.cast(array, pa.timestamp(t.unit, "UTC")).cast(pa.timestamp(t.unit))
    micros = pc.cast(pc.cast(array, pa.timestamp("us")), pa.int64()).to_pylist()
    serials = [None if m is None else _serial(m) for m in micros]
    moved = [m for m, s in zip(micros, serials) if m is not None and serial_micros(s) != m]
    if moved:
        first = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=moved[0])
        warnings.append(f"column {name}: a spreadsheet's date-time (a double) keeps microseconds only from about "
                        f"1720 to 2079; timestamps outside, such as {first.isoformat(sep=' ')}, were written to the "
                        "nearest few microseconds")
    return serials


def column_cells(name: str, array: pa.Array, warnings: list[str] | None = None) -> list[dict]:
    """The CellData of every value of a column. Raises :class:`Refusal` for the first value the
    sheet cannot hold (too long, not a finite number, an integer past 2**53); values the sheet
    holds changed (an empty text, a timestamp's last microseconds) add a sentence to ``warnings``."""
    warnings = [] if warnings is None else warnings
    t = array.type
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(t):
        array, t = array.dictionary_decode(), t.value_type
    if pa.types.is_date(t):
        return [{} if v is None else {"userEnteredValue": {"numberValue": v}, "userEnteredFormat": {"numberFormat": DATE_FORMAT}}
                for v in _serial_dates(array)]
    if pa.types.is_timestamp(t):
        return [{} if v is None else {"userEnteredValue": {"numberValue": v}, "userEnteredFormat": {"numberFormat": DATE_TIME_FORMAT}}
                for v in _serial_times(name, array, warnings)]
    if pa.types.is_boolean(t):
        return [{} if v is None else {"userEnteredValue": {"boolValue": v}} for v in array.to_pylist()]
    if pa.types.is_integer(t):
        values = array.to_pylist()
        wide = array if pa.types.is_int64(t) else pc.cast(array, pa.int64(), safe=False)
        too_big = pc.fill_null(pc.or_(pc.greater_equal(wide, EXACT_INTEGER), pc.less_equal(wide, -EXACT_INTEGER)), False)
        if pc.any(too_big).as_py():
            row = pc.index(too_big, True).as_py()
            raise Refusal(row, name, values[row], f"column {name}: {values[row]} has more digits than a spreadsheet "
                                                  "number keeps (integers up to 2**53); map it as text")
        return [{} if v is None else {"userEnteredValue": {"numberValue": v}} for v in values]
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        floats = pc.cast(array, pa.float64()) if pa.types.is_decimal(t) else array
        finite = pc.is_finite(floats)
        broken = pc.and_(pc.is_valid(floats), pc.invert(pc.fill_null(finite, True)))
        if pc.any(broken).as_py():
            row = pc.index(broken, True).as_py()
            value = floats[row].as_py()
            raise Refusal(row, name, value, f"column {name}: a spreadsheet cell cannot hold {value}")
        if pa.types.is_decimal(t):
            _warn_of_rounded(name, array, floats, warnings)
        return [{} if v is None else {"userEnteredValue": {"numberValue": v}} for v in floats.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = array
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        text = pa.array([None if v is None else base64.b64encode(v).decode("ascii") for v in array.to_pylist()], pa.string())
    elif logical_of(pa.field(name, t)).name in ("json", "uuid") and not (pa.types.is_list(t) or pa.types.is_struct(t)):
        text = pc.cast(array, pa.string()) if not isinstance(t, pa.ExtensionType) else pa.array(
            [None if v is None else str(v) for v in array.to_pylist()], pa.string())
    else:
        text = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                         for v in array.to_pylist()], pa.string())
    lengths = pc.utf8_length(text)
    too_long = pc.fill_null(pc.greater(lengths, CELL_CHARACTERS), False)
    if pc.any(too_long).as_py():
        row = pc.index(too_long, True).as_py()
        value = text[row].as_py()
        raise Refusal(row, name, value, f"column {name}: {len(value):,} characters, more than the "
                                        f"{CELL_CHARACTERS:,} a spreadsheet cell holds")
    if pc.any(pc.equal(lengths, 0)).as_py():
        warnings.append(f"column {name}: an empty text is an empty cell in a spreadsheet; it was written as one, "
                        "and reads back as NULL")
    return [{} if v is None else {"userEnteredValue": {"stringValue": v}} for v in text.to_pylist()]


def key_text(value: Any) -> str | None:
    """A key value as one text whatever its form: a cell's number and the batch's integer or
    float of the same value match (``1``, ``1.0``), a date matches its serial."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return number_text((value.replace(tzinfo=None) - dt.datetime(1899, 12, 30)).total_seconds() / 86400)
    if isinstance(value, dt.date):
        return number_text(float((value - dt.date(1899, 12, 30)).days))
    if isinstance(value, float) and math.isfinite(value):
        return number_text(value)
    return str(value)


def cell_key_text(cell: dict) -> str | None:
    """``key_text`` of the value in a CellData."""
    entered = cell.get("userEnteredValue")
    if not entered:
        return None
    (_, value), = entered.items()
    return key_text(float(value) if isinstance(value, int) and not isinstance(value, bool) else value)
