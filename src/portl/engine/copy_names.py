"""The identifier policy of a whole-database copy, applied to the tables' descriptions.

``copy.identifiers: keep`` (the default) names every table, column, key and index in the
destination exactly as the source does, quoted, so ``[Sensor].[SensorId]`` stays ``"Sensor"."SensorId"``;
``lower`` folds them all to lower case, as pgloader's ``downcase identifiers`` does, so that
they can be written unquoted in PostgreSQL. Either way one name is used in every statement the
copy writes (create, load, keys, indexes, foreign keys, identity counters, CHECKs, views), since
the destination only ever sees the renamed :class:`~portl.connectors.base.TableDef`.

A copy never uses the name normalisation of ordinary jobs' auto-mapping (``Signup Date`` →
``signup_date``): each table is loaded through an explicit mapping, destination column ← source
column, built here.
"""

from __future__ import annotations

import dataclasses

from portl.connectors.base import CheckDef, IndexDef, TableDef
from portl.errors import ConfigError
from portl.spec.models import ColumnSpec, Mapping

IF_EXISTS_HINT = ("a copy creates its tables: set copy.if_exists: replace to drop them and copy them again, or "
                  "copy.if_exists: skip to leave them as they are and copy the other tables")


def apply_policy(tables: list[TableDef], fold: bool) -> list[TableDef]:
    """``tables`` under the destination's names: unchanged, or every name in lower case. Raises
    :class:`~portl.errors.ConfigError` when folding gives two tables, or two columns of a
    table, one name."""
    if not fold:
        return tables
    clashes = _clashes([t.name for t in tables], "tables")
    clashes += [c for t in tables for c in _clashes(t.schema.names, f"columns of table {t.name}")]
    if clashes:
        raise ConfigError(f"copy.identifiers: lower would give {'; '.join(clashes)} one name; "
                          "set copy.identifiers: keep to keep the source's names as they are")
    return [_folded(t) for t in tables]


def _clashes(names: list[str], what: str) -> list[str]:
    by_folded: dict[str, list[str]] = {}
    for name in names:
        by_folded.setdefault(name.lower(), []).append(name)
    return [f"{what} {' and '.join(same)}" for same in by_folded.values() if len(same) > 1]


def _folded(t: TableDef) -> TableDef:
    def names(columns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.lower() for c in columns)

    schema = t.schema
    for i, f in enumerate(schema):
        schema = schema.set(i, f.with_name(f.name.lower()))
    return dataclasses.replace(
        t,
        name=t.name.lower(),
        schema=schema,
        primary_key=names(t.primary_key),
        indexes=tuple(IndexDef(i.name.lower(), names(i.columns), i.unique) for i in t.indexes),
        foreign_keys=tuple(dataclasses.replace(fk, name=fk.name.lower(), columns=names(fk.columns),
                                               ref_table=fk.ref_table.lower(), ref_columns=names(fk.ref_columns))
                           for fk in t.foreign_keys),
        identity=t.identity.lower() if t.identity else None,
        lengths={k.lower(): v for k, v in t.lengths.items()},
        defaults={k.lower(): v for k, v in t.defaults.items()},
        checks=tuple(CheckDef(c.name.lower(), c.expression) for c in t.checks),
    )


def mapping_of(source: TableDef, destination: TableDef) -> Mapping:
    """Each destination column read from its source column, by position: no other renaming."""
    columns = {d.name: ColumnSpec(**{"from": s.name}) for s, d in zip(source.schema, destination.schema)}
    return Mapping(auto=False, columns=columns)
