"""Arrow batches as the gzip CSV files ``COPY INTO`` loads, and the FILE_FORMAT that reads them.

Every value is written as text Snowflake's automatic detection reads back exactly: text, JSON and
UUIDs enclosed in double quotes (a quote doubled), so an empty string stays an empty string;
NULL as an unquoted ``\\N`` (``NULL_IF``; another word when a text of the batch is ``\\N``);
numbers with every digit; ``NaN``, ``inf``, ``-inf``; booleans as ``true`` / ``false``; dates and timestamps in ISO 8601 with microseconds
(``+00:00`` for instants); bytes in hexadecimal (the sink converts it, see ``sink.CONVERTED``). The
format's options are written INLINE in each COPY, so nothing has to exist in the account first.
"""

from __future__ import annotations

import gzip
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.hextext import hexed
from portl.types import decimal_text, logical_of, uuid_text

NULL = "\\N"
QUOTED = frozenset({"text", "json", "uuid"})


def file_format(null: str = NULL) -> str:
    """The FILE_FORMAT options of a COPY of files whose NULL is ``null``."""
    marker = null.replace("\\", "\\\\").replace("'", "''")
    return ("TYPE = CSV COMPRESSION = GZIP FIELD_DELIMITER = ',' FIELD_OPTIONALLY_ENCLOSED_BY = '\"' "
            f"NULL_IF = ('{marker}') EMPTY_FIELD_AS_NULL = FALSE")


def null_marker(batch: pa.RecordBatch) -> str:
    """``\\N``, unless a text value of the batch is exactly that: then a word no value of it is.
    (Whether NULL_IF also matches a quoted field is not the same on every server; a marker no
    value equals makes it not matter.)"""
    texts = [c for i, c in enumerate(batch.columns)
             if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)]
    marker = NULL
    while any(pc.any(pc.equal(c, marker)).as_py() for c in texts):
        marker = "PORTL_NULL_" + uuid.uuid4().hex[:12].upper()
    return marker


def encode(batch: pa.RecordBatch, null: str = NULL, level: int = 1) -> bytes:
    """``batch`` as gzip-compressed CSV without a header, in the batch's column order, NULL
    written as ``null`` (see :func:`null_marker`)."""
    if batch.num_rows == 0:
        return gzip.compress(b"", compresslevel=level)
    columns = [_text(column, batch.schema.field(i), null) for i, column in enumerate(batch.columns)]
    lines = pc.binary_join_element_wise(*columns, pa.array([""] * batch.num_rows), ",")  # each row and a ","
    lines = pc.binary_join_element_wise(pc.utf8_slice_codeunits(lines, 0, -1), "\n", "")  # "," -> newline
    # The rows are one contiguous text in the array's data buffer, between its first and last offsets.
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, lines.buffers()[1]], offset=lines.offset)
    start, stop = offsets[0].as_py(), offsets[len(lines)].as_py()
    return gzip.compress(lines.buffers()[2].to_pybytes()[start:stop], compresslevel=level)


def _text(column: pa.Array, field: pa.Field, null: str) -> pa.Array:
    """A column as the text of its fields, quoting included, NULL as ``null``."""
    logical = logical_of(field).name
    if isinstance(column.type, pa.BaseExtensionType):
        column = uuid_text(column) if column.type.extension_name == "arrow.uuid" else column.storage
    t = column.type
    if logical in QUOTED or pa.types.is_string(t) or pa.types.is_large_string(t):
        text = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
        text = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    elif pa.types.is_boolean(t):
        text = pc.if_else(column, "true", "false")
    elif pa.types.is_decimal(t):
        text = decimal_text(column)
    elif pa.types.is_floating(t):
        text = _floats(column)
    elif pa.types.is_timestamp(t):
        text = pc.cast(column.cast(pa.timestamp("us", t.tz), safe=False) if t.unit == "ns" else column, pa.string())
        if t.tz is not None:  # Arrow writes "...Z" for an instant: Snowflake reads "+00:00"
            text = pc.replace_substring_regex(text, "Z$", "+00:00")
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        text = hexed(column)
    else:
        text = pc.cast(column, pa.string())
    return pc.fill_null(text, null) if column.null_count else text


def _floats(column: pa.Array) -> pa.Array:
    """Shortest exact text of each float (Arrow's cast writes it), with ``NaN``/``inf``/``-inf``."""
    text = pc.cast(column.cast(pa.float64()), pa.string())
    text = pc.replace_substring_regex(text, "^nan$", "NaN")
    return text
