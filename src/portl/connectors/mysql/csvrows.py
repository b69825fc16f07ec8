"""Rows of a MySQL table as CSV text built by the server, for the verbatim path.

The server writes each row as one CSV line (one binary value per row, so the driver decodes
nothing): text is always quoted with ``"`` (a quote inside doubled), so an empty string is ``""``
and stays apart from NULL, which is an empty unquoted field; numbers, dates and times are written as
the server writes them, bytes as ``\\x``-prefixed hex (Postgres ``bytea`` text), bits as numbers,
booleans (``tinyint(1)``) as 1 or 0. These are the very texts the packed read turns into Arrow
values (both come from the same ``CONCAT`` conversions), so a destination reading them gets what
the Arrow path would send. Except for dates that are no dates (``0000-00-00``, ``2024-02-30``),
which the Arrow path reads as NULL and counts: the server marks each with the byte 0xFF, which no
UTF-8 text holds, and a block that holds one (see :func:`canonical`) is parsed with
:func:`texts_of` and goes the ordinary way.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from portl.connectors.base import TextFormat
from portl.connectors.mysql.columns import Column
from portl.connectors.mysql.dialect import DIALECT

FORMAT = TextFormat("csv", ",", '"', "")
# One field of a line: quoted text (a quote inside doubled, commas and newlines as they are), or
# a bare value, which holds no comma.
_FIELD = re.compile(rb'"[^"]*(?:""[^"]*)*"|[^,]*')
_UTF8 = {"utf8mb4", "utf8mb3", "utf8", "ascii"}
NO_DATE_MARK = b"\xff"


def csv_row(columns: list[Column]) -> str:
    """The SQL expression of one row as a CSV line (without its newline), as bytes."""
    return "CAST(CONCAT_WS(',', " + ", ".join(_field(c) for c in columns) + ") AS BINARY)"


def _field(column: Column) -> str:
    name = DIALECT.quote(column.name)
    if column.kind == "bytes":
        value = f"CONCAT(CHAR(92), 'x', HEX({name}))"  # CHAR(92) is a backslash whatever the sql_mode
    elif column.kind == "bit":
        value = f"({name} + 0)"
    elif column.kind == "bool":
        value = f"({name} <> 0)"  # what the Arrow path reads: any value but 0 is true
    elif column.kind == "year2":
        value = f"YEAR({name})"  # the year in full: a year(2) shows 1970 as 70
    elif column.kind in ("date", "timestamp"):
        # Zero (0000-00-00, 2024-05-00), in the year 0, or a day its month does not have
        # (2024-02-30): date arithmetic gives NULL for the first and another day for the last.
        # A fifth of the cost of asking MONTH(), DAYOFMONTH() and LAST_DAY().
        no_date = f"NOT (DATE_ADD({name}, INTERVAL 0 DAY) <=> {name}) OR YEAR({name}) = 0"
        value = f"CONCAT(IF({no_date}, UNHEX('FF'), UNHEX('')), {name})"
    elif column.kind in ("text", "geometry"):
        text = f"ST_AsText({name})" if column.kind == "geometry" else name
        if column.kind == "text" and (column.charset or "").lower() not in _UTF8:
            text = f"CONVERT({name} USING utf8mb4)"
        value = f"CONCAT('\"', REPLACE({text}, '\"', '\"\"'), '\"')"
    else:
        value = name
    # Every field is made binary on its own, so that no character set conversion touches the
    # mark (CONCAT_WS would give a row the character set of its text fields, where 0xFF is '?').
    # CONCAT_WS leaves NULL arguments out, which would shift the fields that follow.
    return f"IFNULL(CAST({value} AS BINARY), UNHEX(''))"


def canonical(data: bytes) -> bool:
    """Whether each date of a block of lines is a date (none is marked as no date)."""
    return NO_DATE_MARK not in data


def block(lines: list[bytes]) -> bytes:
    """Fetched lines (one per row) as one block."""
    return b"\n".join(lines) + b"\n"


def field_of(line: bytes, index: int) -> str:
    """Field ``index`` of one CSV line, unquoted. Only the fields before it are scanned, and no
    field has a size limit (Python's csv module stops at 128 KiB; a blob's hex runs to megabytes)."""
    line = bytes(line)
    pos = 0
    for _ in range(index):
        pos = _FIELD.match(line, pos).end() + 1  # past the field and its comma
    field = _FIELD.match(line, pos).group()
    if field.startswith(b'"'):
        field = field[1:-1].replace(b'""', b'"')
    return field.decode("utf-8")


def texts_of(data: bytes, columns: list[Column]) -> list[pa.Array]:
    """A block of CSV lines back as one text array per column, as ``unpack`` gives them: NULL
    for an empty unquoted field, hex without its ``\\x`` for bytes."""
    names = [f"c{i}" for i in range(len(columns))]
    if not canonical(data):
        data = bytes(data).replace(NO_DATE_MARK, b"")  # each such date is read, made NULL and counted
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=len(data) + 1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                                             strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    texts = []
    for name, column in zip(names, columns):
        text = table.column(name).combine_chunks()
        texts.append(pc.utf8_slice_codeunits(text, 2) if column.kind == "bytes" else text)
    return texts
