"""Tables and views a whole-database copy creates in MySQL, under the copy's names.

A column's type comes from its logical type, except that a text column with a declared length
(``NVARCHAR(160)``) becomes ``VARCHAR(160)``: while the table's declared lengths fit InnoDB's
65,535-byte row (4 bytes a character in utf8mb4), and, for a column a key indexes whole, while it
fits an index (768 characters). Others are ``LONGTEXT`` as usual (``VARCHAR(255)`` in a key).
A default is kept when it translates and fits the column (:mod:`portl.connectors.sql.expressions`);
on a text or binary column it is written in parentheses, the only way MySQL 8 takes one there.
The same definition serves ``CREATE TABLE`` and the ``MODIFY`` that later makes a column
NOT NULL or AUTO_INCREMENT, which would otherwise drop the length and the default.
"""

from __future__ import annotations

import pyarrow as pa

from portl.connectors.base import TableDef, ViewDef
from portl.connectors.mysql.dialect import KEY_TYPES, column_type, qualified, quote
from portl.connectors.sql import expressions
from portl.connectors.sql.expressions import Untranslatable
from portl.types import logical_of

ROW_BYTES = 65535 - 535  # InnoDB's row limit, less room for the other columns' own bytes
KEY_CHARACTERS = 768  # 3072 index bytes / 4 bytes a character
_PARENTHESISED = {"text", "json", "bytes"}
_NOW = {"CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP()", "NOW()"}


def varchar_lengths(table: TableDef, keyed: set[str]) -> dict[str, int]:
    """The text columns of ``table`` that keep their declared length as ``VARCHAR(n)``."""
    out, budget = {}, ROW_BYTES
    for f in table.schema:
        length = table.lengths.get(f.name)
        if not length or logical_of(f).name != "text" or (f.name in keyed and length > KEY_CHARACTERS):
            continue
        if length * 4 + 2 > budget:
            break
        out[f.name] = length
        budget -= length * 4 + 2
    return out


def column_sql(table: TableDef, f: pa.Field, lengths: dict[str, int], key: bool = False, nullable: bool = True,
               auto_increment: bool = False) -> tuple[str, str | None]:
    """A column's definition, and a note when the source's default is not copied."""
    logical = logical_of(f)
    declared = f"VARCHAR({lengths[f.name]})" if f.name in lengths else column_type(logical, key)
    definition = f"{quote(f.name)} {declared}"
    if not nullable or auto_increment:
        definition += " NOT NULL"
    if auto_increment:
        return definition + " AUTO_INCREMENT", None
    try:
        default = expressions.default_of(table, f.name, logical.name, "mysql", quote)
    except Untranslatable as exc:
        return definition, (f"the default {table.defaults[f.name]} of column {f.name} of table {table.name} "
                            f"is not copied: {exc}")
    if default and logical.name in _PARENTHESISED and not (key and logical.name in KEY_TYPES):
        default = f"({default})"
    elif default.upper().replace(" ", "") in _NOW and logical.name in ("timestamp", "timestamptz"):
        default = "CURRENT_TIMESTAMP(6)"  # DATETIME(6) wants the current time to its own precision
    return definition + (f" DEFAULT {default}" if default else ""), None


def create_table(database: str, table: TableDef, keyed: set[str]) -> tuple[str, list[str]]:
    """``CREATE TABLE`` without keys (they come after the data), and notes on defaults left out."""
    lengths = varchar_lengths(table, keyed)
    parts, notes = [], []
    for f in table.schema:
        definition, note = column_sql(table, f, lengths, key=f.name in keyed and f.name in lengths)
        parts.append(definition)
        notes += [note] if note else []
    return (f"CREATE TABLE IF NOT EXISTS {qualified(database, table.name)} (\n  " + ",\n  ".join(parts)
            + "\n) ENGINE=InnoDB"), notes


def create_views(database: str, views: list[ViewDef], tables: list[TableDef]) -> tuple[list[str], list[str]]:
    """``CREATE OR REPLACE VIEW`` for each view whose query translates, and a note for each other."""
    return expressions.create_views(views, tables, "mysql", quote, lambda name: qualified(database, name))
