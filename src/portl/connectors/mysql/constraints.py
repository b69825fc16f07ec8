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

The statements are worked out from the destination's catalog, item by item: a primary key, a
column already NOT NULL / indexable / AUTO_INCREMENT, an index of the same name, a foreign key on
the same columns to the same table, are left out, and only what is missing is added. A copy whose
last step stopped partway (killed, or a foreign key refused by a row) thus adds the rest when it
resumes, and a foreign key that is there keeps its name, so the others get the names the first
run gave them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from portl.connectors.base import ForeignKeyDef, TableDef
from portl.connectors.mysql.catalog import TableKeys
from portl.connectors.mysql.client import errno_of
from portl.connectors.mysql.dialect import KEY_TYPES, index_columns, qualified, quote
from portl.connectors.mysql.tables import column_sql, varchar_lengths
from portl.connectors.sql import expressions
from portl.types import LogicalType, logical_of

_RULES = {"CASCADE", "SET NULL", "RESTRICT", "NO ACTION"}
_UNINDEXABLE = {"tinytext", "text", "mediumtext", "longtext", "json", "tinyblob", "blob", "mediumblob", "longblob"}
"""Column types MySQL cannot index whole: a key column of one of these types is changed."""
_NOTHING = TableKeys()  # a table the destination does not have yet


def constraint_statements(database: str, tables: list[TableDef], present: Mapping[str, TableKeys] | None = None
                          ) -> list[str]:
    """The statements that give ``tables`` (the whole copy) their keys, indexes, foreign keys and
    AUTO_INCREMENT, leaving out what ``present`` (every table of the database, as
    :func:`~portl.connectors.mysql.catalog.keys_of_tables` reads it) says is there already."""
    present = present or {}
    types = {t.name: {f.name: logical_of(f) for f in t.schema} for t in tables}
    keyed = key_columns(tables)
    statements: list[str] = []
    for t in tables:
        alter = _table_alter(database, t, types[t.name], keyed.get(t.name, set()), present.get(t.name))
        if alter:
            statements.append(alter)
    for t in tables:
        statements += check_statements(database, t, present.get(t.name, _NOTHING))[0]
    for t in tables:
        there = present.get(t.name, _NOTHING)
        for index in t.indexes:
            if _short(index.name).lower() in there.indexes:
                continue
            kind = "UNIQUE INDEX" if index.unique else "INDEX"
            short = {c for c, n in varchar_lengths(t, keyed.get(t.name, set())).items() if n <= 255}  # indexed whole
            plain = {c: lt for c, lt in types[t.name].items() if c not in keyed.get(t.name, set()) | short}
            statements.append(f"CREATE {kind} {quote(_short(index.name))} ON {qualified(database, t.name)} "
                              f"({index_columns(index.columns, plain, prefix=not index.unique)})")
        late = _late_identity(database, t, there)
        if late:
            statements.append(late)
    names, _ = foreign_key_names(database, tables, present)
    existing = set(present_foreign_keys(database, tables, present))
    for t in tables:
        for fk in t.foreign_keys:
            if (t.name, fk) in existing:
                continue
            name = names[(t.name, fk)]
            statements.append(
                f"ALTER TABLE {qualified(database, t.name)} ADD CONSTRAINT {quote(name)} FOREIGN KEY "
                f"({', '.join(quote(c) for c in fk.columns)}) REFERENCES {_ref(database, fk.ref_table)} "
                f"({', '.join(quote(c) for c in fk.ref_columns)}) ON DELETE {_rule(fk.on_delete)} ON UPDATE {_rule(fk.on_update)}"
            )
    return statements


