"""Loading a source's text as it is (the verbatim path): which Postgres column types read canonical
text as Portl's coercion does, and the ``COPY`` that takes the text.

Canonical text (``portl.connectors.base.VerbatimOffer``) of a logical type is read by these
column types as the value Portl would write, or refused with an error:

- ``text`` values by any type: Portl passes text through untouched, so the server parses it
  either way;
- ``int``/``bigint`` by ``smallint``, ``integer``, ``bigint``; ``float`` by ``double precision``
  (``real`` would round the text and Portl's double differently, now and then);
- ``decimal(p,s)`` by ``numeric(p,s)`` of the same precision and scale, so that the server refuses
  exactly the values Portl refuses;
- ``bool``, ``date``, ``timestamp``, ``timestamptz``, ``json`` (``json`` or ``jsonb``), ``uuid``
  and ``bytes`` (``bytea``) by their own types.

A column Portl will create gets Portl's own type for its logical type, which is always one of these.
"""

from __future__ import annotations

import pyarrow as pa
import psycopg
from psycopg import sql

from portl.connectors.base import TextFormat
from portl.types import logical_of

_TEXTS = {"text", "varchar", "bpchar"}  # one binary layout: the characters
_READERS = {
    "int": {"int2", "int4", "int8"},
    "bigint": {"int2", "int4", "int8"},
    "float": {"float8"},
    "bool": {"bool"},
    "date": {"date"},
    "timestamp": {"timestamp"},
    "timestamptz": {"timestamptz"},
    "json": {"json", "jsonb"},
    "uuid": {"uuid"},
    "bytes": {"bytea"},
}


def problems(schema: pa.Schema, types: dict[str, tuple[str, int]]) -> list[str]:
    """Why columns of ``schema`` would not read canonical text as Portl does; ``types`` are the
    existing columns' (type name, type modifier), a column not among them will be created."""
    out = []
    for f in schema:
        logical = logical_of(f)
        if logical.name == "text" or f.name not in types:
            continue
        typname, typmod = types[f.name]
        if logical.name == "decimal":
            scale, precision = (typmod - 4) & 0xFFFF, ((typmod - 4) >> 16) & 0xFFFF
            if typname == "numeric" and typmod >= 0 and (precision, scale) == (logical.precision, logical.scale):
                continue
        elif typname in _READERS.get(logical.name, ()):
            continue
        out.append(f"column {f.name}: {logical} values into a {typname} column are sent as Portl writes them, "
                   "not as the source has them")
    return out


def binary_problems(wire_types: tuple[tuple[str, str, int], ...], types: dict[str, tuple[str, int]]) -> list[str]:
    """Columns that would not take the source's binary layout: binary rows go only into columns
    of the source column's own type (and modifier; text, varchar and char take each other's)."""
    out = []
    for name, typname, typmod in wire_types:
        have = types.get(name)
        if have is None or have == (typname, typmod) or {have[0], typname} <= _TEXTS:
            continue
        out.append(f"column {name}: the source's {typname} values are sent in binary only into a column of "
                   f"that type, not {have[0]}")
    return out


def copy_statement(table: str, columns: list[str], fmt: TextFormat, conn: psycopg.Connection) -> str:
    """``COPY table (columns) FROM STDIN`` with the format's separators, as literals (COPY takes
    no parameters); ``table`` is already quoted."""
    names = ", ".join(sql.Identifier(c).as_string(conn) for c in columns)
    if fmt.kind == "pgbinary":
        return f"COPY {table} ({names}) FROM STDIN (FORMAT binary)"
    options = ", ".join(f"{key} {sql.Literal(value).as_string(conn)}"
                        for key, value in (("DELIMITER", fmt.delimiter), ("QUOTE", fmt.quote), ("NULL", fmt.null)))
    return f"COPY {table} ({names}) FROM STDIN (FORMAT csv, {options})"


def ends_early(data: bytes) -> bool:
    """Whether a line of ``data`` is ``\\.``, which COPY takes for the end of the data."""
    if b"\\" not in data or b"\\." not in data:  # one byte is found many times faster than two
        return False
    return any(line.rstrip(b"\r") == b"\\." for line in data.split(b"\n"))
