"""Snowflake types ↔ Portl's logical types, and Snowflake's SQL dialect.

Reading, a column's type comes from the result's description (the connector's type code,
precision and scale); every batch the driver gives is cast to that one Arrow schema, so a batch
looks the same whatever Arrow form the server sent (an ``int64`` or a ``decimal128(p,0)``).

======================  ================  ==================================================
Snowflake               logical           note
======================  ================  ==================================================
NUMBER(p,0), p ≤ 10     int               a value past int's range fails the read, naming it
NUMBER(p,0), p ≤ 19     bigint            likewise past bigint's
NUMBER(p,0), p > 19     decimal(p,0)      INT / INTEGER are NUMBER(38,0): decimal(38,0)
NUMBER(p,s), s > 0      decimal(p,s)
FLOAT                   float
BOOLEAN                 bool
VARCHAR / TEXT          text
BINARY                  bytes
DATE                    date
TIME                    text              ``HH:MM:SS.ffffff``: Portl has no time-of-day type
TIMESTAMP_NTZ           timestamp
TIMESTAMP_TZ / _LTZ     timestamptz       the instant, in UTC
VARIANT/OBJECT/ARRAY    json
======================  ================  ==================================================

Writing, a logical type becomes the declared type of :data:`DIALECT`.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.sql.dialect import Dialect
from portl.errors import SourceError
from portl.types import LogicalType, arrow_field, logical_of

# The connector's type codes (snowflake.connector.constants.FIELD_TYPES), kept here so that
# describing a result needs no driver import.
FIXED, REAL, TEXT, DATE, TIMESTAMP, VARIANT, TIMESTAMP_LTZ, TIMESTAMP_TZ, TIMESTAMP_NTZ, OBJECT, ARRAY, BINARY, \
    TIME, BOOLEAN = range(14)
TYPE_NAMES = {FIXED: "NUMBER", REAL: "FLOAT", TEXT: "VARCHAR", DATE: "DATE", TIMESTAMP: "TIMESTAMP",
              VARIANT: "VARIANT", TIMESTAMP_LTZ: "TIMESTAMP_LTZ", TIMESTAMP_TZ: "TIMESTAMP_TZ",
              TIMESTAMP_NTZ: "TIMESTAMP_NTZ", OBJECT: "OBJECT", ARRAY: "ARRAY", BINARY: "BINARY", TIME: "TIME",
              BOOLEAN: "BOOLEAN"}


def quote_ident(name: str) -> str:
    """A quoted Snowflake identifier: case kept, a double quote doubled."""
    return '"' + name.replace('"', '""') + '"'


DIALECT = Dialect(
    name="snowflake",
    quote=quote_ident,
    placeholder="%s",
    type_names={
        "int": "NUMBER(10,0)", "bigint": "NUMBER(19,0)", "float": "FLOAT", "text": "VARCHAR", "json": "VARIANT",
        "uuid": "VARCHAR(36)", "bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP_NTZ(6)",
        "timestamptz": "TIMESTAMP_TZ(6)", "bytes": "BINARY",
    },
    decimal_name="NUMBER({p},{s})",
    upsert_clause="merge",
    notes={"timestamptz": "TIMESTAMP_TZ keeps the offset written, which Portl writes as +00:00"},
)


def logical_of_column(type_code: int, precision: int | None, scale: int | None) -> LogicalType:
    """The logical type of a result column described by the connector."""
    if type_code == FIXED:
        p, s = precision or 38, scale or 0
        # NUMBER(10,0) and NUMBER(19,0) are what int and bigint are written as: their widest
        # values have that many digits (a larger value in such a column fails the read, named).
        if s == 0 and p <= 10:
            return LogicalType("int")
        if s == 0 and p <= 19:
            return LogicalType("bigint")
        return LogicalType("decimal", p, s)
    return LogicalType({
        REAL: "float", TEXT: "text", DATE: "date", TIMESTAMP: "timestamp", TIMESTAMP_NTZ: "timestamp",
        TIMESTAMP_LTZ: "timestamptz", TIMESTAMP_TZ: "timestamptz", VARIANT: "json", OBJECT: "json", ARRAY: "json",
        BINARY: "bytes", TIME: "text", BOOLEAN: "bool",
    }.get(type_code, "text"))


def logical_of_declared(declared: str, precision: int | None, scale: int | None) -> LogicalType:
    """The logical type of a column as ``information_schema.columns`` declares it (``NUMBER``, ``TEXT``...)."""
    codes = {name: code for code, name in TYPE_NAMES.items()} | {"TEXT": TEXT, "TIMESTAMP": TIMESTAMP_NTZ}
    return logical_of_column(codes.get(str(declared).upper(), TEXT), precision, scale)


def schema_of(description) -> pa.Schema:
    """The Arrow schema of a result, from ``cursor.description``."""
    fields = []
    for column in description:
        logical = logical_of_column(column.type_code, column.precision, column.scale)
        fields.append(arrow_field(column.name, logical, nullable=bool(column.is_nullable)))
    return pa.schema(fields)


def declared_of(description) -> dict[str, str]:
    """Each result column's Snowflake type as text (``NUMBER(12,2)``), for messages and plans."""
    out = {}
    for column in description:
        name = TYPE_NAMES.get(column.type_code, "?")
        if column.type_code == FIXED:
            name = f"NUMBER({column.precision},{column.scale})"
        out[column.name] = name
    return out


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """A result batch in ``schema``'s Arrow types, column by column: TIME as ``HH:MM:SS.ffffff``
    text, timestamps in microseconds (UTC for zoned ones), numbers to their declared width."""
    columns = []
    for index, field in enumerate(schema):
        column = table.column(index)
        if pa.types.is_time(column.type):
            column = pc.cast(column.cast(pa.time64("us"), safe=False) if column.type.unit == "ns" else column, pa.string())
        elif pa.types.is_timestamp(column.type) and column.type.tz is not None and field.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, "UTC"))
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SourceError(f"column {field.name} holds a value that does not fit {logical_of(field)} ({exc}); "
                                  "read it through a query that casts it (e.g. to NUMBER(38,0))") from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)
