"""Arrow batches to DB-API parameter rows, converting column by column with pyarrow.compute."""

from __future__ import annotations

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


def param_rows(columns: list[pa.Array]) -> list[tuple]:
    """Row tuples for executemany; the transposition happens in C (zip over column lists)."""
    if not columns:
        return []
    return list(zip(*(c.to_pylist() for c in columns)))