def constraint_notes(database: str, tables: list[TableDef], present: Mapping[str, TableKeys] | None = None) -> list[str]:
    """What the plan should say about the statements: foreign keys renamed, primary keys kept."""
    present = present or {}
    notes = []
    for t in tables:
        there = present.get(t.name)
        if t.primary_key and there and there.primary_key and _lower(there.primary_key) != _lower(t.primary_key):
            notes.append(f"table {t.name} has a primary key ({', '.join(there.primary_key)}) already, not the "
                         f"source's ({', '.join(t.primary_key)}); it is kept")
    checks = [note for t in tables for note in check_statements(database, t, present.get(t.name, _NOTHING))[1]]
    checks += [f"foreign key {fk.name} of table {t.name} is {fk.deferrable} in the source; MySQL checks foreign keys "
               "row by row" for t in tables for fk in t.foreign_keys if fk.deferrable]
    return notes + checks + foreign_key_names(database, tables, present)[1]


def check_statements(database: str, t: TableDef, there: TableKeys) -> tuple[list[str], list[str]]:
    """``ADD CONSTRAINT ... CHECK`` for each CHECK of ``t`` that translates and that the table has
    not got already (by name), and a note for each that does not translate. An unnamed CHECK is
    named ``<table>_chk_<n>``, as MySQL would name it."""
    out, notes = [], []
    for number, check in enumerate(t.checks, start=1):
        name = check.name or f"{t.name}_chk_{number}"
        if _short(name).lower() in there.checks:
            continue
        try:
            expression = expressions.check_of(t, check.expression, "mysql", quote)
        except expressions.Untranslatable as exc:
            notes.append(f"CHECK ({check.expression}) of table {t.name} is not copied: {exc}")
            continue
        out.append(f"ALTER TABLE {qualified(database, t.name)} ADD CONSTRAINT {quote(_short(name))} CHECK ({expression})")
    return out, notes


def present_foreign_keys(database: str, tables: list[TableDef], present: Mapping[str, TableKeys]
                         ) -> dict[tuple[str, ForeignKeyDef], str]:
    """The copy's foreign keys that their table has already (same columns, same referenced table
    and columns), with the name each has there. One by that very name is preferred, then the first."""
    found: dict[tuple[str, ForeignKeyDef], str] = {}
    for t in tables:
        there = list(present.get(t.name, _NOTHING).foreign_keys)
        for fk in t.foreign_keys:
            same = [e for e in there if _same_foreign_key(database, fk, e)]
            if not same:
                continue
            chosen = next((e for e in same if e.name.lower() == _short(fk.name).lower()), same[0])
            there.remove(chosen)
            found[(t.name, fk)] = chosen.name
    return found


def foreign_key_names(database: str, tables: list[TableDef], present: Mapping[str, TableKeys] | None = None
                      ) -> tuple[dict[tuple[str, ForeignKeyDef], str], list[str]]:
    """A name per foreign key, unique in the database as MySQL wants (Postgres and SQLite name
    them per table), and a note for each one to be created under another name. One the table has
    already keeps the name it has there. A name the database uses otherwise, or that the copy used
    first, becomes ``<table>_<name>``; a name longer than 64 characters is cut and ended with a hash."""
    present = present or {}
    existing = present_foreign_keys(database, tables, present)
    owners: dict[str, str] = {}  # lower-case name -> the copied table that has it ("" for any other)
    kept = {(table, name.lower()) for (table, _fk), name in existing.items()}
    for table, there in present.items():
        for fk in there.foreign_keys:
            if (table, fk.name.lower()) not in kept:
                owners[fk.name.lower()] = ""
    for (table, _fk), name in existing.items():
        owners[name.lower()] = table
    names = dict(existing)
    notes = []
    for t in tables:
        for fk in t.foreign_keys:
            if (t.name, fk) in existing:
                continue
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


def _same_foreign_key(database: str, fk: ForeignKeyDef, there: ForeignKeyDef) -> bool:
    """Whether ``there`` (as the catalog reads it) is ``fk``: the same columns, referenced table
    and referenced columns. Rules are not compared: a table keeps the foreign key it has."""
    ref_db, ref_table = _ref_parts(database, fk.ref_table)
    ref = ref_table if ref_db == database else f"{ref_db}.{ref_table}"
    return (there.ref_table == ref and _lower(there.columns) == _lower(fk.columns)
            and _lower(there.ref_columns) == _lower(fk.ref_columns))


