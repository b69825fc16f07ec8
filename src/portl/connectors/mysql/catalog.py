"""What ``information_schema`` says about tables: columns, keys, indexes, foreign keys, triggers.

Every function takes an open cursor and bound parameters; nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from portl.connectors.base import CheckDef, ColumnInfo, ForeignKeyDef, IndexDef, TableDef, TableInfo, ViewDef
from portl.connectors.mysql.client import errno_of, execute
from portl.connectors.mysql.columns import Column, column_of_schema

_NAME_PART = re.compile(r'`((?:[^`]|``)*)`|"((?:[^"]|"")*)"|([^.`"]+)')
_JSON_CHECK = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)


def split_name(name: str, database: str) -> tuple[str, str]:
    """``db.table`` → ``(db, table)``; ``table`` → ``(database, table)``. A part in backticks or
    double quotes keeps its dots."""
    parts: list[str] = []
    pos = 0
    while pos <= len(name):
        match = _NAME_PART.match(name, pos)
        if match is None:
            parts = name.split(".")
            break
        back, double, plain = match.groups()
        parts.append(back.replace("``", "`") if back is not None else double.replace('""', '"') if double is not None else plain)
        pos = match.end()
        if pos == len(name):
            break
        if name[pos] != ".":
            parts = name.split(".")
            break
        pos += 1
    if len(parts) == 2:
        return parts[0], parts[1]
    return database, ".".join(parts)


def columns(cur: Any, database: str, table: str, mariadb: bool) -> list[Column]:
    """The columns of a table in order, with their logical types (empty when it does not exist)."""
    execute(cur, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, "
                 "CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                 "ORDER BY ORDINAL_POSITION", (database, table))
    rows = cur.fetchall()
    json_columns = _json_columns(cur, database, table) if mariadb and rows else set()
    return [column_of_schema(name, data_type, column_type, _int(precision), _int(scale), nullable == "YES", charset,
                             name in json_columns)
            for name, data_type, column_type, precision, scale, nullable, charset in rows]


def _json_columns(cur: Any, database: str, table: str) -> set[str]:
    """MariaDB stores JSON as LONGTEXT with a ``json_valid(col)`` check named after the column."""
    execute(cur, "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                 "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s", (database, table))
    found = set()
    for (clause,) in cur.fetchall():
        match = _JSON_CHECK.match(str(clause).strip())
        if match:
            found.add(match.group(1).replace("``", "`"))
    return found


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def indexes(cur: Any, database: str, table: str) -> dict[str, tuple[bool, list[str]]]:
    """Every B-tree index by name (``PRIMARY`` for the primary key): (unique, columns in order).
    FULLTEXT and SPATIAL indexes are left out: other databases cannot build them."""
    execute(cur, "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                 "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_TYPE NOT IN ('FULLTEXT', 'SPATIAL') "
                 "ORDER BY INDEX_NAME, SEQ_IN_INDEX", (database, table))
    found: dict[str, tuple[bool, list[str]]] = {}
    for name, non_unique, column in cur.fetchall():
        found.setdefault(name, (str(non_unique) == "0", []))[1].append(column)
    return found


def table_info(cur: Any, database: str, table: str, mariadb: bool, shown_as: str | None = None) -> TableInfo | None:
    """An existing table as the engine sees it, or None when there is no such table."""
    cols = columns(cur, database, table, mariadb)
    if not cols:
        return None
    execute(cur, "SELECT COLUMN_NAME, COLUMN_DEFAULT, EXTRA, GENERATION_EXPRESSION FROM information_schema.COLUMNS "
                 "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (database, table))
    defaults = {name: default is not None or "auto_increment" in (extra or "").lower() or bool(generated)
                for name, default, extra, generated in cur.fetchall()}
    keys = indexes(cur, database, table)
    primary = keys.pop("PRIMARY", (True, []))[1]
    uniques = [cols_ for unique, cols_ in keys.values() if unique]
    info = [ColumnInfo(c.name, c.field.type, c.declared, c.nullable, defaults.get(c.name, False)) for c in cols]
    return TableInfo(shown_as or table, info, primary, uniques, table_rows(cur, database, table))


def table_rows(cur: Any, database: str, table: str) -> int | None:
    """InnoDB's estimate of a table's row count (``information_schema.tables.table_rows``)."""
    execute(cur, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table))
    row = cur.fetchone()
    return _int(row[0]) if row else None


def table_names(cur: Any, database: str) -> list[str]:
    """The base tables of a database, Portl's own (``_portl_*``) left out."""
    execute(cur, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
                 "ORDER BY TABLE_NAME", (database,))
    return [name for (name,) in cur.fetchall() if not name.startswith("_portl_")]


_FOREIGN_KEYS = (
    "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, "
    "k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE FROM information_schema.KEY_COLUMN_USAGE k "
    "JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA "
    "AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
    "WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL{} "
    "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"
)


