"""Arrow batches to DB-API parameter rows, converting column by column with pyarrow.compute."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import pyarrow as pa
import pyarrow.compute as pc


def text_columns_for_db(batch: pa.RecordBatch, *, bool_as_int: bool, temporal_as_text: bool, decimal_as_text: bool) -> list[pa.Array]:
    """Each column in the form the driver binds best, converted in one vectorised call per column."""
    out: list[pa.Array] = []
    for column in batch.columns:
        t = column.type
        if bool_as_int and pa.types.is_boolean(t):
            column = pc.cast(column, pa.int8())
        elif temporal_as_text and pa.types.is_timestamp(t):
            text = pc.cast(column, pa.string())
            column = pc.replace_substring(text, "Z", "+00:00") if t.tz else text
        elif temporal_as_text and pa.types.is_date(t):
            column = pc.cast(column, pa.string())
        elif decimal_as_text and pa.types.is_decimal(t):
            column = pc.cast(column, pa.string())
        out.append(column)
    return out


def row_slices(columns: list[pa.Array], rows_per_slice: int = 5_000) -> Iterator[list[list]]:
    """The columns as Python lists, a slice of rows at a time, so that a large batch never
    exists as Python objects all at once (that costs memory and garbage-collector time)."""
    total = len(columns[0]) if columns else 0
    for offset in range(0, total, rows_per_slice):
        yield [c.slice(offset, rows_per_slice).to_pylist() for c in columns]


def multi_row_params(values: list[list], rows_per_statement: int) -> tuple[list[list], list[tuple]]:
    """Split one slice of column lists into parameter lists for a multi-row ``VALUES`` statement
    of ``rows_per_statement`` rows, plus the leftover rows as single-row tuples."""
    rows = len(values[0]) if values else 0
    whole = rows - rows % rows_per_statement
    flat = list(chain.from_iterable(zip(*(v[:whole] for v in values))))
    width = rows_per_statement * len(values)
    grouped = [flat[i:i + width] for i in range(0, len(flat), width)]
    rest = list(zip(*(v[whole:] for v in values)))
    return grouped, rest
