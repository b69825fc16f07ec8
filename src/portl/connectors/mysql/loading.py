"""Putting one Arrow batch into a MySQL table: ``LOAD DATA LOCAL INFILE`` or multi-row INSERTs.

The LOAD DATA file is built a column at a time with ``pyarrow.compute``, never row by row:
every column becomes text (booleans ``1``/``0``, timestamps ISO in UTC, bytes as hex, decoded
again by ``UNHEX`` in the statement), backslash, tab, newline, carriage return and NUL are
escaped, NULL is ``\\N``, and the columns are joined with tabs and the rows with newlines.

``LOAD DATA LOCAL`` never fails on a bad value: the server cannot stop the client mid-file, so
it stores a truncated or converted value and counts a warning instead. Any warning therefore
fails the batch (its transaction is rolled back) with the column, the row and the value; a
warning about a row's data (:mod:`portl.connectors.mysql.refusals`) lets the engine reject that
row and load the others.
"""

from __future__ import annotations

import os
import tempfile
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.mysql.client import column_and_row, errno_of, execute
from portl.connectors.hextext import hexed, value_bytes
from portl.connectors.mysql.refusals import refusal
from portl.connectors.mysql.dialect import quote
from portl.connectors.sql.params import text_columns_for_db
from portl.errors import TerminalError
from portl.plural import counted

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))
MAX_ROWS_PER_INSERT = 5_000


def load_data_statement(table_sql: str, schema: pa.Schema) -> str:
    """The LOAD DATA statement for a batch of ``schema``; the file name is its one parameter."""
    targets, sets = [], []
    for i, f in enumerate(schema):
        if _is_binary(f.type):
            targets.append(f"@v{i}")
            sets.append(f"{quote(f.name)} = UNHEX(@v{i})")
        else:
            targets.append(quote(f.name))
    statement = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {table_sql} CHARACTER SET utf8mb4 "
                 "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                 f"({', '.join(targets)})")
    return statement + (" SET " + ", ".join(sets) if sets else "")


def tsv_lines(batch: pa.RecordBatch) -> memoryview:
    """The batch as LOAD DATA text: one line per row, fields escaped and tab-separated."""
    fields = [field_text(column) for column in batch.columns]
    lines = pc.binary_join_element_wise(*fields, "\t") if len(fields) > 1 else fields[0]
    lines = pc.binary_join_element_wise(lines, "", "\n")  # every line ends with a newline
    return value_bytes(lines)