def _lower(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n.lower() for n in names)


def key_columns(tables: list[TableDef]) -> dict[str, set[str]]:
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


def _table_alter(database: str, t: TableDef, types: dict[str, LogicalType], keyed: set[str],
                 there: TableKeys | None) -> str | None:
    """ONE ``ALTER TABLE`` with what the table lacks: its primary key, and each column that must
    be NOT NULL, of a type MySQL can index, or AUTO_INCREMENT but is not yet."""
    changes = []
    lengths = varchar_lengths(t, keyed)  # as the table was created: MODIFY keeps them, and the defaults
    if t.primary_key and not (there and there.primary_key):
        changes.append(f"ADD PRIMARY KEY ({', '.join(quote(c) for c in t.primary_key)})")
    for f in t.schema:
        logical = types[f.name]
        as_key = f.name in keyed and logical.name in KEY_TYPES
        not_null = not f.nullable or f.name in t.primary_key
        # AUTO_INCREMENT must lead an index: not on a table whose own primary key starts elsewhere.
        auto = _identity_in_key(t) == f.name and not (there and there.primary_key
                                                      and there.primary_key[0].lower() != f.name.lower())
        column = there.columns.get(f.name.lower()) if there else None
        if column is not None and not ((as_key and column.data_type in _UNINDEXABLE) or (not_null and column.nullable)
                                       or (auto and not column.auto_increment)):
            continue  # already as the copy wants it
        if as_key or not_null or auto:
            keep_auto = column is not None and column.auto_increment  # MODIFY would drop it otherwise
            definition, _ = column_sql(t, f, lengths, key=as_key, nullable=not not_null, auto_increment=auto or keep_auto)
            changes.append("MODIFY " + definition)
    return f"ALTER TABLE {qualified(database, t.name)} " + ", ".join(changes) if changes else None


def _identity_in_key(t: TableDef) -> str | None:
    """The identity column when the primary key starts with it (MySQL wants AUTO_INCREMENT
    columns to lead an index) and it is an integer."""
    if t.identity and t.primary_key and t.primary_key[0] == t.identity and _is_integer(t, t.identity):
        return t.identity
    return None


def _late_identity(database: str, t: TableDef, there: TableKeys) -> str | None:
    """AUTO_INCREMENT for an identity column led by a secondary index rather than the primary key."""
    if not t.identity or _identity_in_key(t) or not _is_integer(t, t.identity):
        return None
    if not any(ix.columns and ix.columns[0] == t.identity for ix in t.indexes):
        return None
    column = there.columns.get(t.identity.lower())
    if column is not None and column.auto_increment:
        return None
    definition, _ = column_sql(t, t.schema.field(t.identity), {}, nullable=False, auto_increment=True)
    return f"ALTER TABLE {qualified(database, t.name)} MODIFY {definition}"


def _is_integer(t: TableDef, column: str) -> bool:
    index = t.schema.get_field_index(column)
    return index >= 0 and logical_of(t.schema.field(index)).name in ("int", "bigint")


def _ref(database: str, table: str) -> str:
    return qualified(*_ref_parts(database, table))


def _ref_parts(database: str, table: str) -> tuple[str, str]:
    """A referenced table as (database, table): ``db.table`` names its database."""
    if "." in table:
        db, name = table.split(".", 1)
        return db, name
    return database, table


def _rule(rule: str) -> str:
    rule = (rule or "NO ACTION").upper()
    return rule if rule in _RULES else "NO ACTION"


def _short(name: str) -> str:
    """A name within MySQL's 64 characters, kept unique with a hash when shortened."""
    if len(name) <= 64:
        return name
    return name[:55] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def tolerated(exc: Any) -> bool:
    """True when a statement failed because what it adds is there already: added since the plan
    read the catalog, by another run of the same copy."""
    code = errno_of(exc)
    if code in (1061, 1068, 1826):  # duplicate index name, second primary key, duplicate foreign key name
        return True
    return code == 1005 and "121" in str(exc)  # MariaDB: duplicate foreign key name
