"""Postgres column types ↔ Portl's logical types (and so Arrow), and the Postgres SQL dialect.

Reading: ``int2``/``int4`` → ``int``, ``int8`` → ``bigint``, ``numeric(p,s)`` → ``decimal(p,s)``,
``numeric`` without a precision → ``decimal(38,10)`` (rounded to 10 places, with a warning),
``float4``/``float8`` → ``float``, ``bool``, ``text``/``varchar``/``char`` → ``text``, ``date``,
``timestamp``, ``timestamptz``, ``json``/``jsonb`` → ``json``, ``bytea`` → ``bytes``, ``uuid``,
enums → ``text``; anything else (arrays, intervals, ``time``, ``inet``, ``money``…) → ``text`` in
Postgres's own text form, with a note. Domains read as their base type.

Writing, a table Portl creates: ``int`` → ``integer``, ``bigint`` → ``bigint``, ``float`` →
``double precision``, ``decimal(p,s)`` → ``numeric(p,s)``, ``text``, ``bool`` → ``boolean``,
``date``, ``timestamp``, ``timestamptz``, ``json`` → ``jsonb``, ``uuid``, ``bytes`` → ``bytea``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from portl.connectors.sql.dialect import Dialect
from portl.types import LogicalType, arrow_field

UNCONSTRAINED_NUMERIC = LogicalType("decimal", 38, 10)


def quote_ident(name: str) -> str:
    """An identifier quoted by psycopg itself (``sql.Identifier``), so that statement text built
    for the plan is the text that runs."""
    from psycopg import sql

    return sql.Identifier(name).as_string(None)


DIALECT = Dialect(
    name="postgres",
    quote=quote_ident,
    placeholder="%s",
    type_names={
        "int": "integer", "bigint": "bigint", "float": "double precision", "text": "text", "bool": "boolean",
        "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz", "json": "jsonb", "uuid": "uuid",
        "bytes": "bytea",
    },
    decimal_name="numeric({p},{s})",
    incoming="EXCLUDED.{c}",
)

# The base type of each column a table Portl creates (``DIALECT.type_names`` as the catalog names it).
CREATED_TYPNAMES = {
    "int": "int4", "bigint": "int8", "float": "float8", "text": "text", "bool": "bool", "date": "date",
    "timestamp": "timestamp", "timestamptz": "timestamptz", "json": "jsonb", "uuid": "uuid", "bytes": "bytea",
    "decimal": "numeric",
}

_SIMPLE = {
    "int2": "int", "int4": "int", "int8": "bigint", "float4": "float", "float8": "float", "bool": "bool",
    "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "citext": "text", "date": "date",
    "timestamp": "timestamp", "timestamptz": "timestamptz", "json": "json", "jsonb": "json", "bytea": "bytes",
    "uuid": "uuid",
}


@dataclass(frozen=True)
class PgColumn:
    """A column as the catalog describes it, and how Portl reads it."""

    name: str
    declared: str           # format_type(): "numeric(12,2)", "character varying(40)", "my_enum"
    logical: LogicalType
    nullable: bool = True
    has_default: bool = False
    note: str | None = None
    rounded: bool = False   # an unconstrained numeric: the read rounds it to decimal(38,10)'s scale

    @property
    def field(self) -> pa.Field:
        return arrow_field(self.name, self.logical, self.nullable)


def column_of(name: str, declared: str, typname: str, typtype: str, typmod: int, *, nullable: bool = True,
              has_default: bool = False) -> PgColumn:
    """The logical type of a Postgres column from its type's catalog entry.

    ``typname``/``typtype``/``typmod`` are those of the base type for a domain.
    """
    if typname == "numeric":
        if typmod < 0:
            note = (f"column {name} is numeric without a precision: read as decimal(38,10), rounded to 10 decimal "
                    f"places; a value of 10^28 or more, or NaN, is rejected. Cast it in a query "
                    f"(e.g. {name}::numeric(20,4), or {name}::text) to choose")
            return PgColumn(name, declared, UNCONSTRAINED_NUMERIC, nullable, has_default, note, rounded=True)
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if precision <= 38 and scale <= precision:
            return PgColumn(name, declared, LogicalType("decimal", precision, scale), nullable, has_default)
        note = f"column {name} is {declared}, wider than decimal(38,…): read as text"
        return PgColumn(name, declared, LogicalType("text"), nullable, has_default, note)
    simple = _SIMPLE.get(typname)
    if simple:
        return PgColumn(name, declared, LogicalType(simple), nullable, has_default)
    if typtype == "e":
        return PgColumn(name, declared, LogicalType("text"), nullable, has_default)
    note = f"column {name} is {declared}: read as text, in Postgres's text form"
    return PgColumn(name, declared, LogicalType("text"), nullable, has_default, note)