def foreign_keys(cur: Any, database: str, table: str) -> list[ForeignKeyDef]:
    """The foreign keys a table declares, with their referenced columns and rules."""
    execute(cur, _FOREIGN_KEYS.format(" AND k.TABLE_NAME = %s"), (database, table))
    return _foreign_keys_by_table(cur.fetchall(), database).get(table, [])


def _foreign_keys_by_table(rows: list[tuple], database: str) -> dict[str, list[ForeignKeyDef]]:
    """Rows of :data:`_FOREIGN_KEYS` as foreign keys per table; a referenced table in another
    database is named ``db.table``."""
    found: dict[tuple[str, str], list] = {}
    for table, name, column, ref_db, ref_table, ref_column, on_delete, on_update in rows:
        ref = ref_table if ref_db == database else f"{ref_db}.{ref_table}"
        entry = found.setdefault((table, name), [[], ref, [], on_delete, on_update])
        entry[0].append(column)
        entry[2].append(ref_column)
    out: dict[str, list[ForeignKeyDef]] = {}
    for (table, name), (cols, ref, ref_cols, on_delete, on_update) in found.items():
        out.setdefault(table, []).append(ForeignKeyDef(name, tuple(cols), ref, tuple(ref_cols), on_delete, on_update))
    return out


def referenced_by(cur: Any, database: str, table: str) -> list[str]:
    """Tables whose foreign keys point at this one."""
    execute(cur, "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
                 "WHERE REFERENCED_TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME = %s ORDER BY TABLE_NAME", (database, table))
    return [name if db == database else f"{db}.{name}" for db, name in cur.fetchall()]


def triggers(cur: Any, database: str, table: str) -> list[str]:
    execute(cur, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s "
                 "AND EVENT_OBJECT_TABLE = %s ORDER BY TRIGGER_NAME", (database, table))
    return [name for (name,) in cur.fetchall()]


def not_copied(cur: Any, database: str, tables: list[str]) -> list[str]:
    """What a whole-database copy of ``tables`` leaves out, one note each: a column's ``ON UPDATE``
    clause (the copied rows keep their values; the destination does not change them on update)
    and the tables' triggers."""
    if not tables:
        return []
    marks = ", ".join(["%s"] * len(tables))
    execute(cur, "SELECT TABLE_NAME, COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                 f"AND TABLE_NAME IN ({marks}) AND EXTRA LIKE %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (database, *tables, "%on update%"))
    notes = [f"the {_ON_UPDATE.search(extra).group(0)} clause of column {column} of table {table} is not copied: "
             "the copied values are kept, but the destination does not change them when a row is updated "
             "(a trigger there can)" for table, column, extra in cur.fetchall() if _ON_UPDATE.search(extra or "")]
    execute(cur, "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s "
                 f"AND EVENT_OBJECT_TABLE IN ({marks}) ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME", (database, *tables))
    notes += [f"trigger {name} of table {table} is not copied: triggers are code, written again by hand in the "
              "destination's own language" for table, name in cur.fetchall()]
    return notes


_ON_UPDATE = re.compile(r"on update \S+", re.IGNORECASE)


def identity_column(cur: Any, database: str, table: str) -> str | None:
    """The AUTO_INCREMENT column of a table, if it has one."""
    execute(cur, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                 "AND EXTRA LIKE '%auto_increment%'", (database, table))
    row = cur.fetchone()
    return row[0] if row else None


def table_def(cur: Any, database: str, table: str, mariadb: bool) -> TableDef:
    """One table as a whole-database copy needs it: columns (with declared text lengths and
    defaults), keys, indexes, foreign keys, CHECK constraints, identity."""
    cols = columns(cur, database, table, mariadb)
    keys = indexes(cur, database, table)
    primary = tuple(keys.pop("PRIMARY", (True, []))[1])
    fields = [c.field.with_nullable(c.nullable and c.name not in primary) for c in cols]
    index_defs = tuple(IndexDef(name, tuple(cols_), unique) for name, (unique, cols_) in keys.items())
    lengths = {c.name: int(m.group(1)) for c in cols if c.logical.name == "text" and (m := _LENGTH.match(c.declared))}
    json_columns = {c.name for c in cols if c.logical.name == "json"}
    return TableDef(table, pa.schema(fields), primary, index_defs, tuple(foreign_keys(cur, database, table)),
                    identity_column(cur, database, table), table_rows(cur, database, table), lengths=lengths,
                    defaults=_defaults(cur, database, table, mariadb),
                    checks=tuple(_checks(cur, database, table, mariadb, json_columns)), dialect="mysql")


_LENGTH = re.compile(r"^(?:var)?char\((\d+)\)", re.IGNORECASE)