def field_text(column: pa.Array) -> pa.Array:
    """One column as LOAD DATA field text; NULL is ``\\N``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    text = _as_text(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # Searching the values' bytes in one piece is far faster than a per-value regex, and
        # most columns hold none of the special characters.
        data = value_bytes(text).tobytes()
        for raw, escaped in _ESCAPES:  # the backslash first: the other escapes add backslashes
            if raw.encode() in data:
                text = pc.replace_substring(text, raw, escaped)
    return pc.fill_null(text, "\\N") if text.null_count else text


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _as_text(column: pa.Array) -> pa.Array:
    """A column as the text MySQL parses back into the same value."""
    t = column.type
    if _is_binary(t):
        return hexed(column)
    if pa.types.is_boolean(t):
        return pc.cast(pc.cast(column, pa.int8()), pa.string())
    if pa.types.is_timestamp(t):
        return pc.cast(utc_microseconds(column), pa.string())
    if pa.types.is_large_string(t):
        return pc.cast(column, pa.string())
    if pa.types.is_string(t):
        return column
    return pc.cast(column, pa.string())


def utc_microseconds(column: pa.Array) -> pa.Array:
    """A timestamp column as naive microseconds: a zoned instant becomes its UTC wall time, which
    is what a DATETIME(6) column keeps (finer units are cut to the microsecond)."""
    target = pa.timestamp("us")
    if column.type.tz:
        column = column.cast(pa.timestamp(column.type.unit))
    return pc.cast(column, target, safe=False) if column.type != target else column


def load_batch(cur: Any, table_sql: str, batch: pa.RecordBatch, what: str) -> int:
    """LOAD DATA LOCAL INFILE the batch into ``table_sql``; return the rows loaded."""
    try:
        handle, path = tempfile.mkstemp(prefix="portl-mysql-", suffix=".tsv")
    except OSError as exc:
        raise TerminalError(f"{what}: cannot create the batch file for LOAD DATA in {tempfile.gettempdir()}: {exc}; "
                            "set TMPDIR to a folder with room") from exc
    try:
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(tsv_lines(batch))
        except OSError as exc:
            raise TerminalError(f"{what}: cannot write the batch file {path} for LOAD DATA: {exc}") from exc
        loaded = execute(cur, load_data_statement(table_sql, batch.schema), (path,))
    finally:
        os.unlink(path)
    if cur.warning_count:
        raise warnings_error(cur, batch, what, 0)
    return loaded


def insert_batch(cur: Any, table_sql: str, batch: pa.RecordBatch, what: str, max_packet: int) -> int:
    """Multi-row INSERTs with bound values, as many rows per statement as fit well inside the
    server's max_allowed_packet (at most 5,000)."""
    rows, width = batch.num_rows, batch.num_columns
    if not rows:
        return 0
    budget = max(64 * 1024, min(max_packet // 2, 8 * 1024 * 1024))
    row_bytes = 2 * batch.nbytes // rows + 8 * width + 16  # escaping, quotes and commas; hex doubles bytes
    per_statement = max(1, min(MAX_ROWS_PER_INSERT, budget // row_bytes))
    binary = [_is_binary(f.type) for f in batch.schema]
    arrays = [hexed(c) if b else c for c, b in zip(batch.columns, binary)]
    arrays = [utc_microseconds(c) if pa.types.is_timestamp(c.type) else c for c in arrays]
    values = text_columns_for_db(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), bool_as_int=True,
                                 temporal_as_text=True, decimal_as_text=True)
    one = "(" + ", ".join("UNHEX(%s)" if b else "%s" for b in binary) + ")"
    head = f"INSERT INTO {table_sql} ({', '.join(quote(n) for n in batch.schema.names)}) VALUES "
    inserted = 0
    for offset in range(0, rows, per_statement):
        columns = [v.slice(offset, per_statement).to_pylist() for v in values]
        count = len(columns[0])
        params = list(chain.from_iterable(zip(*columns)))
        try:
            inserted += execute(cur, head + ", ".join([one] * count), params)
        except Exception as exc:  # a strict server refuses a bad value with its column and row
            message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            refused = refusal(errno_of(exc), message, what, offset)
            if refused is not None:  # the rows' fault: the engine rejects them and loads the others
                raise refused from exc
            column, row = column_and_row(message)
            if row is None:
                raise
            raise TerminalError(_describe(what, batch, column, offset + row, message, errno_of(exc))) from exc
        if cur.warning_count:
            raise warnings_error(cur, batch, what, offset)
    return inserted


def warnings_error(cur: Any, batch: pa.RecordBatch, what: str, first_row: int) -> Exception:
    """The warnings of the last statement as one error naming the column, row and value: a
    :class:`~portl.errors.RowRefused` when the first warning is about a row's data."""
    total = cur.warning_count
    execute(cur, "SHOW WARNINGS LIMIT 5")
    shown = cur.fetchall()
    if not shown:
        return TerminalError(f"{what}: MySQL reported {counted(total, 'warning')} while loading the batch; it was rolled back")
    _level, code, message = shown[0]
    refused = refusal(code, str(message), what, first_row)
    if refused is not None:
        return refused
    column, row = column_and_row(str(message))
    head = _describe(what, batch, column, None if row is None else first_row + row, str(message), code)
    more = f" ({total - 1} more warning{'s' if total > 2 else ''})" if total > 1 else ""
    return TerminalError(f"{head}{more}. MySQL would have stored a changed value or left a row out, so the batch was "
                         "rolled back")


def _describe(what: str, batch: pa.RecordBatch, column: str | None, row: int | None, message: str, code: Any) -> str:
    where = []
    if row is not None:
        where.append(f"row {row} of the batch")
    if column is not None:
        where.append(f"column {column}")
    value = ""
    if column in batch.schema.names and row is not None and 0 < row <= batch.num_rows:
        shown = batch.column(column)[row - 1].as_py()
        text = repr(shown)
        value = f" (value {text[:80] + '...' if len(text) > 80 else text})"
    place = ", ".join(where)
    text = f"{what}: {place}{value}: {message}" if place else f"{what}: {message}"
    return text + (f" (error {code})" if code else "")
