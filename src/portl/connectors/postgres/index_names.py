"""Names for the keys, indexes and foreign keys of a whole-database copy into one Postgres schema.

MySQL names an index per table, so two tables may each have an index ``idx_name``; Postgres
names indexes per *schema* (an index, a table, a sequence and a view share one namespace), and
cuts any name longer than 63 bytes. Copied as they are, the second ``idx_name`` would collide
with the first (and ``CREATE INDEX IF NOT EXISTS`` would skip it without a word), and two long
names that share their first 63 bytes would become one.

So every index, and every primary key (whose index takes the constraint's name), gets a name
that is unique in the schema:

- its own name, when no other copied index wants it, no copied table has it, nothing already in
  the schema has it, and it fits in 63 bytes;
- a name that is only too long is cut to fit and ended by ``_`` and 8 hex digits of its hash,
  so that it stays unique and is the same on every run;
- a name that collides becomes ``<table>_<index>`` (``<table>_pkey`` for a primary key, as
  Postgres would name it), cut and hashed the same way when that is too long or taken as well.

Foreign keys make no index in Postgres; their names need only be unique per table, so they are
renamed only when they clash on their table or are too long. An index or constraint already in
the schema on the same table with the same columns is taken to be this copy's own (a resumed
copy), and keeps its name. Every renaming is reported with the reason, for the plan and the
run report.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portl.connectors.base import ForeignKeyDef, IndexDef, TableDef

MAX_BYTES = 63  # NAMEDATALEN - 1: Postgres cuts longer identifiers
_HASH = 8


@dataclass(frozen=True)
class Relation:
    """Something with a name in the destination schema already: a table, an index, a sequence, a
    view. For an index, its table and its plain key columns (None when it has expressions or a
    WHERE clause)."""

    name: str
    kind: str
    table: str | None = None
    columns: tuple[str, ...] | None = None
    unique: bool = False
    primary: bool = False


@dataclass(frozen=True)
class Constraint:
    """A constraint already on a destination table (``kind`` as ``pg_constraint.contype``)."""

    name: str
    kind: str
    columns: tuple[str, ...] = ()


@dataclass
class Names:
    """The chosen names, keyed by destination table (and the source's index or foreign key), and
    what was renamed. ``existing_foreign_keys`` are on their table already."""

    primary_keys: dict[str, str] = field(default_factory=dict)
    indexes: dict[tuple[str, IndexDef], str] = field(default_factory=dict)
    foreign_keys: dict[tuple[str, ForeignKeyDef], str] = field(default_factory=dict)
    existing_foreign_keys: set[tuple[str, ForeignKeyDef]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Want:
    table: str
    index: IndexDef | None  # None for the primary key
    columns: tuple[str, ...]
    unique: bool

    @property
    def source(self) -> str | None:
        return None if self.index is None else self.index.name

    @property
    def preferred(self) -> str:
        return self.source if self.source is not None else f"{self.table}_pkey"

    @property
    def parts(self) -> tuple[str, str]:
        return self.table, self.source if self.source is not None else "pkey"

    @property
    def fallback(self) -> str:
        return "_".join(self.parts)

    def matches(self, relation: Relation) -> bool:
        """True when ``relation`` is this very index, made by an earlier run of the copy."""
        return (relation.kind == "index" and relation.table == self.table and relation.columns == self.columns
                and relation.unique == self.unique and relation.primary == (self.source is None))


def fits(name: str) -> bool:
    """True when Postgres keeps ``name`` whole (at most 63 bytes of UTF-8)."""
    return len(name.encode()) <= MAX_BYTES


def shortened(*parts: str) -> str:
    """``parts`` joined by ``_`` within 63 bytes, and ended by ``_`` and 8 hex digits of the whole
    name's SHA-1: unique, and the same on every run. As Postgres does when it makes a name, the
    longest part is cut first, so that every part stays recognisable."""
    digest = hashlib.sha1("_".join(parts).encode()).hexdigest()[:_HASH]
    budget = MAX_BYTES - _HASH - 1 - (len(parts) - 1)  # the room left for the parts' own bytes
    cut = list(parts)
    while sum(len(p.encode()) for p in cut) > budget:
        longest = max(range(len(cut)), key=lambda i: (len(cut[i].encode()), i))
        cut[longest] = cut[longest][:-1]
    return "_".join(cut + [digest])


def choose_names(schema: str, tables: Mapping[str, TableDef], adding_primary_key: Iterable[str],
                 relations: Iterable[Relation], constraints: Mapping[str, Iterable[Constraint]]) -> Names:
    """Names for the primary keys in ``adding_primary_key``, every index and every foreign key of
    ``tables`` (keyed by their names in ``schema``), given what the schema holds already."""
    names = Names()
    existing = {r.name: r for r in relations}
    for table in tables:
        existing.setdefault(table, Relation(table, "table"))  # created by the copy before any index
    with_key = set(adding_primary_key)
    wants = []
    for table in sorted(tables):
        t = tables[table]
        if table in with_key and t.primary_key:
            wants.append(_Want(table, None, tuple(t.primary_key), True))
        wants += [_Want(table, ix, tuple(ix.columns), ix.unique) for ix in t.indexes]
    chosen = _relation_names(schema, wants, existing, names.notes)
    for want, name in chosen.items():
        if want.index is None:
            names.primary_keys[want.table] = name
        else:
            names.indexes[(want.table, want.index)] = name
    for table in sorted(tables):
        pk_name = names.primary_keys.get(table)
        _foreign_key_names(table, tables[table], pk_name, list(constraints.get(table, ())), names)
    return names


def _relation_names(schema: str, wants: list[_Want], existing: dict[str, Relation], notes: list[str]) -> dict[_Want, str]:
    sharing: dict[str, list[_Want]] = {}
    for w in wants:
        sharing.setdefault(w.preferred, []).append(w)
    chosen: dict[_Want, str] = {}
    used: set[str] = set()

    def free(name: str, want: _Want) -> bool:
        there = existing.get(name)
        return fits(name) and name not in used and (there is None or want.matches(there))

    # First every name that can stay as it is, so that no renamed index takes one of them.
    for w in wants:
        if len(sharing[w.preferred]) == 1 and free(w.preferred, w):
            chosen[w] = w.preferred
            used.add(w.preferred)
    for w in wants:
        if w in chosen:
            continue
        alone = len(sharing[w.preferred]) == 1 and w.preferred not in existing
        if alone and w.index is not None:
            name = shortened(w.preferred)  # only too long: it keeps as much of its own name as fits
        else:
            name = w.fallback if free(w.fallback, w) else shortened(*w.parts)
        n = 1
        while not free(name, w):  # only names made to collide on purpose get here
            n += 1
            name = shortened(*w.parts, str(n))
        chosen[w] = name
        used.add(name)
        if name != w.preferred:
            others = [o for o in sharing[w.preferred] if o is not w]
            notes.append(f"{_what(w)} is created as {name}: {_why(schema, w, others, existing.get(w.preferred))}")
    return chosen


def _what(want: _Want) -> str:
    if want.source is None:
        return f"the primary key of table {want.table}"
    return f"index {want.source} of table {want.table}"


def _why(schema: str, want: _Want, others: list[_Want], there: Relation | None) -> str:
    if not fits(want.preferred):
        return f"{want.preferred} is longer than the 63 bytes Postgres allows in a name"
    if others:
        also = ", ".join(("another index" if o.table == want.table else f"an index of table {o.table}")
                         if o.source is not None else f"the primary key of table {o.table}" for o in others)
        return f"Postgres names indexes per schema, and {want.preferred} is also the name of {also}"
    if there is not None and there.kind == "table":
        return f"{want.preferred} is the name of a table, and Postgres names tables and indexes in one namespace"
    if there is not None:
        on = f" on table {there.table}" if there.table else ""
        article = "an" if there.kind[0] in "aeiou" else "a"
        return f"schema {schema} already has {article} {there.kind} {want.preferred}{on}"
    return f"{want.preferred} is taken by another index of the copy"


def _foreign_key_names(table: str, t: TableDef, pk_name: str | None, constraints: list[Constraint], names: Names) -> None:
    """Foreign key names unique on their table: among themselves, the primary key constraint and
    the constraints the table has already."""
    existing = {c.name: c for c in constraints}
    if pk_name is not None:
        existing.setdefault(pk_name, Constraint(pk_name, "p"))
    wanted_by = Counter(fk.name for fk in t.foreign_keys)
    used: set[str] = set()
    pending = []
    for fk in t.foreign_keys:
        there = existing.get(fk.name)
        mine = there is not None and there.kind == "f" and there.columns == tuple(fk.columns)
        if wanted_by[fk.name] == 1 and fits(fk.name) and (there is None or mine):
            names.foreign_keys[(table, fk)] = fk.name
            used.add(fk.name)
            if mine:
                names.existing_foreign_keys.add((table, fk))
        else:
            pending.append(fk)
    for fk in pending:
        name = fk.name if fits(fk.name) else shortened(fk.name)
        n = 1
        while name in used or (name in existing and not (existing[name].kind == "f"
                                                          and existing[name].columns == tuple(fk.columns))):
            n += 1
            name = shortened(fk.name, str(n))
        used.add(name)
        names.foreign_keys[(table, fk)] = name
        if existing.get(name) is not None:
            names.existing_foreign_keys.add((table, fk))
        if name == fk.name:
            continue
        if not fits(fk.name):
            why = f"{fk.name} is longer than the 63 bytes Postgres allows in a name"
        elif wanted_by[fk.name] > 1:
            why = f"table {table} has {wanted_by[fk.name]} foreign keys named {fk.name}"
        else:
            kind = {"p": "primary key", "u": "unique constraint", "c": "check constraint", "f": "foreign key"}
            why = f"table {table} already has a {kind.get(existing[fk.name].kind, 'constraint')} {fk.name}"
        names.notes.append(f"foreign key {fk.name} of table {table} is created as {name}: {why}")
