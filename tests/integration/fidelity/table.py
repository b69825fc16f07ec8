"""The fixture table: one column per logical type (two for decimals and for text), one row per
kind of edge, and a row of NULLs.

Values are plain Python: ``Decimal`` with the scale the column declares, aware datetimes for
``timestamptz`` (in offsets other than UTC), JSON as the text of a document, bytes as ``bytes``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Column:
    """A fixture column and its logical type, as a job file would name it."""

    name: str
    logical: str


COLUMNS = (
    Column("id", "int"),
    Column("c_int", "int"),
    Column("c_bigint", "bigint"),
    Column("c_ubigint", "decimal(20,0)"),   # MySQL's bigint unsigned, as Portl reads it
    Column("c_dec38", "decimal(38,10)"),
    Column("c_dec12", "decimal(12,2)"),
    Column("c_float", "float"),
    Column("c_bool", "bool"),
    Column("c_text", "text"),
    Column("c_long", "text"),
    Column("c_unicode", "text"),
    Column("c_date", "date"),
    Column("c_ts", "timestamp"),
    Column("c_tstz", "timestamptz"),
    Column("c_json", "json"),
    Column("c_bytes", "bytes"),
    Column("c_uuid", "uuid"),
)
NAMES = tuple(c.name for c in COLUMNS)
LOGICAL = {c.name: c.logical for c in COLUMNS}

_PIECE = "Lorem ipsum dolor sit amet, Zoë Ñandú, 李小龙, 𝄞😀; "
# Just over a megabyte (in UTF-8) of text whose characters take one to four bytes each.
LONG_TEXT = _PIECE * (2**20 // len(_PIECE.encode()) + 1)

# Text that each file format and bulk path has to escape: the delimiters of CSV, COPY and
# LOAD DATA, their NULL markers, a backslash before a letter, and line breaks of both kinds.
ESCAPES = 'comma, "double" \'single\'\ttab\nnewline\r\nCRLF \\N \\ back\\slash NULL'

NAN, INF = math.nan, math.inf


def _tz(hours: int, minutes: int = 0) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours, minutes=minutes))


def _row(id_: int, **values) -> dict:
    row = dict.fromkeys(NAMES)
    row.update(id=id_, **values)
    return row


# decimal(38,10) gets 38 digits, but not the largest value 9999999999999999999999999999.9999999999:
# SQLite (15 significant digits) would hold that as 1e28, which no longer fits the column.
ROWS = (
    _row(1,  # the smallest values, the empty ones
         c_int=-2147483648, c_bigint=-9223372036854775808, c_ubigint=Decimal("0"),
         c_dec38=Decimal("-1234567890123456789012345678.9012345678"), c_dec12=Decimal("-9999999999.99"),
         c_float=-1.7976931348623157e308, c_bool=False, c_text="", c_long="", c_unicode="𝄞😀",
         c_date=dt.date(1, 1, 1), c_ts=dt.datetime(1, 1, 1, 0, 0, 0),
         c_tstz=dt.datetime(1, 1, 1, 12, 0, 0, tzinfo=_tz(5, 30)),
         c_json='{"a": {"b": [1, 2.5, null, true, "x"]}, "": {}}', c_bytes=b"",
         c_uuid="00000000-0000-0000-0000-000000000000"),
    _row(2,  # the largest values, the megabyte of text
         c_int=2147483647, c_bigint=9223372036854775807, c_ubigint=Decimal("18446744073709551615"),
         c_dec38=Decimal("9876543210987654321098765432.1098765432"), c_dec12=Decimal("9999999999.99"),
         c_float=1.7976931348623157e308, c_bool=True, c_text=ESCAPES, c_long=LONG_TEXT,
         c_unicode="Zoë Ñandú 李小龙 e\u0301 \u200b 𝄞😀🇬🇧",
         c_date=dt.date(9999, 12, 31), c_ts=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
         c_tstz=dt.datetime(9999, 12, 31, 20, 59, 59, 999999, tzinfo=_tz(-3)),
         c_json='[1, "two", {"three": [3, {"four": null}]}, -0.5, 1e-7]',
         c_bytes=b"\xff\xfe\x00\x80 not utf-8 \x00\xc3\x28\x00",
         c_uuid="ffffffff-ffff-ffff-ffff-ffffffffffff"),
    _row(3,  # trailing zeros, microseconds, a leap day
         c_int=0, c_bigint=0, c_ubigint=Decimal("9223372036854775808"),
         c_dec38=Decimal("1.5000000000"), c_dec12=Decimal("12.30"), c_float=0.1, c_bool=True,
         c_text="NULL", c_long="short", c_unicode="\\N",
         c_date=dt.date(2024, 2, 29), c_ts=dt.datetime(2024, 2, 29, 13, 45, 30, 123456),
         c_tstz=dt.datetime(2024, 3, 10, 2, 30, 0, 123456, tzinfo=_tz(-5)),
         c_json='{"emoji": "😀 𝄞", "nested": {"list": [1, 2, 3], "deep": {"k": null}}, "num": 1.25}',
         c_bytes=b"\x00\x00\x01\x00", c_uuid="9f1c2f1e-7b5a-4c3e-8d2a-0123456789ab"),
    _row(4),  # NULL in every column
    _row(5,  # values one step inside the edges
         c_int=-1, c_bigint=9007199254740993, c_ubigint=Decimal("18446744073709551614"),
         c_dec38=Decimal("-0.0000000001"), c_dec12=Decimal("0.00"), c_float=5e-324, c_bool=False,
         c_text="  leading and trailing spaces  ", c_long=" ", c_unicode="",
         c_date=dt.date(1970, 1, 1), c_ts=dt.datetime(1970, 1, 1, 0, 0, 0, 1),
         c_tstz=dt.datetime(2000, 1, 1, 0, 0, 0, tzinfo=_tz(14)),
         c_json='"just a string"', c_bytes=bytes(range(256)), c_uuid="123e4567-e89b-12d3-a456-426614174000"),
    _row(6, c_float=2.2250738585072014e-308, c_json="[]", c_dec12=Decimal("-0.01")),
    _row(7, c_float=NAN),
    _row(8, c_float=INF),
    _row(9, c_float=-INF),
)
