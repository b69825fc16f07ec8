"""What each fixture value must be after a (source, destination) pair, as docs/connectors.md says.

A value goes through two documented steps:

1. :func:`carried`: the source reads it into the engine, with the logical type the source's type
   map gives. Every source keeps every value, except where the system could not hold it in the
   first place: SQLite keeps 15 significant digits of a wide decimal and no NaN, MySQL keeps no
   time zone (its ``DATETIME(6)`` holds the UTC time, read as a ``timestamp``) and no NaN or
   infinity.
2. :func:`stored`: the destination writes it, and its own driver reads it back: CSV as the text
   Portl writes, SQLite in its storage classes, the servers and Parquet as typed values.

:func:`mismatches` compares a destination's rows with the expectation, column by column.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from decimal import Decimal

from tests.integration.fidelity.table import LOGICAL, NAMES, ROWS

UTC = dt.timezone.utc
SQLITE_EXACT_DIGITS = 15


def decimal_shape(logical: str) -> tuple[int, int]:
    precision, scale = logical[len("decimal("):-1].split(",")
    return int(precision), int(scale)


def _non_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


# --- step 1: the source ----------------------------------------------------------------------------


def carried(source: str, name: str, value) -> tuple[str, object]:
    """The logical type and value of column ``name`` as the engine gets it from ``source``."""
    logical = LOGICAL[name]
    if value is None:
        return _carried_type(source, logical), None
    if source == "sqlite":
        if logical.startswith("decimal") and decimal_shape(logical)[0] > SQLITE_EXACT_DIGITS:
            # SQLite keeps the number as a REAL; Portl reads its 15 significant digits back.
            with decimal.localcontext() as context:
                context.prec = 80
                digits = Decimal(format(float(value), f".{SQLITE_EXACT_DIGITS}g"))
                value = digits.quantize(Decimal(1).scaleb(-decimal_shape(logical)[1]), rounding=decimal.ROUND_HALF_UP)
        if isinstance(value, float) and math.isnan(value):
            value = None  # SQLite stores NaN as NULL
    if source == "mysql":
        if logical == "timestamptz":
            value = value.astimezone(UTC).replace(tzinfo=None)
        if _non_finite(value):
            value = None  # a DOUBLE holds neither NaN nor infinities
    return _carried_type(source, logical), value


def _carried_type(source: str, logical: str) -> str:
    if source == "mysql" and logical == "timestamptz":
        return "timestamp"
    if source == "sqlite" and logical == "int":
        return "bigint"  # SQLite's integers are 64-bit: INTEGER reads as bigint
    return logical


# --- step 2: the destination -----------------------------------------------------------------------


def stored(destination: str, logical: str, value):
    """``value`` of ``logical`` type as the destination's own driver reads it back."""
    if value is None:
        return None
    return {"csv": _csv_text, "parquet": _parquet, "sqlite": _sqlite, "postgres": _postgres,
            "mysql": _mysql}[destination](logical, value)


def _csv_text(logical: str, value) -> str:
    """The text Portl writes: ISO dates and timestamps (a timestamptz in UTC, with a Z), decimals
    with their scale, floats in their shortest exact form, bytes in base64."""
    if logical == "bool":
        return "true" if value else "false"
    if logical == "bytes":
        return base64.b64encode(value).decode("ascii")
    if logical.startswith("decimal"):
        return format(value, "f")
    if logical == "float":
        return repr(value)
    if logical == "timestamp":
        return value.isoformat(sep=" ", timespec="microseconds")
    if logical == "timestamptz":
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + "Z"
    return str(value)


def _parquet(logical: str, value):
    if logical == "timestamptz":
        return value.astimezone(UTC)
    return value


def _sqlite(logical: str, value):
    """SQLite's storage classes: decimals as numbers (see :func:`normalised`), booleans as 0/1,
    dates and timestamps as ISO text (a timestamptz in UTC with +00:00), NaN as NULL."""
    if logical.startswith("decimal"):
        return float(value)
    if logical == "bool":
        return int(value)
    if logical == "float" and math.isnan(value):
        return None
    if logical == "date":
        return value.isoformat()
    if logical == "timestamp":
        return value.isoformat(sep=" ", timespec="microseconds")
    if logical == "timestamptz":
        return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
    return value


def _postgres(logical: str, value):
    if logical == "timestamptz":
        return value.astimezone(UTC)
    return value


def _mysql(logical: str, value):
    """MySQL keeps a timestamptz as its UTC time in a DATETIME(6), and NaN or infinity as NULL."""
    if logical == "timestamptz":
        return value.astimezone(UTC).replace(tzinfo=None)
    if _non_finite(value):
        return None
    return value


# --- the destination's column types ----------------------------------------------------------------

