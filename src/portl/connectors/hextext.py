"""Bytes as hexadecimal text and back, for a whole Arrow array at once: the values of a binary
or string array lie back to back in one buffer, so ``binascii`` converts them all in one C call and
only the offsets are scaled. Databases whose text loads spell bytes in hex (MySQL's ``UNHEX``,
Snowflake's ``TO_BINARY(…, 'HEX')``) use it."""

from __future__ import annotations

import binascii

import pyarrow as pa
import pyarrow.compute as pc


def _as_string(values: pa.Array) -> pa.Array:
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def unhex(text: pa.Array) -> pa.Array:
    """Hex text to bytes, for the whole array at once: the hex digits of all values lie in one
    buffer, ``binascii.unhexlify`` decodes it in C, and the offsets are halved."""
    text = _as_string(text)
    filled = pc.fill_null(text, "") if text.null_count else text
    offsets, data = offsets_and_data(filled)
    start = offsets[0].as_py()
    raw = binascii.unhexlify(data) if len(data) else b""
    halved = pc.divide(pc.subtract(offsets, start), 2).cast(pa.int32())
    out = pa.Array.from_buffers(pa.binary(), len(filled), [None, halved.buffers()[1], pa.py_buffer(raw)])
    return pc.if_else(text.is_valid(), out, pa.scalar(None, pa.binary())) if text.null_count else out


def hexed(values: pa.Array) -> pa.Array:
    """Bytes to hex text, vectorised like :func:`unhex`: ``binascii.hexlify`` over the values buffer."""
    values = values.cast(pa.binary())
    filled = pc.fill_null(values, b"") if values.null_count else values
    offsets, data = offsets_and_data(filled)
    start = offsets[0].as_py()
    text = binascii.hexlify(data) if len(data) else b""
    doubled = pc.multiply(pc.subtract(offsets, start), 2).cast(pa.int32())
    out = pa.Array.from_buffers(pa.string(), len(filled), [None, doubled.buffers()[1], pa.py_buffer(text)])
    return pc.if_else(values.is_valid(), out, pa.scalar(None, pa.string())) if values.null_count else out


def value_bytes(array: pa.Array) -> memoryview:
    """The bytes of every value of a string or binary array, back to back (no copy)."""
    return offsets_and_data(array)[1]


def offsets_and_data(array: pa.Array) -> tuple[pa.Array, memoryview]:
    """The value offsets of a string or binary array (it may be a slice) and the bytes they span."""
    offsets = pa.Array.from_buffers(pa.int32(), len(array) + 1, [None, array.buffers()[1]], offset=array.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    data = array.buffers()[2]
    return offsets, (memoryview(data)[start:end] if data is not None else memoryview(b""))
