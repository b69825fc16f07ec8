"""What the Postgres catalog says about tables: columns, keys, indexes, foreign keys, identity
columns, size, and what depends on a table. Every query reads ``pg_catalog`` with bound values."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import pyarrow as pa

from portl.connectors.base import CheckDef, ColumnInfo, ForeignKeyDef, IndexDef, TableDef, TableInfo, ViewDef
from portl.connectors.postgres.typemap import PgColumn, column_of, quote_ident
from portl.connectors.sql.dialect import split_qualified

ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@dataclass(frozen=True)
class TableName:
    """A schema-qualified table name."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str, default_schema: str) -> TableName:
        parts = split_qualified(text)
        return cls(parts[-2], parts[-1]) if len(parts) > 1 else cls(default_schema, parts[0])

    @property
    def sql(self) -> str:
        """Quoted, for statements: ``"sales"."orders"``."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def table_oid(conn: psycopg.Connection, table: TableName) -> int | None:
    row = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (table.schema, table.name),
    ).fetchone()
    return row[0] if row else None


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def relation_names(conn: psycopg.Connection, schema: str) -> list[str]:
    """Tables and views, for a did-you-mean: those of ``schema`` by their name, those of the other
    schemas (not the system's, not Portl's own tables) as ``schema.name``."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' AND NOT c.relispartition AND c.relname NOT LIKE '\\_portl\\_%'"
    ).fetchall()
    return [name if space == schema else f"{space}.{name}" for space, name in rows]


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(b.typname, t.typname), coalesce(b.typtype, t.typtype),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def columns(conn: psycopg.Connection, oid: int) -> list[PgColumn]:
    return [column_of(name, declared, typname, typtype, typmod, nullable=not notnull, has_default=has_default)
            for name, declared, typname, typtype, typmod, notnull, has_default in conn.execute(_COLUMNS, (oid,))]


def base_types(conn: psycopg.Connection, oid: int) -> dict[str, tuple[str, int]]:
    """Each column's type name (a domain's base type) and type modifier (-1 when none)."""
    return {name: (typname, typmod) for name, _declared, typname, _typtype, typmod, _notnull, _default
            in conn.execute(_COLUMNS, (oid,))}


def query_columns(conn: psycopg.Connection, description) -> list[PgColumn]:
    """The columns of a query's result, from its row description (``LIMIT 0``)."""
    oids = [d.type_code for d in description]
    mods = [((d.precision << 16) | (d.scale or 0)) + 4 if d.type_code == 1700 and d.precision else -1 for d in description]
    rows = conn.execute(
        "SELECT x.i, format_type(x.oid, x.mod), coalesce(b.typname, t.typname), coalesce(b.typtype, t.typtype), "
        "CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE x.mod END "
        "FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY AS x(oid, mod, i) "
        "JOIN pg_type t ON t.oid = x.oid LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype",
        (oids, mods),
    ).fetchall()
    found = {row[0]: row[1:] for row in rows}
    out = []
    for i, d in enumerate(description, start=1):
        declared, typname, typtype, typmod = found.get(i, ("unknown", "unknown", "b", -1))
        out.append(column_of(d.name, declared, typname, typtype, typmod))
    return out


_INDEXES = """
SELECT ic.relname, i.indisprimary, i.indisunique,
       i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR 0 = ANY (i.indkey::int2[]),
       array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = %s AND i.indisvalid
ORDER BY ic.relname
"""


def table_info(conn: psycopg.Connection, table: TableName) -> TableInfo | None:
    """Columns, primary key and unique keys of a table, or None when it does not exist."""
    oid = table_oid(conn, table)
    if oid is None:
        return None
    cols = [ColumnInfo(c.name, c.field.type, c.declared, c.nullable, c.has_default) for c in columns(conn, oid)]
    primary, uniques = [], []
    for _name, is_primary, unique, partial, keys in conn.execute(_INDEXES, (oid,)):
        if is_primary:
            primary = list(keys)
        elif unique and not partial:
            uniques.append(list(keys))
    return TableInfo(str(table), cols, primary, uniques)


