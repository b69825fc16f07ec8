"""``mode: replace`` as an atomic swap.

Rows are loaded into ``<table>__portl_new``, created ``LIKE <table> INCLUDING ALL`` (columns,
defaults, identity, CHECK constraints, indexes, comments). When the run finishes, ONE transaction
renames the old table away, renames the new one in, moves what belongs to the table (the
sequences of serial columns, GRANTs, foreign keys, index and sequence names) and drops the old
table. Readers see the old rows until that commit, then the new ones; nobody sees a half-loaded
table.

A view or another table's foreign key that refers to the old table would be dropped with it (or
would block the drop), so a replace of such a table is refused before anything is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import psycopg

from portl.connectors.postgres import catalog
from portl.connectors.postgres.catalog import TableName
from portl.connectors.postgres.typemap import DIALECT, quote_ident
from portl.connectors.sql import dialect as sql
from portl.errors import TerminalError
from portl.types import LogicalType

NEW = "__portl_new"
OLD = "__portl_old"
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: Postgres truncates longer names


def side_name(name: str, suffix: str) -> str:
    """``<name><suffix>``, shortened with a hash when it would pass Postgres's 63-byte limit."""
    full = name + suffix
    if len(full.encode()) <= MAX_NAME_BYTES:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name.encode()[:MAX_NAME_BYTES - len(suffix) - 9].decode(errors="ignore")
    return f"{head}_{digest}{suffix}"


def check_no_dependents(conn: psycopg.Connection, table: TableName) -> None:
    """Refuse a replace that the final DROP of the old table would break."""
    oid = catalog.table_oid(conn, table)
    found = catalog.dependents(conn, oid) if oid is not None else []
    if found:
        raise TerminalError(
            f"mode replace loads a new table and drops {table} at the end, but {', '.join(found)} "
            f"{'depends' if len(found) == 1 else 'depend'} on it and would be dropped with it. Drop "
            f"{'it' if len(found) == 1 else 'them'} first and create {'it' if len(found) == 1 else 'them'} again after "
            "the load, or load with mode append into an emptied table, or with mode upsert"
        )


def create_new(new: TableName, columns: Sequence[tuple[str, LogicalType, bool]]) -> str:
    """The new table when there is no old one to copy the shape of."""
    return sql.create_table(DIALECT, new.sql, columns)


def swap(conn: psycopg.Connection, table: TableName, new: TableName) -> None:
    """Put ``new`` in place of ``table``. Runs inside the caller's transaction."""
    new_oid = catalog.table_oid(conn, new)
    if new_oid is None:
        raise TerminalError(f"cannot finish the replace of {table}: the loaded table {new} is missing; run the job again")
    old_oid = catalog.table_oid(conn, table)
    old = TableName(table.schema, side_name(table.name, OLD))
    statements: list[str] = []
    after_drop: list[str] = []
    if old_oid is not None:
        statements.append(f"ALTER TABLE {table.sql} RENAME TO {quote_ident(old.name)}")
    statements.append(f"ALTER TABLE {new.sql} RENAME TO {quote_ident(table.name)}")
    if old_oid is not None:
        statements += _serial_sequences(conn, old_oid, new_oid, table)
        statements += _grants(conn, old_oid, table)
        after_drop += _foreign_keys(conn, old_oid, table)
        statements.append(f"DROP TABLE {old.sql}")
    for statement in statements + after_drop:
        conn.execute(statement)
    for statement in _names_back(conn, new_oid, new.name, table) + _sequences_past_max(conn, new_oid, table):
        conn.execute(statement)


def _serial_sequences(conn: psycopg.Connection, old_oid: int, new_oid: int, table: TableName) -> list[str]:
    """A serial column's sequence belongs to the old column; LIKE copied the default that uses it,
    so it moves to the new column instead of being dropped with the old table."""
    rows = conn.execute(
        "SELECT s.oid::regclass::text, a.attname FROM pg_depend d "
        "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s AND d.deptype = 'a' "
        "AND EXISTS (SELECT 1 FROM pg_attribute n WHERE n.attrelid = %s AND n.attname = a.attname AND NOT n.attisdropped)",
        (old_oid, new_oid),
    ).fetchall()
    return [f"ALTER SEQUENCE {seq} OWNED BY {table.sql}.{quote_ident(column)}" for seq, column in rows]


def _grants(conn: psycopg.Connection, old_oid: int, table: TableName) -> list[str]:
    """The old table's GRANTs (to roles other than its owner), given again on the new table."""
    rows = conn.execute(
        "SELECT g.privilege_type, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END, "
        "g.is_grantable FROM pg_class c, aclexplode(c.relacl) g WHERE c.oid = %s AND g.grantee <> c.relowner "
        "ORDER BY 2, 1",
        (old_oid,),
    ).fetchall()
    return [f"GRANT {privilege} ON {table.sql} TO {grantee}{' WITH GRANT OPTION' if grantable else ''}"
            for privilege, grantee, grantable in rows]


def _foreign_keys(conn: psycopg.Connection, old_oid: int, table: TableName) -> list[str]:
    """LIKE copies no foreign keys: the old table's are added to the new one (and checked)."""
    rows = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s AND contype = 'f' ORDER BY conname",
        (old_oid,),
    ).fetchall()
    return [f"ALTER TABLE {table.sql} ADD CONSTRAINT {quote_ident(name)} {definition}" for name, definition in rows]


def _names_back(conn: psycopg.Connection, new_oid: int, new_name: str, table: TableName) -> list[str]:
    """Indexes and identity sequences that LIKE named after ``<table>__portl_new`` get the
    names the old table's had (``t__portl_new_pkey`` → ``t_pkey``)."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c WHERE c.oid IN ("
        "  SELECT indexrelid FROM pg_index WHERE indrelid = %s"
        "  UNION SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s "
        "  AND d.deptype IN ('a', 'i')) AND c.relkind IN ('i', 'S') AND starts_with(c.relname, %s)",
        (new_oid, new_oid, new_name),
    ).fetchall()
    out = []
    for name, kind in rows:
        what = "INDEX" if kind == "i" else "SEQUENCE"
        target = (table.name + name[len(new_name):]).encode()[:MAX_NAME_BYTES].decode(errors="ignore")
        out.append(f"ALTER {what} {quote_ident(table.schema)}.{quote_ident(name)} RENAME TO {quote_ident(target)}")
    return out


def _sequences_past_max(conn: psycopg.Connection, new_oid: int, table: TableName) -> list[str]:
    """An identity column copied by LIKE gets a fresh sequence, and a serial one keeps the old
    table's; either way the next generated value must come after the loaded rows."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL",
        (new_oid, table.sql),
    ).fetchall()
    return [sequence_past_max(conn, table, column) for (column,) in rows]


def sequence_past_max(conn: psycopg.Connection, table: TableName, column: str) -> str:
    """``setval`` of a column's sequence to the column's largest value (nothing for an empty table)."""
    literal = psycopg.sql.Literal
    col = quote_ident(column)
    return (f"SELECT setval(pg_get_serial_sequence({literal(table.sql).as_string(conn)}, {literal(column).as_string(conn)}), "
            f"max({col})) FROM {table.sql} HAVING max({col}) IS NOT NULL")
