"""The DDL that ends a whole-database copy into MySQL: keys, indexes, foreign keys, AUTO_INCREMENT.

Tables are created without keys and filled first (loading is faster without indexes to keep up),
then, per table, ONE ``ALTER TABLE`` (one table rebuild) sets the primary key, NOT NULL columns,
the column types a key needs and AUTO_INCREMENT; then secondary indexes; then foreign keys, once
every table they point at has its key.

- A text column in a primary key, a unique index or a foreign key (at either end) becomes
  VARCHAR(255) (bytes: VARBINARY(255)): MySQL cannot index a LONGTEXT column whole. A plain
  index on a text column indexes its first 255 characters instead.
- Making a column AUTO_INCREMENT on a filled table starts its counter at max + 1: the next row
  inserted without an id gets the id after the largest one copied.
- ``ON DELETE SET DEFAULT`` becomes NO ACTION: InnoDB does not support it.
- Index names are per table in MySQL, as in the source or narrower, so they are kept. Foreign
  key names are per *database* in MySQL (per table in Postgres and SQLite): one already taken,
  by another copied table or by a table the database has, becomes ``<table>_<name>``, and the
  plan says so; otherwise its ``ADD CONSTRAINT`` would fail as "already there" and be skipped.
"""

from __future__ import annotations

import hashlib
from typing import Any

from portl.connectors.base import ForeignKeyDef, TableDef
from portl.connectors.mysql.client import errno_of
from portl.connectors.mysql.dialect import KEY_TYPES, column_definition, index_columns, qualified, quote
from portl.types import LogicalType, logical_of

_RULES = {"CASCADE", "SET NULL", "RESTRICT", "NO ACTION"}


def constraint_statements(database: str, tables: list[TableDef], every_table: list[TableDef],
                          taken: frozenset[str] = frozenset()) -> list[str]:
    """The statements for ``tables``; ``every_table`` (the whole copy) tells which columns other
    tables' foreign keys point at, ``taken`` the foreign key names (lower case) the database has
    already."""
    types = {t.name: {f.name: logical_of(f) for f in t.schema} for t in every_table}
    keyed = _key_columns(every_table)
    statements: list[str] = []
    for t in tables:
        alter = _table_alter(database, t, types[t.name], keyed.get(t.name, set()))
        if alter:
            statements.append(alter)
    for t in tables:
        for index in t.indexes:
            kind = "UNIQUE INDEX" if index.unique else "INDEX"
            plain = {c: lt for c, lt in types[t.name].items() if c not in keyed.get(t.name, set())}
            statements.append(f"CREATE {kind} {quote(_short(index.name))} ON {qualified(database, t.name)} "
                              f"({index_columns(index.columns, plain, prefix=not index.unique)})")
        late = _late_identity(database, t, types[t.name])
        if late:
            statements.append(late)
    names, _ = foreign_key_names(tables, taken)
    for t in tables:
        for fk in t.foreign_keys:
            name = names[(t.name, fk)]
            statements.append(
                f"ALTER TABLE {qualified(database, t.name)} ADD CONSTRAINT {quote(name)} FOREIGN KEY "
                f"({', '.join(quote(c) for c in fk.columns)}) REFERENCES {_ref(database, fk.ref_table)} "
                f"({', '.join(quote(c) for c in fk.ref_columns)}) ON DELETE {_rule(fk.on_delete)} ON UPDATE {_rule(fk.on_update)}"
            )
    return statements


