"""Logical column types of the job language and their Arrow types.

A job names a type as text (``int``, ``decimal(12,2)``, ``timestamp``...). :func:`parse_type`
checks the text and :func:`arrow_type` gives the Arrow type the engine coerces values to. ``json``
is Arrow ``string`` with the field metadata ``portl.type = json`` so that sinks can declare a JSON
column; ``uuid`` likewise. :func:`logical_of` goes the other way, for any Arrow field a source has.

Connectors and the engine both need a few conversions between Arrow forms of one logical type,
and they live here: decimals as text with every digit (:func:`decimal_text`), and ``uuid`` text
to and from Arrow's UUID extension type (:func:`uuid_text`, :func:`uuid_extension`).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

LOGICAL_TYPES = (
    "int", "bigint", "float", "decimal(p,s)", "text", "bool", "date",
    "datetime", "timestamp", "timestamptz", "json", "uuid", "bytes",
)
_ALIASES = {
    "integer": "int", "int32": "int", "int64": "bigint", "long": "bigint", "double": "float",
    "real": "float", "numeric": "decimal", "string": "text", "str": "text", "boolean": "bool",
    "datetime": "timestamp", "binary": "bytes", "blob": "bytes",
}
_DECIMAL = re.compile(r"^(decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")

META_KEY = b"portl.type"


@dataclass(frozen=True)
class LogicalType:
    """A parsed type name: ``name`` plus precision and scale for decimals."""

    name: str
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.name


def parse_type(text: str) -> LogicalType:
    """Parse a type name from a job file; raise ``ValueError`` naming the valid ones."""
    raw = text.strip().lower()
    match = _DECIMAL.match(raw)
    if match:
        precision = int(match.group(2) or 38)
        scale = int(match.group(3) or (0 if match.group(2) else 10))
        if not 1 <= precision <= 38:
            raise ValueError(f"decimal precision must be between 1 and 38, got {precision}")
        if not 0 <= scale <= precision:
            raise ValueError(f"decimal scale must be between 0 and the precision ({precision}), got {scale}")
        return LogicalType("decimal", precision, scale)
    name = _ALIASES.get(raw, raw)
    if name in {"int", "bigint", "float", "text", "bool", "date", "timestamp", "timestamptz", "json", "uuid", "bytes"}:
        return LogicalType(name)
    raise ValueError(f"unknown type {text!r}; valid types: {', '.join(LOGICAL_TYPES)}")


def arrow_type(logical: LogicalType) -> pa.DataType:
    """The Arrow type values of ``logical`` are coerced to."""
    return {
        "int": pa.int32(),
        "bigint": pa.int64(),
        "float": pa.float64(),
        "text": pa.string(),
        "json": pa.string(),
        "uuid": pa.string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "bytes": pa.binary(),
    }.get(logical.name) or pa.decimal128(logical.precision or 38, logical.scale or 0)


def arrow_field(name: str, logical: LogicalType, nullable: bool = True) -> pa.Field:
    """An Arrow field for a destination column, tagging json and uuid in the metadata."""
    metadata = {META_KEY: logical.name.encode()} if logical.name in {"json", "uuid"} else None
    return pa.field(name, arrow_type(logical), nullable=nullable, metadata=metadata)


def logical_of(field: pa.Field) -> LogicalType:
    """The logical type a (source or destination) Arrow field carries.

    Unsigned 64-bit integers are ``decimal(20,0)``: their values above 2^63-1 fit no ``bigint``.
    Arrow's UUID and JSON extension types (Parquet's UUID and JSON) are ``uuid`` and ``json``.
    """
    tag = (field.metadata or {}).get(META_KEY)
    if tag:
        return LogicalType(tag.decode())
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        extension = {"arrow.uuid": "uuid", "arrow.json": "json"}.get(t.extension_name)
        return LogicalType(extension) if extension else logical_of(pa.field(field.name, t.storage_type))
    if pa.types.is_boolean(t):
        return LogicalType("bool")
    if pa.types.is_integer(t):
        if t == pa.uint64():
            return LogicalType("decimal", 20, 0)
        return LogicalType("bigint" if t.bit_width > 32 or pa.types.is_unsigned_integer(t) and t.bit_width == 32 else "int")
    if pa.types.is_floating(t):
        return LogicalType("float")
    if pa.types.is_decimal(t):
        return LogicalType("decimal", t.precision, t.scale)
    if pa.types.is_date(t):
        return LogicalType("date")
    if pa.types.is_timestamp(t):
        return LogicalType("timestamptz" if t.tz else "timestamp")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return LogicalType("bytes")
    if pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        return LogicalType("json")
    return LogicalType("text")


def decimal_text(array: pa.Array) -> pa.Array:
    """Decimal values as text with every digit of their scale: ``0.0000000100``, never Arrow's
    ``1.00E-8`` (which it writes for values under 10^-6, zero included, when the scale exceeds 6)."""
    text = pc.cast(array, pa.string())
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    # Such a value is below 1 in magnitude: "0." and its unscaled digits, padded to the scale.
    digits = pc.utf8_lpad(pc.replace_substring_regex(text, pattern=r"^-?(\d)\.?(\d*)E.*$", replacement=r"\1\2"),
                          width=array.type.scale, padding="0")
    sign = pc.if_else(pc.starts_with(text, "-"), "-", "")
    return pc.if_else(scientific, pc.binary_join_element_wise(sign, "0.", digits, ""), text)


def uuid_text(array: pa.Array) -> pa.Array:
    """Arrow UUID values (16 bytes each) as lowercase ``8-4-4-4-12`` text, the form ``uuid`` holds."""
    storage = array.storage if isinstance(array, pa.ExtensionArray) else array
    storage = storage.cast(pa.binary(16))
    count = len(storage)
    data = storage.buffers()[1]
    raw = data[storage.offset * 16:(storage.offset + count) * 16].to_pybytes() if data is not None else b""
    ends = pc.cumulative_sum(pa.repeat(pa.scalar(32, pa.int32()), count))  # 32 hex digits a value
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), ends])
    hexed = pa.py_buffer(binascii.hexlify(raw))
    digits = pa.Array.from_buffers(pa.string(), count, [None, offsets.buffers()[1], hexed])
    parts = [pc.utf8_slice_codeunits(digits, a, b) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))]
    text = pc.binary_join_element_wise(*parts, "-")
    return pc.if_else(pc.is_valid(storage), text, pa.scalar(None, pa.string())) if storage.null_count else text


def uuid_extension(text: pa.Array) -> pa.Array:
    """``uuid`` text (``8-4-4-4-12`` hex digits) as Arrow's UUID extension type, 16 bytes a value."""
    digits = pc.fill_null(pc.replace_substring(text, "-", ""), "0" * 32)
    offsets = pa.Array.from_buffers(pa.int32(), len(digits) + 1, [None, digits.buffers()[1]], offset=digits.offset)
    start = offsets[0].as_py()
    raw = binascii.unhexlify(digits.buffers()[2][start:start + len(digits) * 32].to_pybytes()) if len(digits) else b""
    validity = pc.is_valid(text).buffers()[1] if text.null_count else None
    storage = pa.Array.from_buffers(pa.binary(16), len(text), [validity, pa.py_buffer(raw)])
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)
