"""The staging table of a session, and what moves a staged batch on in the batch's transaction:
one ``INSERT … SELECT`` that converts text (JSON, bytes), or ONE ``MERGE`` on the key for an upsert.

The staging table holds JSON and binary columns as text (a CSV field is text); the statements read
the stage through :func:`staged`, which converts that text (``PARSE_JSON``, ``TO_BINARY``).

A server that cannot run MERGE inside an explicit transaction (fakesnow builds its MERGE from a
temporary table, which DuckDB will not create in a transaction that has written) is found by a
probe on the empty staging table when the session starts; its batches are then upserted with
``UPDATE … FROM`` and ``INSERT … WHERE NOT EXISTS``, two statements with the MERGE's outcome, and
the run report says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pyarrow as pa
from snowflake.connector import errors as sf_errors

from portl.connectors.base import ConflictStrategy, TableInfo
from portl.connectors.snowflake.connection import TableName
from portl.connectors.snowflake.typemap import DIALECT, quote_ident
from portl.connectors.sql import dialect as sql
from portl.types import logical_of

EMPTY: Mapping[str, str] = MappingProxyType({})
NO_MERGE = ("the server cannot run MERGE inside a transaction, so each batch of {table} was upserted with "
            "UPDATE … FROM and INSERT … WHERE NOT EXISTS, in the batch's transaction")


def staged(staging: str, columns: Sequence[str], converted: Mapping[str, str]) -> str | None:
    """A SELECT of the staged batch with its text converted (``converted``: column -> SQL with
    ``{}`` for the column); None when no column needs it."""
    if not set(converted) & set(columns):
        return None
    q = DIALECT.quote
    picked = ", ".join(f"{converted[c].format(q(c))} AS {q(c)}" if c in converted else q(c) for c in columns)
    return f"SELECT {picked} FROM {staging}"


def merge_works(cur: Any, staging: str, table: str, columns: Sequence[str], key: Sequence[str],
                converted: Mapping[str, str] = EMPTY) -> bool:
    """Whether MERGE runs inside a transaction here: tried on the empty staging table, rolled back."""
    cur.execute("BEGIN")
    try:
        cur.execute(sql.upsert_merge(DIALECT, staging, table, columns, key, ConflictStrategy.OVERWRITE,
                                     staged(staging, columns, converted)))
        return True
    except sf_errors.InternalServerError:
        return False
    finally:
        cur.execute("ROLLBACK")


def statements(staging: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy,
               merge: bool = True, converted: Mapping[str, str] = EMPTY) -> list[str]:
    """What upserts a staged batch: the MERGE, or the UPDATE and INSERT that stand for it."""
    using = staged(staging, columns, converted)
    if merge:
        return [sql.upsert_merge(DIALECT, staging, table, columns, key, strategy, using)]
    q = DIALECT.quote
    source = f"({using})" if using else staging
    match = sql.key_match(DIALECT, "t", "s", key)
    cols = DIALECT.column_list(columns)
    out = []
    others = [c for c in columns if c not in key]
    if strategy in (ConflictStrategy.OVERWRITE, ConflictStrategy.MERGE) and others:
        if strategy == ConflictStrategy.MERGE:
            sets = ", ".join(f"{q(c)} = COALESCE(s.{q(c)}, t.{q(c)})" for c in others)
        else:
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in others)
        out.append(f"UPDATE {table} t SET {sets} FROM {source} s WHERE {match}")
    out.append(f"INSERT INTO {table} ({cols}) SELECT {', '.join('s.' + q(c) for c in columns)} FROM {source} s "
               f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})")
    return out


def run(cur: Any, staging: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy,
        merge: bool, converted: Mapping[str, str] = EMPTY) -> tuple[int, int]:
    """Upsert the staged batch; (inserted, updated)."""
    if merge:
        cur.execute(statements(staging, table, columns, key, strategy, converted=converted)[0])
        row = cur.fetchone() or ()
        found = dict(zip([d.name.lower() for d in cur.description or []], row))
        return int(found.get("number of rows inserted", 0) or 0), int(found.get("number of rows updated", 0) or 0)
    updated = inserted = 0
    for statement in statements(staging, table, columns, key, strategy, merge=False, converted=converted):
        cur.execute(statement)
        if statement.startswith("UPDATE"):
            updated = cur.rowcount or 0
        else:
            inserted = cur.rowcount or 0
    return inserted, updated


# --- the staging table ------------------------------------------------------------------------


def staging_ddl(staging: str, columns: list[str], table: TableName, converted: dict[str, str] | None = None) -> str:
    """The session's staging table: the batch's columns, with the table's types but VARCHAR for
    those loaded as text and converted on the way (:data:`CONVERTED`); created once per session,
    before its first transaction."""
    q = DIALECT.quote
    converted = converted or {}
    picked = ", ".join(f"CAST({q(c)} AS VARCHAR) AS {q(c)}" if c in converted else q(c) for c in columns)
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} AS SELECT {picked} FROM {table.sql} WHERE 1 = 0"


def insert_converted(table: str, staging: str, columns: list[str], converted: dict[str, str]) -> str:
    """The staged batch into the table, its text converted."""
    return f"INSERT INTO {table} ({DIALECT.column_list(columns)}) {staged(staging, columns, converted)}"


CONVERTED = {"VARIANT": "PARSE_JSON({})", "OBJECT": "PARSE_JSON({})", "ARRAY": "PARSE_JSON({})",
             "BINARY": "TO_BINARY({}, 'HEX')"}
"""Column types loaded from a CSV field as text and converted explicitly: a field loaded straight
into a VARIANT is a JSON string, not the document; a BINARY field's reading would depend on the
file format's BINARY_FORMAT."""
_BY_LOGICAL = {"json": "VARIANT", "bytes": "BINARY"}


def converted_columns(info: TableInfo | None, schema: pa.Schema, names: dict[str, str]) -> dict[str, str]:
    """The target's columns loaded as text and converted, by the table's names."""
    if info is not None:
        declared = {c.name: c.declared.upper() for c in info.columns}
    else:
        declared = {names.get(f.name, f.name): _BY_LOGICAL.get(logical_of(f).name, "") for f in schema}
    return {name: CONVERTED[kind] for name, kind in declared.items() if kind in CONVERTED}


def staging_name(table: TableName) -> str:
    return quote_ident("_portl_stage_" + uuid.uuid5(uuid.NAMESPACE_URL, str(table)).hex[:12])