def _defaults(cur: Any, database: str, table: str, mariadb: bool) -> dict[str, str]:
    """Each column's default as an SQL expression. MariaDB shows one as SQL already (``'abc'``,
    ``current_timestamp()``, ``NULL``); MySQL shows a literal's bare text, and marks an expression
    ``DEFAULT_GENERATED``."""
    execute(cur, "SELECT COLUMN_NAME, COLUMN_DEFAULT, EXTRA, DATA_TYPE FROM information_schema.COLUMNS "
                 "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_DEFAULT IS NOT NULL", (database, table))
    out = {}
    for name, default, extra, data_type in cur.fetchall():
        text = str(default)
        if not mariadb and "default_generated" not in (extra or "").lower() and not _NUMERIC_TYPE.match(str(data_type)):
            text = "'" + text.replace("'", "''") + "'"
        out[name] = text
    return out


_NUMERIC_TYPE = re.compile(r"^(tiny|small|medium|big)?int|decimal|numeric|float|double|bit", re.IGNORECASE)


def _checks(cur: Any, database: str, table: str, mariadb: bool, json_columns: set[str]) -> list[CheckDef]:
    """The table's CHECK constraints, less MariaDB's ``json_valid`` checks of JSON columns (which
    only say the column is JSON)."""
    same_table = " AND cc.TABLE_NAME = tc.TABLE_NAME" if mariadb else ""  # MariaDB names checks per table
    try:
        execute(cur, "SELECT tc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM information_schema.TABLE_CONSTRAINTS tc "
                     "JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA "
                     f"AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME{same_table} "
                     "WHERE tc.TABLE_SCHEMA = %s AND tc.TABLE_NAME = %s AND tc.CONSTRAINT_TYPE = 'CHECK' "
                     "ORDER BY tc.CONSTRAINT_NAME", (database, table))
    except Exception as exc:
        if errno_of(exc) == 1109:  # unknown table: MySQL before 8.0.16 keeps no CHECK constraints
            return []
        raise
    out = []
    for name, clause in cur.fetchall():
        match = _JSON_CHECK.match(str(clause).strip())
        if match and match.group(1).replace("``", "`") in json_columns:
            continue
        out.append(CheckDef(name, str(clause)))
    return out


def views(cur: Any, database: str) -> list[ViewDef]:
    """The views of a database with their queries as the server shows them."""
    execute(cur, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
                 "ORDER BY TABLE_NAME", (database,))
    return [ViewDef(name, str(query or ""), "mysql", database,
                    "" if query else "the server does not show its query to this user")
            for name, query in cur.fetchall()]


@dataclass(frozen=True)
class ColumnState:
    """What a whole-database copy's last step may change in a column."""

    nullable: bool
    data_type: str  # information_schema's DATA_TYPE, lower case: ``longtext``, ``varchar``, ``int``...
    auto_increment: bool


@dataclass(frozen=True)
class TableKeys:
    """What one table of the destination has already of what a whole-database copy adds after the
    data: column nullability and types, primary key, indexes, foreign keys, AUTO_INCREMENT."""

    columns: dict[str, ColumnState] = field(default_factory=dict)  # by lower-case name: MySQL's are case-blind
    primary_key: tuple[str, ...] = ()
    indexes: frozenset[str] = frozenset()  # secondary index names, lower case
    foreign_keys: tuple[ForeignKeyDef, ...] = ()
    checks: frozenset[str] = frozenset()  # CHECK constraint names, lower case


def keys_of_tables(cur: Any, database: str) -> dict[str, TableKeys]:
    """Every table of ``database`` with its :class:`TableKeys`, in three queries whatever the
    number of tables."""
    execute(cur, "SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE, DATA_TYPE, EXTRA FROM information_schema.COLUMNS "
                 "WHERE TABLE_SCHEMA = %s", (database,))
    columns: dict[str, dict[str, ColumnState]] = {}
    for table, column, nullable, data_type, extra in cur.fetchall():
        columns.setdefault(table, {})[column.lower()] = ColumnState(
            nullable == "YES", str(data_type).lower(), "auto_increment" in (extra or "").lower())
    execute(cur, "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                 "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", (database,))
    primary: dict[str, list[str]] = {}
    indexes: dict[str, set[str]] = {}
    for table, index, column in cur.fetchall():
        if index == "PRIMARY":
            primary.setdefault(table, []).append(column)
        else:
            indexes.setdefault(table, set()).add(index.lower())
    execute(cur, _FOREIGN_KEYS.format(""), (database,))
    foreign = _foreign_keys_by_table(cur.fetchall(), database)
    execute(cur, "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS "
                 "WHERE TABLE_SCHEMA = %s AND CONSTRAINT_TYPE = 'CHECK'", (database,))
    checks: dict[str, set[str]] = {}
    for table, name in cur.fetchall():
        checks.setdefault(table, set()).add(name.lower())
    return {table: TableKeys(cols, tuple(primary.get(table, ())), frozenset(indexes.get(table, ())),
                             tuple(foreign.get(table, ())), frozenset(checks.get(table, ())))
            for table, cols in columns.items()}