def table_def(conn: psycopg.Connection, table: TableName, label: str, labels: dict[TableName, str]) -> tuple[TableDef, list[str]]:
    """A :class:`TableDef` named ``label``, foreign keys naming their tables by ``labels`` (the
    referenced table's own name when it is not copied). Returns notes on what cannot be copied."""
    oid = table_oid(conn, table)
    cols = columns(conn, oid)
    notes = [c.note for c in cols if c.note]
    primary: tuple[str, ...] = ()
    indexes = []
    for name, is_primary, unique, partial, keys in conn.execute(_INDEXES, (oid,)):
        if is_primary:
            primary = tuple(keys)
        elif partial:
            notes.append(f"index {name} of {table} uses expressions or a WHERE clause; it is not copied")
        else:
            indexes.append(IndexDef(name, tuple(keys), bool(unique)))
    fks = []
    for name, keys, ref_schema, ref_name, ref_keys, on_delete, on_update, deferrable, deferred in conn.execute(
        "SELECT con.conname, "
        "array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "      ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), "
        "rn.nspname, rc.relname, "
        "array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "      ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), "
        "con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred "
        "FROM pg_constraint con JOIN pg_class rc ON rc.oid = con.confrelid "
        "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
        "WHERE con.contype = 'f' AND con.conrelid = %s ORDER BY con.conname",
        (oid,),
    ):
        ref = TableName(ref_schema, ref_name)
        fks.append(ForeignKeyDef(name, tuple(keys), labels.get(ref, str(ref)), tuple(ref_keys),
                                 ACTIONS.get(on_delete, "NO ACTION"), ACTIONS.get(on_update, "NO ACTION"),
                                 ("DEFERRABLE INITIALLY DEFERRED" if deferred else "DEFERRABLE") if deferrable else ""))
    identity = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "AND (a.attidentity <> '' OR pg_get_serial_sequence(%s, a.attname) IS NOT NULL) ORDER BY a.attnum LIMIT 1",
        (oid, table.sql),
    ).fetchone()
    schema = pa.schema([c.field for c in cols])
    identity_name = identity[0] if identity else None
    lengths = {c.name: int(m.group(1)) for c in cols
               if c.field.type == pa.string() and (m := _LENGTH.match(c.declared))}
    defaults = {}
    for name, text in conn.execute(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
            "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = %s AND a.attgenerated = ''", (oid,)):
        if text.startswith("nextval("):  # a sequence of the source; the identity column gets its own counter
            if name != identity_name:
                notes.append(f"the default {text} of column {name} of table {label} is not copied: it draws "
                             "from a sequence of the source")
        elif name != identity_name:
            defaults[name] = text
    checks = tuple(CheckDef(name, _check_expression(definition)) for name, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s AND contype = 'c' "
        "ORDER BY conname", (oid,)))
    return TableDef(label, schema, primary, tuple(indexes), tuple(fks), identity_name, estimated_rows(conn, oid),
                    lengths=lengths, defaults=defaults, checks=checks, dialect="postgres"), notes


_LENGTH = re.compile(r"^(?:character varying|character|varchar|char)\((\d+)\)$")
_CHECK = re.compile(r"^CHECK\s*\((.*)\)(?:\s+NOT VALID)?$", re.DOTALL)


def _check_expression(definition: str) -> str:
    """``CHECK ((qty > 0)) NOT VALID`` (as ``pg_get_constraintdef`` writes it) → ``(qty > 0)``."""
    match = _CHECK.match(definition.strip())
    return match.group(1).strip() if match else definition


def views(conn: psycopg.Connection, schema: str) -> list[ViewDef]:
    """The views of a schema (not materialized views), with their queries as Postgres shows them."""
    return [ViewDef(name, query or "", "postgres", schema) for name, query in conn.execute(
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'v' ORDER BY c.relname", (schema,))]


def list_tables(conn: psycopg.Connection, schema: str) -> list[TableName]:
    """The ordinary and partitioned tables of a schema (not partitions, not Portl's own tables)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.relname <> '_portl_checkpoints' AND c.relname NOT LIKE '%%\\_\\_portl\\_new' ORDER BY c.relname",
        (schema,),
    ).fetchall()
    return [TableName(schema, r[0]) for r in rows]


def estimated_rows(conn: psycopg.Connection, oid: int) -> int | None:
    """The planner's row estimate (``pg_class.reltuples``); None when the table was never analysed."""
    (rows,) = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s", (oid,)).fetchone()
    return rows if rows >= 0 else None


def dependents(conn: psycopg.Connection, oid: int) -> list[str]:
    """Views and other tables' foreign keys that refer to a table: they would block dropping it."""
    rows = conn.execute(
        "SELECT DISTINCT 'view ' || v.oid::regclass::text FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %s AND v.oid <> %s "
        "UNION "
        "SELECT 'foreign key ' || con.conname || ' of ' || con.conrelid::regclass::text FROM pg_constraint con "
        "WHERE con.contype = 'f' AND con.confrelid = %s AND con.conrelid <> %s ORDER BY 1",
        (oid, oid, oid, oid),
    ).fetchall()
    return [r[0] for r in rows]


def single_integer_key(conn: psycopg.Connection, oid: int) -> str | None:
    """The primary key column when the key is one integer column (for keyset reads and ranges)."""
    row = conn.execute(
        "SELECT a.attname, t.typname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE i.indrelid = %s AND i.indisprimary AND i.indnkeyatts = 1",
        (oid,),
    ).fetchone()
    return row[0] if row and row[1] in ("int2", "int4", "int8") else None


def primary_key(conn: psycopg.Connection, oid: int) -> list[str]:
    for _name, is_primary, _unique, _partial, keys in conn.execute(_INDEXES, (oid,)):
        if is_primary:
            return list(keys)
    return []
