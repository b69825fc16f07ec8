"""MySQL column types as Portl logical types, and MySQL's text form of values as Arrow arrays.

Values are read as the text the server sends (no per-value Python conversion in the driver) and
turned into Arrow arrays one column at a time with ``pyarrow.compute``. The type map:

==================================  ==============================================================
MySQL / MariaDB                     logical type
==================================  ==============================================================
tinyint(1), bool                    bool (any value other than 0 reads as true)
tinyint, smallint, mediumint, int   int (``int unsigned`` is bigint: it exceeds int32)
bigint                              bigint
bigint unsigned                     decimal(20,0): values above 2^63-1 would not fit a bigint
decimal(p,s), p <= 38               decimal(p,s); above 38 digits (Arrow's decimal128): text
float, double                       float
char, varchar, *text, enum, set     text
time                                text (MySQL times run from -838:59:59 to 838:59:59)
date                                date
datetime, timestamp                 timestamp (timestamp columns are read in UTC)
json (MariaDB: longtext with a      json
json_valid check)
uuid (MariaDB)                      uuid
binary, varbinary, *blob            bytes
year                                int; ``year(2)`` (MariaDB) as its four-digit year (70 is 1970, 69 is 2069)
bit(n)                              bigint (bit(64): decimal(20,0)), the bits as a number
geometry types                      text (WKT)
==================================  ==============================================================

MySQL's "zero" dates (``0000-00-00``, ``2024-00-00``, ``0000-00-00 00:00:00``) are not dates,
nor are the impossible ones (``2024-02-30``) that MySQL before 5.0.2, or the ``ALLOW_INVALID_DATES``
mode, let in; both are read as NULL and counted, so the run report can say how many became NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.hextext import unhex
from portl.types import LogicalType, arrow_field

_INT32 = {"tinyint", "smallint", "mediumint", "int", "integer", "year"}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "time", "long varchar"}
_BYTES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "long varbinary"}
_GEOMETRY = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
             "geometrycollection", "geomcollection"}
_ZERO_DATE = r"^(?:0000-|\d{4}-00-|\d{4}-\d{2}-00)"  # year 0 is no date either (nor a Python one)


@dataclass(frozen=True)
class Column:
    """One column of a MySQL table or result, and how its text becomes an Arrow array.

    ``kind`` names the conversion: ``int32``, ``int64``, ``uint64`` (to decimal(20,0)),
    ``decimal``, ``float``, ``bool``, ``date``, ``timestamp``, ``text``, ``bytes``, ``bit``,
    ``year2`` (a two-digit ``year(2)``: the server shows 1970 as 70).
    """

    name: str
    logical: LogicalType
    kind: str
    nullable: bool = True
    declared: str = ""
    charset: str | None = None
    note: str | None = None

    @property
    def field(self) -> pa.Field:
        return arrow_field(self.name, self.logical, self.nullable)


def column_of_schema(name: str, data_type: str, column_type: str, precision: int | None, scale: int | None,
                     nullable: bool = True, charset: str | None = None, is_json: bool = False) -> Column:
    """A column from ``information_schema.columns`` (DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION...)."""
    t, full = data_type.lower(), column_type.lower()
    unsigned = "unsigned" in full

    def make(logical: str, kind: str, note: str | None = None, p: int | None = None, s: int | None = None) -> Column:
        return Column(name, LogicalType(logical, p, s), kind, nullable, column_type, charset, note)

    if is_json or t == "json":
        return make("json", "text")
    if t == "uuid":
        return make("uuid", "text")
    if t == "tinyint" and full.startswith("tinyint(1)") and not unsigned:
        return make("bool", "bool")
    if t == "int" and unsigned:
        return make("bigint", "int64")
    if t == "year" and full.startswith("year(2)"):
        return make("int", "year2")
    if t in _INT32:
        return make("int", "int32")
    if t == "bigint":
        if unsigned:
            return make("decimal", "uint64", f"column {name} is bigint unsigned: read as decimal(20,0) so that "
                        "values above 2^63-1 survive", 20, 0)
        return make("bigint", "int64")
    if t in ("decimal", "numeric", "fixed"):
        p, s = int(precision or 10), int(scale or 0)
        if p > 38:
            return make("text", "text", f"column {name} is {column_type}: more digits than Arrow's 38, read as text")
        return make("decimal", "decimal", None, p, s)
    if t in ("float", "double", "real", "double precision"):
        return make("float", "float")
    if t == "date":
        return make("date", "date")
    if t in ("datetime", "timestamp"):
        return make("timestamp", "timestamp")
    if t == "bit":
        width = int(precision or 1)
        if width == 64:
            return make("decimal", "bit", None, 20, 0)
        return make("bigint", "bit")
    if t in _BYTES:
        return make("bytes", "bytes")
    if t in _GEOMETRY:
        return make("text", "geometry")
    if t in _TEXT:
        return make("text", "text")
    return make("text", "text", f"column {name} has type {column_type}, read as text")


# Field types of the client protocol (pymysql.constants.FIELD_TYPE), for query results.
_PROTOCOL_TYPES = {
    1: "tinyint", 2: "smallint", 3: "int", 9: "mediumint", 8: "bigint", 13: "year",
    0: "decimal", 246: "decimal", 4: "float", 5: "double", 10: "date", 14: "date", 7: "timestamp", 12: "datetime",
    11: "time", 16: "bit", 245: "json", 247: "enum", 248: "set", 255: "geometry",
}
_BINARY_CHARSET = 63
_UNSIGNED_FLAG = 32


def column_of_result(name: str, type_code: int, length: int, decimals: int, flags: int, charsetnr: int) -> Column:
    """A column of a query's result, from the protocol's field description."""
    unsigned = bool(flags & _UNSIGNED_FLAG)
    data_type = _PROTOCOL_TYPES.get(type_code)
    if data_type is None:  # strings and blobs: binary when their character set is "binary"
        data_type = "varbinary" if charsetnr == _BINARY_CHARSET else "varchar"
    column_type = data_type
    precision = None
    if data_type == "tinyint" and length == 1:
        column_type = "tinyint(1)"
    if data_type == "decimal":  # the display length counts the sign and the decimal point
        precision = max(1, decimals, length - (1 if decimals else 0) - (0 if unsigned else 1))
    if data_type == "bit":
        precision = length
    if data_type == "year" and length == 2:
        column_type = "year(2)"
    if unsigned:
        column_type += " unsigned"
    column = column_of_schema(name, data_type, column_type, precision, decimals)
    if column.kind == "geometry":  # a query returns geometry as WKB bytes, not WKT
        return Column(name, LogicalType("bytes"), "bytes", declared="geometry")
    return column


# --- text to Arrow ---------------------------------------------------------------------------


def to_arrow(column: Column, text: pa.Array) -> tuple[pa.Array, dict[str, int]]:
    """The Arrow array of one column from its values as text (``bytes`` columns: as binary, or
    as hex text when ``column.kind`` is read packed). Returns the array and how many values
    became NULL because they are no dates, by reason (``"zero"``, ``"impossible"``)."""
    kind = column.kind
    target = column.field.type
    if kind in ("text", "geometry"):
        return _as_string(text), {}
    if kind == "bytes":
        return (text if pa.types.is_binary(text.type) else unhex(_as_string(text))), {}
    text = _as_string(text)
    if kind in ("int32", "int64", "float", "decimal"):
        return pc.cast(text, target), {}
    if kind in ("uint64", "bit"):
        return pc.cast(text, target), {}
    if kind == "bool":
        return pc.not_equal(pc.cast(text, pa.int16()), 0), {}
    if kind == "year2":
        return _four_digit_years(pc.cast(text, pa.int32())), {}
    if kind in ("date", "timestamp"):
        return _dates(text, pa.date32() if kind == "date" else pa.timestamp("us"))
    raise ValueError(f"unknown column kind {kind!r}")


def _dates(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, dict[str, int]]:
    """Dates or timestamps from MySQL's text, zero and impossible dates as NULL."""
    nulled = {}
    zero = pc.match_substring_regex(text, _ZERO_DATE)
    nulled["zero"] = _count(zero)
    if nulled["zero"]:
        text = pc.if_else(zero, pa.scalar(None, pa.string()), text)
    try:
        return pc.cast(text, target), nulled
    except pa.ArrowInvalid:
        # Rare, so checked only now: a day its month does not have. Parsing rolls it over into
        # the next month (2024-02-30 becomes 2024-03-01), so it does not print back the same.
        day = pc.utf8_slice_codeunits(text, 0, 10)
        printed = pc.strftime(pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True), format="%Y-%m-%d")
        impossible = pc.and_(text.is_valid(), pc.fill_null(pc.not_equal(printed, day), True))
        nulled["impossible"] = _count(impossible)
        if not nulled["impossible"]:
            raise
        return pc.cast(pc.if_else(impossible, pa.scalar(None, pa.string()), text), target), nulled


def _four_digit_years(years: pa.Array) -> pa.Array:
    """A ``year(2)`` column's years in full. A table is read with ``YEAR(column)``, which gives
    them so; a query's result shows them as 0-99: 70-99 are 1970-1999 and 00-69 are 2000-2069."""
    short = pc.less(years, 100)
    if not pc.any(short).as_py():
        return years
    century = pc.if_else(pc.less(years, 70), 2000, 1900)
    return pc.if_else(short, pc.add(years, century), years)


def _count(mask: pa.Array) -> int:
    return pc.sum(pc.cast(mask, pa.int64())).as_py() or 0


def _as_string(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type):
        return values
    return pc.cast(values, pa.string())


def finite_floats(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[str]]:
    """The batch with NaN and infinities as NULL, which a MySQL DOUBLE cannot hold (the server
    refuses them), and the names of the columns that had any."""
    columns, changed = list(batch.columns), []
    for i, f in enumerate(batch.schema):
        if pa.types.is_floating(f.type):
            bad = pc.invert(pc.is_finite(columns[i]))
            if pc.any(bad).as_py():
                columns[i] = pc.if_else(bad, pa.scalar(None, f.type), columns[i])
                changed.append(f.name)
    return (pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch), changed