def foreign_key_names(tables: list[TableDef], taken: frozenset[str] = frozenset()
                      ) -> tuple[dict[tuple[str, ForeignKeyDef], str], list[str]]:
    """A name per foreign key, unique in the database as MySQL wants (Postgres and SQLite name
    them per table), and a note for each one renamed. A name already used by the copy or by
    ``taken`` (lower case) becomes ``<table>_<name>``; a name longer than 64 characters is cut
    and ended with a hash."""
    owners = {name: "" for name in taken}  # lower-case name -> the copied table that took it
    names: dict[tuple[str, ForeignKeyDef], str] = {}
    notes = []
    for t in tables:
        for fk in t.foreign_keys:
            name = _short(fk.name)
            n = 1
            while name.lower() in owners:
                name = _short(f"{t.name}_{fk.name}" if n == 1 else f"{t.name}_{fk.name}_{n}")
                n += 1
            owners[name.lower()] = t.name
            names[(t.name, fk)] = name
            if name == fk.name:
                continue
            owner = owners.get(fk.name.lower())
            if len(fk.name) > 64:
                why = f"{fk.name} is longer than the 64 characters MySQL allows in a name"
            elif owner:
                why = f"table {owner} has a foreign key {fk.name} too, and MySQL names foreign keys per database"
            else:
                why = f"the database has a foreign key {fk.name} already, and MySQL names foreign keys per database"
            notes.append(f"foreign key {fk.name} of table {t.name} is created as {name}: {why}")
    return names, notes


def _key_columns(tables: list[TableDef]) -> dict[str, set[str]]:
    """Per table, the columns MySQL must index whole: primary key, unique indexes, both ends of
    foreign keys."""
    keyed: dict[str, set[str]] = {}
    for t in tables:
        columns = keyed.setdefault(t.name, set())
        columns.update(t.primary_key)
        for index in t.indexes:
            if index.unique:
                columns.update(index.columns)
        for fk in t.foreign_keys:
            columns.update(fk.columns)
            keyed.setdefault(fk.ref_table, set()).update(fk.ref_columns)
    return keyed


def _table_alter(database: str, t: TableDef, types: dict[str, LogicalType], keyed: set[str]) -> str | None:
    changes = []
    if t.primary_key:
        changes.append(f"ADD PRIMARY KEY ({', '.join(quote(c) for c in t.primary_key)})")
    for f in t.schema:
        logical = types[f.name]
        as_key = f.name in keyed and logical.name in KEY_TYPES
        not_null = not f.nullable or f.name in t.primary_key
        auto = _identity_in_key(t) == f.name
        if as_key or not_null or auto:
            changes.append("MODIFY " + column_definition(f.name, logical, nullable=not not_null, key=as_key,
                                                          auto_increment=auto))
    return f"ALTER TABLE {qualified(database, t.name)} " + ", ".join(changes) if changes else None


def _identity_in_key(t: TableDef) -> str | None:
    """The identity column when the primary key starts with it (MySQL wants AUTO_INCREMENT
    columns to lead an index) and it is an integer."""
    if t.identity and t.primary_key and t.primary_key[0] == t.identity and _is_integer(t, t.identity):
        return t.identity
    return None


def _late_identity(database: str, t: TableDef, types: dict[str, LogicalType]) -> str | None:
    """AUTO_INCREMENT for an identity column led by a secondary index rather than the primary key."""
    if not t.identity or _identity_in_key(t) or not _is_integer(t, t.identity):
        return None
    if not any(ix.columns and ix.columns[0] == t.identity for ix in t.indexes):
        return None
    field = t.schema.field(t.identity)
    definition = column_definition(t.identity, types[t.identity], nullable=False, auto_increment=True)
    return f"ALTER TABLE {qualified(database, t.name)} MODIFY {definition}" if field is not None else None


def _is_integer(t: TableDef, column: str) -> bool:
    index = t.schema.get_field_index(column)
    return index >= 0 and logical_of(t.schema.field(index)).name in ("int", "bigint")


def _ref(database: str, table: str) -> str:
    if "." in table:
        db, name = table.split(".", 1)
        return qualified(db, name)
    return qualified(database, table)


def _rule(rule: str) -> str:
    rule = (rule or "NO ACTION").upper()
    return rule if rule in _RULES else "NO ACTION"


def _short(name: str) -> str:
    """A name within MySQL's 64 characters, kept unique with a hash when shortened."""
    if len(name) <= 64:
        return name
    return name[:55] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def tolerated(exc: Any) -> bool:
    """True when a statement failed because what it adds is there already (a copy run again)."""
    code = errno_of(exc)
    if code in (1061, 1068, 1826):  # duplicate index name, second primary key, duplicate foreign key name
        return True
    return code == 1005 and "121" in str(exc)  # MariaDB: duplicate foreign key name
