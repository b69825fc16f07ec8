"""MySQL's SQL dialect as data, and the DDL Portl writes for MySQL tables.

Type map for tables Portl creates:

=============  =====================  ===========================================================
logical type   column type            notes
=============  =====================  ===========================================================
int            INT
bigint         BIGINT
float          DOUBLE
decimal(p,s)   DECIMAL(p,s)           p <= 38 in Portl; MySQL allows 65
text           LONGTEXT               VARCHAR(255) in a key or index: MySQL cannot index a TEXT
                                      column whole, and a longer value fails the load loudly
bool           TINYINT(1)             what BOOLEAN means in MySQL; reads back as bool
date           DATE
timestamp      DATETIME(6)            microseconds kept
timestamptz    DATETIME(6)            the instant in UTC; the zone is not kept (plan warns)
json           JSON                   MariaDB: LONGTEXT with a json_valid check, made by itself
uuid           CHAR(36)
bytes          LONGBLOB               VARBINARY(255) in a key or index
=============  =====================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from portl.connectors.sql import dialect as sql
from portl.types import LogicalType, logical_of


def quote(name: str) -> str:
    """A MySQL identifier in backticks, backticks inside doubled."""
    return "`" + name.replace("`", "``") + "`"


DIALECT = sql.Dialect(
    name="mysql",
    quote=quote,
    placeholder="%s",
    type_names={
        "int": "INT", "bigint": "BIGINT", "float": "DOUBLE", "text": "LONGTEXT", "bool": "TINYINT(1)",
        "date": "DATE", "timestamp": "DATETIME(6)", "timestamptz": "DATETIME(6)", "json": "JSON",
        "uuid": "CHAR(36)", "bytes": "LONGBLOB",
    },
    incoming="s.{c}",
    conflict_target=False,
    upsert_clause="on_duplicate_key",
)

KEY_TYPES = {"text": "VARCHAR(255)", "json": "VARCHAR(255)", "bytes": "VARBINARY(255)"}
"""Column types for key and index columns whose usual type MySQL cannot index whole."""


def qualified(database: str, table: str) -> str:
    """`db`.`table`, for statements built here."""
    return f"{quote(database)}.{quote(table)}"


def shared_name(database: str, table: str) -> str:
    """A table name for the shared statement builders (:mod:`portl.connectors.sql.dialect`), which
    split names on dots: each part in double quotes, so dots inside a name survive."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (database, table))


def column_type(logical: LogicalType, key: bool = False) -> str:
    if key and logical.name in KEY_TYPES:
        return KEY_TYPES[logical.name]
    return DIALECT.column_type(logical)


def column_definition(name: str, logical: LogicalType, nullable: bool = True, key: bool = False,
                      auto_increment: bool = False) -> str:
    definition = f"{quote(name)} {column_type(logical, key)}"
    if not nullable or auto_increment:
        definition += " NOT NULL"
    if auto_increment:
        definition += " AUTO_INCREMENT"
    return definition


def create_table(database: str, table: str, schema: pa.Schema, primary_key: Sequence[str] = (),
                 charset: str | None = None) -> str:
    """``CREATE TABLE`` for an Arrow schema (InnoDB: transactions and row locks). ``charset``
    names a table character set when the database's own is not utf8mb4."""
    keys = set(primary_key)
    parts = [column_definition(f.name, logical_of(f), nullable=f.name not in keys, key=f.name in keys) for f in schema]
    if primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(quote(k) for k in primary_key)})")
    options = " ENGINE=InnoDB" + (f" DEFAULT CHARSET={charset}" if charset else "")
    return f"CREATE TABLE IF NOT EXISTS {qualified(database, table)} (\n  " + ",\n  ".join(parts) + f"\n){options}"


def add_column(database: str, table: str, field: pa.Field) -> str:
    return f"ALTER TABLE {qualified(database, table)} ADD COLUMN {column_definition(field.name, logical_of(field))}"


def index_columns(columns: Iterable[str], types: dict[str, LogicalType], prefix: bool) -> str:
    """The column list of an index; with ``prefix``, LONGTEXT and LONGBLOB columns get a 255 prefix."""
    out = []
    for c in columns:
        long_value = types.get(c, LogicalType("int")).name in KEY_TYPES
        out.append(quote(c) + ("(255)" if prefix and long_value else ""))
    return ", ".join(out)
