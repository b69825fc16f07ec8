"""Logical column types of the job language and their Arrow types.

A job names a type as text (``int``, ``decimal(12,2)``, ``timestamp``...). :func:`parse_type`
checks the text and :func:`arrow_type` gives the Arrow type the engine coerces values to. ``json``
is Arrow ``string`` with the field metadata ``portl.type = json`` so that sinks can declare a JSON
column; ``uuid`` likewise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

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
    """The logical type a (source or destination) Arrow field carries."""
    tag = (field.metadata or {}).get(META_KEY)
    if tag:
        return LogicalType(tag.decode())
    t = field.type
    if pa.types.is_boolean(t):
        return LogicalType("bool")
    if pa.types.is_integer(t):
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
