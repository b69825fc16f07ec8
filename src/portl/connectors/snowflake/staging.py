"""Upserting a staged batch: ONE ``MERGE`` on the key, in the batch's transaction.

The staging table holds a JSON column as text (a CSV field is text); the statements read the
stage through :func:`staged`, which turns that text into a VARIANT with ``PARSE_JSON``.

A server that cannot run MERGE inside an explicit transaction (fakesnow builds its MERGE from a
temporary table, which DuckDB will not create in a transaction that has written) is found by a
probe on the empty staging table when the session starts; its batches are then upserted with
``UPDATE … FROM`` and ``INSERT … WHERE NOT EXISTS``, two statements with the MERGE's outcome, and
the run report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snowflake.connector import errors as sf_errors

from portl.connectors.base import ConflictStrategy
from portl.connectors.snowflake.typemap import DIALECT
from portl.connectors.sql import dialect as sql

NO_MERGE = ("the server cannot run MERGE inside a transaction, so each batch of {table} was upserted with "
            "UPDATE … FROM and INSERT … WHERE NOT EXISTS, in the batch's transaction")


def staged(staging: str, columns: Sequence[str], json: frozenset[str]) -> str | None:
    """A SELECT of the staged batch with its JSON columns parsed; None when it has none."""
    if not json & set(columns):
        return None
    q = DIALECT.quote
    picked = ", ".join(f"PARSE_JSON({q(c)}) AS {q(c)}" if c in json else q(c) for c in columns)
    return f"SELECT {picked} FROM {staging}"


def merge_works(cur: Any, staging: str, table: str, columns: Sequence[str], key: Sequence[str],
                json: frozenset[str] = frozenset()) -> bool:
    """Whether MERGE runs inside a transaction here: tried on the empty staging table, rolled back."""
    cur.execute("BEGIN")
    try:
        cur.execute(sql.upsert_merge(DIALECT, staging, table, columns, key, ConflictStrategy.OVERWRITE,
                                     staged(staging, columns, json)))
        return True
    except sf_errors.InternalServerError:
        return False
    finally:
        cur.execute("ROLLBACK")


def statements(staging: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy,
               merge: bool = True, json: frozenset[str] = frozenset()) -> list[str]:
    """What upserts a staged batch: the MERGE, or the UPDATE and INSERT that stand for it."""
    using = staged(staging, columns, json)
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
        merge: bool, json: frozenset[str] = frozenset()) -> tuple[int, int]:
    """Upsert the staged batch; (inserted, updated)."""
    if merge:
        cur.execute(statements(staging, table, columns, key, strategy, json=json)[0])
        row = cur.fetchone() or ()
        found = dict(zip([d.name.lower() for d in cur.description or []], row))
        return int(found.get("number of rows inserted", 0) or 0), int(found.get("number of rows updated", 0) or 0)
    updated = inserted = 0
    for statement in statements(staging, table, columns, key, strategy, merge=False, json=json):
        cur.execute(statement)
        if statement.startswith("UPDATE"):
            updated = cur.rowcount or 0
        else:
            inserted = cur.rowcount or 0
    return inserted, updated