_CREATED = {  # what a table or file Portl creates declares for each logical type (decimals below)
    "parquet": {"int": "int32", "bigint": "int64", "float": "double", "bool": "bool", "text": "string",
                "date": "date32[day]", "timestamp": "timestamp[us]", "timestamptz": "timestamp[us, tz=UTC]",
                "json": "extension<arrow.json>", "bytes": "binary", "uuid": "extension<arrow.uuid>"},
    "sqlite": {"int": "INTEGER", "bigint": "BIGINT", "float": "REAL", "bool": "BOOLEAN", "text": "TEXT",
               "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "json": "JSONTEXT",
               "bytes": "BLOB", "uuid": "UUID"},
    "postgres": {"int": "integer", "bigint": "bigint", "float": "double precision", "bool": "boolean", "text": "text",
                 "date": "date", "timestamp": "timestamp without time zone",
                 "timestamptz": "timestamp with time zone", "json": "jsonb", "bytes": "bytea", "uuid": "uuid"},
    "mysql": {"int": "int(11)", "bigint": "bigint(20)", "float": "double", "bool": "tinyint(1)", "text": "longtext",
              "date": "date", "timestamp": "datetime(6)", "timestamptz": "datetime(6)",
              "json": "longtext",  # MariaDB's JSON is LONGTEXT with a json_valid check; MySQL says json
              "bytes": "longblob", "uuid": "char(36)"},
}
_DECIMAL = {"parquet": "decimal128({p}, {s})", "sqlite": "DECIMAL({p},{s})", "postgres": "numeric({p},{s})",
            "mysql": "decimal({p},{s})"}


def declared_type(destination: str, logical: str) -> set[str]:
    """The column types the destination may declare for ``logical``."""
    if destination == "csv":
        return {"text"}
    if logical.startswith("decimal"):
        p, s = decimal_shape(logical)
        return {_DECIMAL[destination].format(p=p, s=s)}
    found = {_CREATED[destination][logical]}
    return found | {"json"} if destination == "mysql" and logical == "json" else found


# --- the run report ----------------------------------------------------------------------------------


NOT_ABOUT_VALUES = ["a Parquet file cannot be continued"]
"""Warnings of the run report that say nothing about values."""


def warnings(source: str, destination: str) -> list[str]:
    """Texts the run report's warnings must contain for the conversions of this pair."""
    out = []
    logicals = {name: carried(source, name, None)[0] for name in NAMES}
    floats = [v for v in (carried(source, "c_float", row["c_float"])[1] for row in ROWS) if isinstance(v, float)]
    if destination == "mysql":
        if logicals["c_tstz"] == "timestamptz":
            out.append("column c_tstz: MySQL's DATETIME(6) keeps no time zone")
        if any(not math.isfinite(v) for v in floats):
            out.append("NaN or infinite values became NULL in column c_float: MySQL's DOUBLE cannot hold them")
    if destination == "sqlite":
        for name, logical in logicals.items():
            if logical.startswith("decimal") and decimal_shape(logical)[0] > SQLITE_EXACT_DIGITS:
                out.append(f"column {name}: SQLite stores {logical} as a floating-point number")
        if any(math.isnan(v) for v in floats):
            out.append("NaN values became NULL in column c_float: SQLite cannot hold NaN")
    return out


# --- comparing -----------------------------------------------------------------------------------------


def canonical_json(text: str) -> str:
    """A JSON document in one spelling: keys sorted, Python's number and string forms."""
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)


def normalised(destination: str, logical: str, declared: str, value):
    """A read-back value in the form :func:`stored` describes, where the driver's form differs
    without the value differing: MySQL's TINYINT(1) as a bool, SQLite numbers as floats, aware
    timestamps in UTC."""
    if value is None:
        return None
    if destination == "mysql" and declared.lower().startswith("tinyint(1)"):
        return bool(value)
    if destination == "sqlite" and logical.startswith("decimal") and isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def same(expected, actual) -> bool:
    """Equal in value and in kind: a bool is not 1, 12.30 is not 12.3, NaN equals NaN."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        return (math.isnan(expected) and math.isnan(actual)) or expected == actual
    if isinstance(expected, Decimal):
        return expected.as_tuple() == actual.as_tuple()
    if isinstance(expected, dt.datetime):
        return (expected.tzinfo is None) == (actual.tzinfo is None) and expected == actual
    return expected == actual


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 90 else f"{text[:60]}... ({len(value) if hasattr(value, '__len__') else '?'} long)"


def mismatches(source: str, destination: str, source_rows: list[dict], actual_rows: list[dict],
               declared: dict[str, str]) -> list[str]:
    """One line per column whose values differ from the expectation, naming each differing row."""
    problems = []
    ids = [r["id"] for r in source_rows]
    got_ids = [normalised(destination, "int", "", r.get("id")) for r in actual_rows]
    if destination == "csv":
        got_ids = [int(i) for i in got_ids]
    if got_ids != ids:
        return [f"rows: expected ids {ids}, found {got_ids}"]
    compare_json = "postgres" in (source, destination)
    for name in NAMES:
        if actual_rows and name not in actual_rows[0]:
            problems.append(f"{name}: the destination has no such column")
            continue
        wanted = declared_type(destination, carried(source, name, None)[0])
        if declared.get(name) not in wanted:
            problems.append(f"{name}: declared {declared.get(name)!r}, expected {' or '.join(sorted(wanted))}")
        differing = []
        for row, got in zip(source_rows, actual_rows):
            logical, value = carried(source, name, row[name])
            expected = stored(destination, logical, value)
            actual = normalised(destination, logical, declared.get(name, ""), got[name])
            if logical == "json" and compare_json and expected is not None and actual is not None:
                expected, actual = canonical_json(expected), canonical_json(actual)
            if not same(expected, actual):
                differing.append(f"id {row['id']}: expected {shown(expected)}, found {shown(actual)}")
        if differing:
            problems.append(f"{name} ({declared.get(name, '?')}): " + "; ".join(differing))
    return problems
