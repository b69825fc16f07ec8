"""What differs between SQL databases, as data: quoting, placeholders, type map, upsert shape.

Every SQL statement Portl runs is built here from a :class:`Dialect` and quoted identifiers; values
are always bound parameters. SQLite, Postgres and MySQL each specialise the same :class:`Dialect`
with their own flags instead of branching on a database name in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from portl.connectors.base import ConflictStrategy
from portl.types import LogicalType


@dataclass(frozen=True)
class Dialect:
    """The facts about one SQL database that statement building needs."""

    name: str
    quote: Callable[[str], str]
    placeholder: str
    type_names: dict[str, str]
    decimal_name: str = "DECIMAL({p},{s})"
    # How an upsert names the incoming row's value of column c: "excluded.{c}" or "VALUES({c})".
    incoming: str = "excluded.{c}"
    # SQLite needs "WHERE true" between INSERT ... SELECT and ON CONFLICT to parse it.
    select_where_true: bool = False
    conflict_target: bool = True
    # "on_conflict": INSERT ... ON CONFLICT (SQLite, Postgres). "on_duplicate_key": MySQL's
    # INSERT ... SELECT ... ON DUPLICATE KEY UPDATE, which fires on any unique key of the table.
    # "merge": MERGE INTO ... USING stage ON <key> (Snowflake, whose keys are not enforced).
    upsert_clause: str = "on_conflict"
    notes: dict[str, str] = field(default_factory=dict)

    def column_type(self, logical: LogicalType) -> str:
        """The declared column type for a logical type."""
        if logical.name == "decimal":
            return self.decimal_name.format(p=logical.precision, s=logical.scale)
        return self.type_names[logical.name]

    def table(self, name: str) -> str:
        """A possibly schema-qualified table name, each part quoted."""
        return ".".join(self.quote(part) for part in split_qualified(name))

    def column_list(self, columns: Sequence[str]) -> str:
        return ", ".join(self.quote(c) for c in columns)

    def placeholders(self, count: int) -> str:
        return ", ".join([self.placeholder] * count)


_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


def split_qualified(name: str) -> list[str]:
    """``schema.table`` → ``["schema", "table"]``; a part in double quotes keeps its dots and
    quotes (``'"odd.name"'`` → ``["odd.name"]``, ``'main."odd.name"'`` → ``["main", "odd.name"]``),
    so a name quoted by :meth:`Dialect.table` splits back into the same parts."""
    parts: list[str] = []
    pos = 0
    while True:
        match = _NAME_PART.match(name, pos)
        if match is None:
            return name.split(".")
        quoted, plain = match.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else plain)
        pos = match.end()
        if pos == len(name):
            return parts
        if name[pos] != ".":
            return name.split(".")
        pos += 1


def create_table(d: Dialect, table: str, columns: Sequence[tuple[str, LogicalType, bool]], primary_key: Sequence[str] = (), temporary: bool = False) -> str:
    """``CREATE TABLE`` for ``(name, logical type, nullable)`` columns, with an optional primary key."""
    parts = [f"{d.quote(n)} {d.column_type(t)}{'' if nullable else ' NOT NULL'}" for n, t, nullable in columns]
    if primary_key:
        parts.append(f"PRIMARY KEY ({d.column_list(primary_key)})")
    kind = "TEMPORARY TABLE" if temporary else "TABLE"
    return f"CREATE {kind} IF NOT EXISTS {d.table(table)} (\n  " + ",\n  ".join(parts) + "\n)"


def add_column(d: Dialect, table: str, name: str, logical: LogicalType) -> str:
    return f"ALTER TABLE {d.table(table)} ADD COLUMN {d.quote(name)} {d.column_type(logical)}"


def insert_values(d: Dialect, table: str, columns: Sequence[str], rows: int = 1) -> str:
    """An ``INSERT`` of ``rows`` rows of bound values, to run with executemany."""
    one = f"({d.placeholders(len(columns))})"
    return f"INSERT INTO {d.table(table)} ({d.column_list(columns)}) VALUES " + ", ".join([one] * rows)


def key_match(d: Dialect, left: str, right: str, key: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{d.quote(k)} = {right}.{d.quote(k)}" for k in key)


def count_existing(d: Dialect, stage: str, table: str, key: Sequence[str]) -> str:
    """How many staged rows already have their key in the target table."""
    return (
        f"SELECT count(*) FROM {d.table(stage)} s WHERE EXISTS "
        f"(SELECT 1 FROM {d.table(table)} t WHERE {key_match(d, 't', 's', key)})"
    )


def existing_keys(d: Dialect, stage: str, table: str, key: Sequence[str]) -> str:
    """The staged keys that already exist in the target table (for the ``fail`` strategy)."""
    cols = ", ".join(f"s.{d.quote(k)}" for k in key)
    return (
        f"SELECT {cols} FROM {d.table(stage)} s WHERE EXISTS "
        f"(SELECT 1 FROM {d.table(table)} t WHERE {key_match(d, 't', 's', key)})"
    )


def upsert_from_stage(d: Dialect, stage: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy) -> str:
    """ONE set-based statement moving a staged batch into the target under a conflict strategy."""
    if d.upsert_clause == "on_duplicate_key":
        return upsert_on_duplicate_key(d, stage, table, columns, key, strategy)
    if d.upsert_clause == "merge":
        return upsert_merge(d, stage, table, columns, key, strategy)
    cols = d.column_list(columns)
    where = " WHERE true" if d.select_where_true else ""
    head = f"INSERT INTO {d.table(table)} ({cols}) SELECT {cols} FROM {d.table(stage)}{where}"
    if strategy == ConflictStrategy.FAIL:
        return head  # conflicts were checked first; a plain insert reports any race as an error
    target = f" ({d.column_list(key)})" if d.conflict_target else ""
    others = [c for c in columns if c not in key]
    if strategy == ConflictStrategy.SKIP or not others:
        return f"{head} ON CONFLICT{target} DO NOTHING"
    t = d.table(table)
    if strategy == ConflictStrategy.MERGE:
        sets = ", ".join(f"{d.quote(c)} = COALESCE({d.incoming.format(c=d.quote(c))}, {t}.{d.quote(c)})" for c in others)
    else:
        sets = ", ".join(f"{d.quote(c)} = {d.incoming.format(c=d.quote(c))}" for c in others)
    return f"{head} ON CONFLICT{target} DO UPDATE SET {sets}"


def upsert_on_duplicate_key(d: Dialect, stage: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy) -> str:
    """MySQL's form: ``INSERT INTO t (...) SELECT ... FROM stage AS s ON DUPLICATE KEY UPDATE``.

    The incoming row is named through the stage's alias (``s.c``), which MySQL 5.7, 8 and
    MariaDB all accept, unlike ``VALUES(c)`` (deprecated in MySQL 8.0.20) or a row alias (MySQL
    only). ``skip`` updates the key to itself, which changes nothing and, unlike ``INSERT IGNORE``,
    turns no other error into a warning."""
    cols = d.column_list(columns)
    t = d.table(table)
    head = f"INSERT INTO {t} ({cols}) SELECT {', '.join('s.' + d.quote(c) for c in columns)} FROM {d.table(stage)} AS s"
    if strategy == ConflictStrategy.FAIL:
        return head
    others = [c for c in columns if c not in key]
    if strategy == ConflictStrategy.SKIP or not others:
        first = d.quote(key[0])
        return f"{head} ON DUPLICATE KEY UPDATE {t}.{first} = {t}.{first}"
    if strategy == ConflictStrategy.MERGE:
        sets = ", ".join(f"{t}.{d.quote(c)} = COALESCE(s.{d.quote(c)}, {t}.{d.quote(c)})" for c in others)
    else:
        sets = ", ".join(f"{t}.{d.quote(c)} = s.{d.quote(c)}" for c in others)
    return f"{head} ON DUPLICATE KEY UPDATE {sets}"


def upsert_merge(d: Dialect, stage: str, table: str, columns: Sequence[str], key: Sequence[str], strategy: ConflictStrategy,
                 using: str | None = None) -> str:
    """``MERGE INTO t USING stage s ON <key>``: the form of a database that does not enforce keys,
    where the match on the key columns is what finds an existing row. ``skip`` and ``fail`` only
    insert the rows not matched (``fail`` checked for conflicts first); ``overwrite`` sets every
    other column, ``merge`` only those the incoming row has a value for. ``using`` is a subquery
    over the stage to merge from instead (one that converts staged text, such as JSON)."""
    cols = d.column_list(columns)
    values = ", ".join(f"s.{d.quote(c)}" for c in columns)
    source = f"({using})" if using else d.table(stage)
    head = f"MERGE INTO {d.table(table)} t USING {source} s ON {key_match(d, 't', 's', key)}"
    insert = f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    others = [c for c in columns if c not in key]
    if strategy in (ConflictStrategy.SKIP, ConflictStrategy.FAIL) or not others:
        return head + insert
    if strategy == ConflictStrategy.MERGE:
        sets = ", ".join(f"t.{d.quote(c)} = COALESCE(s.{d.quote(c)}, t.{d.quote(c)})" for c in others)
    else:
        sets = ", ".join(f"t.{d.quote(c)} = s.{d.quote(c)}" for c in others)
    return f"{head} WHEN MATCHED THEN UPDATE SET {sets}{insert}"
