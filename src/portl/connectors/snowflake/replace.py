"""``mode: replace`` as a swap: rows are loaded into ``<table>__portl_new``; when the run
finishes, the loaded table takes the table's place and the old rows are dropped.

On Snowflake, ``ALTER TABLE t SWAP WITH new`` exchanges the two in one atomic statement: readers
see the old rows until then, the new ones after. A server that does not know SWAP (an emulator)
gets two renames and a drop instead, which leave a moment without the table; the run report says
so. Every DDL statement commits by itself on Snowflake, so what a crash between two of them left
is recognised by the comment put on the loaded table just before the swap, which names the run.
"""

from __future__ import annotations

from typing import Any

from snowflake.connector import errors as sf_errors

from portl.connectors.snowflake.connection import TableName, table_exists
from portl.connectors.snowflake.typemap import quote_ident

NEW = "__portl_new"
OLD = "__portl_old"
NOT_ATOMIC = ("the server does not know ALTER TABLE … SWAP WITH, so the replace of {table} renamed the old "
              "table away and the loaded one in: for a moment the table did not exist")


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


def comment_of(cur: Any, table: TableName) -> str | None:
    where = "table_schema = %s" if table.schema else "table_schema = CURRENT_SCHEMA()"
    params = (table.schema.split(".")[-1], table.name) if table.schema else (table.name,)
    cur.execute(f"SELECT comment FROM information_schema.tables WHERE {where} AND table_name = %s", params)
    row = cur.fetchone()
    return row[0] if row else None


def swap(cur: Any, table: TableName, new: TableName, run_id: str) -> str | None:
    """Put ``new`` in place of ``table``; a warning when that could not be done atomically.
    Safe to run again after a crash at any point of it."""
    mark = tag(run_id)
    if comment_of(cur, table) == mark:  # swapped before a crash; only the old rows may be left
        cur.execute(f"DROP TABLE IF EXISTS {new.sql}")
        return None
    if not table_exists(cur, new):
        raise sf_errors.ProgrammingError(msg=f"the loaded table {new} is missing; run the job again")
    cur.execute(f"ALTER TABLE {new.sql} SET COMMENT = %s", (mark,))
    old = table.sibling(table.name + OLD)
    if not table_exists(cur, table):
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
        cur.execute(f"DROP TABLE IF EXISTS {old.sql}")  # left by a crash in the middle of the renames below
        return None
    try:
        cur.execute(f"ALTER TABLE {table.sql} SWAP WITH {new.sql}")
    except sf_errors.ProgrammingError as exc:
        if "swap" not in str(exc).lower() or "syntax" not in str(exc).lower():
            raise
        cur.execute(f"DROP TABLE IF EXISTS {old.sql}")
        cur.execute(f"ALTER TABLE {table.sql} RENAME TO {quote_ident(old.name)}")
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
        cur.execute(f"DROP TABLE {old.sql}")
        return NOT_ATOMIC.format(table=table)
    cur.execute(f"DROP TABLE {new.sql}")
    return None
