"""``mode: replace`` as a swap: rows are loaded into ``<table>__portl_new``; when the run
finishes, the loaded table takes the table's place and the old rows are dropped.

On Snowflake, ``ALTER TABLE t SWAP WITH new`` exchanges the two in one atomic statement: readers
see the old rows until then, the new ones after. A server that does not know SWAP (an emulator)
gets two renames and a drop instead, which leave a moment without the table; :func:`can_swap`
finds that out before loading, so that the run report can say so. Every DDL statement commits by itself on Snowflake, so what a crash between two of them left
is recognised by the comment put on the loaded table just before the swap, which names the run.
"""

from __future__ import annotations

from typing import Any

from snowflake.connector import errors as sf_errors

from portl.connectors.snowflake.connection import TableName, table_exists
from portl.connectors.snowflake.typemap import quote_ident

NEW = "__portl_new"
OLD = "__portl_old"
NOT_ATOMIC = ("the server does not know ALTER TABLE … SWAP WITH, so the replace of {table} renames the old "
              "table away and the loaded one in: for a moment the table does not exist")


def tag(run_id: str) -> str:
    """The comment that marks the loaded table of run ``run_id``."""
    return f"loaded by portl, mode replace, run {run_id}"


def statements(table: TableName, new: TableName, exists: bool, run_id: str = "<run id>") -> list[str]:
    """What the swap runs, for the plan."""
    out = [f"ALTER TABLE {new.sql} SET COMMENT = '{tag(run_id)}'"]
    if exists:
        out += [f"ALTER TABLE {table.sql} SWAP WITH {new.sql}", f"DROP TABLE {new.sql}"]
    else:
        out.append(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
    return out


def can_swap(cur: Any, new: TableName) -> bool:
    """Whether the server knows ``SWAP WITH``: asked of the loaded table with itself, which changes
    nothing wherever it runs. Only a syntax error about SWAP says no."""
    try:
        cur.execute(f"ALTER TABLE {new.sql} SWAP WITH {new.sql}")
    except sf_errors.ProgrammingError as exc:
        return not _unknown_swap(exc)
    return True


def _unknown_swap(exc: Exception) -> bool:
    text = str(exc).lower()
    return "swap" in text and "syntax" in text


def comment_of(cur: Any, table: TableName) -> str | None:
    where = "table_schema = %s" if table.schema else "table_schema = CURRENT_SCHEMA()"
    params = (table.schema.split(".")[-1], table.name) if table.schema else (table.name,)
    cur.execute(f"SELECT comment FROM information_schema.tables WHERE {where} AND table_name = %s", params)
    row = cur.fetchone()
    return row[0] if row else None


def swap(cur: Any, table: TableName, new: TableName, run_id: str) -> None:
    """Put ``new`` in place of ``table``. Safe to run again after a crash at any point of it."""
    mark = tag(run_id)
    if comment_of(cur, table) == mark:  # swapped before a crash; only the old rows may be left
        cur.execute(f"DROP TABLE IF EXISTS {new.sql}")
        return
    if not table_exists(cur, new):
        raise sf_errors.ProgrammingError(msg=f"the loaded table {new} is missing; run the job again")
    cur.execute(f"ALTER TABLE {new.sql} SET COMMENT = %s", (mark,))
    old = table.sibling(table.name + OLD)
    if not table_exists(cur, table):
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
        cur.execute(f"DROP TABLE IF EXISTS {old.sql}")  # left by a crash in the middle of the renames below
        return
    try:
        cur.execute(f"ALTER TABLE {table.sql} SWAP WITH {new.sql}")
    except sf_errors.ProgrammingError as exc:
        if not _unknown_swap(exc):
            raise
        cur.execute(f"DROP TABLE IF EXISTS {old.sql}")
        cur.execute(f"ALTER TABLE {table.sql} RENAME TO {quote_ident(old.name)}")
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
        cur.execute(f"DROP TABLE {old.sql}")
        return
    cur.execute(f"DROP TABLE {new.sql}")
