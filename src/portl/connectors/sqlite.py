"""SQLite databases: read a table or a query; write append / replace / upsert in bulk."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from portl.connectors.base import (
    Capabilities, CheckDef, Checkpoint, Chunk, group_checkpoints, ColumnInfo, ConflictStrategy, Estimate, ForeignKeyDef, IndexDef, Reject,
    QueryResult, TableDef, TableInfo, TargetPlan, ViewDef, WriteMode, WriteResult, WriteSpec,
)
from portl.connectors.closest import table_hint
from portl.connectors.config import ConnectorConfig, Incremental, KeyRule, incremental_problem, resolve_path
from portl.connectors.sql import dialect as sql
from portl.connectors.sql import expressions
from portl.connectors.sql.incremental import CursorReads
from portl.connectors.sql.params import multi_row_params, row_slices, text_columns_for_db
from portl.errors import ConflictError, RowRefused, SourceError, TerminalError, TransientError
from portl.types import LogicalType, arrow_field, logical_of



class Config(ConnectorConfig):
    """A SQLite database file (``type: sqlite``)."""

    type: Literal["sqlite"]
    path: str = Field(description="Database file, relative to the job file's folder; created when written to.")
    table: str | None = Field(None, description="Table to read or write.")
    query: str | None = Field(None, description="SELECT to read instead of a table (sources only).")
    tables: str | list[str] | None = Field(None, description="Whole-database copy (sources only): \"*\" for every table, or a list of names.")
    foreign_keys: bool = Field(False, description="Destinations: enforce the tables' foreign keys (PRAGMA foreign_keys = ON); a row whose reference is missing is rejected.")
    incremental: Incremental | None = Field(None, description="Sources only: read only the rows whose cursor column grew since the job's last finished run.")

    @model_validator(mode="after")
    def _table_or_query(self) -> "Config":
        if sum(bool(v) for v in (self.table, self.query, self.tables)) > 1:
            raise ValueError("give one of 'table', 'query' or 'tables'")
        problem = incremental_problem(self)
        if problem is not None:
            raise KeyRule("incremental", problem)
        return self

    def describe(self) -> str:
        what = self.table or ("(query)" if self.query else f"tables {self.tables}" if self.tables else "")
        return f"{self.path}:{what}" if what else self.path


# --- shared ----------------------------------------------------------------------------------

CHECKPOINT_TABLE = "_portl_checkpoints"
_CONSTRAINED = re.compile(r"^(?:NOT NULL|UNIQUE) constraint failed: [^.,]+\.([^.,]+)$")  # one column named
MAX_PARAMS = 32766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32
REAL_DIGITS = 15  # significant decimal digits an 8-byte REAL holds exactly

DIALECT = sql.Dialect(
    name="sqlite",
    quote=lambda name: '"' + name.replace('"', '""') + '"',
    placeholder="?",
    type_names={
        "int": "INTEGER", "bigint": "BIGINT", "float": "REAL", "text": "TEXT", "bool": "BOOLEAN",
        "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
        # JSONTEXT, not JSON: a JSON document like 1e5 must stay text, and only a declared type
        # containing "TEXT" gets SQLite's TEXT affinity.
        "json": "JSONTEXT", "uuid": "UUID", "bytes": "BLOB",
    },
    select_where_true=True,
)

_DECIMAL_DECL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)


def arrow_type_of_declared(declared: str) -> pa.Field:
    """The Arrow field for a SQLite declared column type, following SQLite's affinity rules."""
    d = declared.upper()
    match = _DECIMAL_DECL.search(d)
    if match:
        return arrow_field("", LogicalType("decimal", int(match.group(1)), int(match.group(2) or 0)))
    for needle, logical in (("BOOL", "bool"), ("TIMESTAMPTZ", "timestamptz"), ("DATETIME", "timestamp"),
                            ("TIMESTAMP", "timestamp"), ("DATE", "date"), ("JSON", "json"), ("UUID", "uuid"),
                            ("BIGINT", "bigint"), ("INT", "bigint"), ("CHAR", "text"), ("CLOB", "text"),
                            ("TEXT", "text"), ("BLOB", "bytes"), ("REAL", "float"), ("FLOA", "float"),
                            ("DOUB", "float")):
        if needle in d:
            return arrow_field("", LogicalType(logical))
    if not d:
        return arrow_field("", LogicalType("text"))
    return arrow_field("", LogicalType("float"))  # NUMERIC affinity without precision


def _field(column: ColumnInfo) -> pa.Field:
    """The Arrow field of an introspected column, json and uuid tags included."""
    return arrow_type_of_declared(column.declared).with_name(column.name)


def _connect(path: str, *, create: bool) -> sqlite3.Connection:
    if not create and not os.path.exists(path):
        raise SourceError(f"SQLite database not found: {path}")
    folder = os.path.dirname(path)
    if create and folder and not os.path.isdir(folder):
        raise TerminalError(f"cannot create SQLite database {path}: folder {folder} does not exist")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA cache_size = -16384")  # 16 MB: bulk appends gain nothing from more
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn
    except sqlite3.Error as exc:
        raise TerminalError(f"cannot open SQLite database {path}: {exc}") from exc


def translate(exc: sqlite3.Error, doing: str) -> Exception:
    """A sqlite3 error as a Portl error: locks and busy databases are worth retrying."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientError(f"{doing}: {text}")
    return TerminalError(f"{doing}: {text}")


def _table_names(conn: sqlite3.Connection) -> list[str]:
    """The tables and views of the main database, SQLite's and Portl's own left out."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name").fetchall()
    return [name for (name,) in rows if not name.startswith(("sqlite_", "_portl_"))]


def _table_info(conn: sqlite3.Connection, table: str) -> TableInfo | None:
    q = DIALECT.quote
    parts = sql.split_qualified(table)
    schema = q(parts[0]) + "." if len(parts) > 1 else ""
    rows = conn.execute(f"PRAGMA {schema}table_xinfo({q(parts[-1])})").fetchall()
    if not rows:
        return None
    columns, pk = [], []
    for _cid, name, declared, notnull, default, pk_pos, hidden in rows:
        if hidden:
            continue
        columns.append(ColumnInfo(name, arrow_type_of_declared(declared or "").type, declared or "",
                                  nullable=not notnull, has_default=default is not None))
        if pk_pos:
            pk.append((pk_pos, name))
    uniques = []
    for _seq, index, unique, *_ in conn.execute(f"PRAGMA {schema}index_list({q(parts[-1])})").fetchall():
        if unique:
            cols = [r[2] for r in conn.execute(f"PRAGMA {schema}index_info({q(index)})").fetchall()]
            uniques.append(cols)
    return TableInfo(table, columns, [n for _, n in sorted(pk)], uniques)


# --- source ----------------------------------------------------------------------------------


class SqliteSource(CursorReads):
    """Reads a table (in rowid order, partitioned by rowid ranges) or a query; with
    ``incremental``, only the rows of its window (:mod:`portl.connectors.sql.incremental`)."""

    def __init__(self, config: Config, base_dir: str):
        if not config.table and not config.query:
            raise SourceError(f"SQLite source {config.path}: give 'table' or 'query'")
        self.config = config
        self.path = resolve_path(config.path, base_dir)
        self.conn = _connect(self.path, create=False)
        self.description = f"sqlite {config.describe()}"
        self.name = config.describe()
        self._schema: pa.Schema | None = None
        self._use_rowid = False
        if config.table:
            info = _table_info(self.conn, config.table)
            if info is None:
                raise SourceError(f"table {config.table!r} not found in SQLite database {self.path}"
                                  + table_hint(config.table, _table_names(self.conn), "the database"))
            self._schema = pa.schema([_field(c) for c in info.columns])
            self._use_rowid = self._has_rowid(config.table)

    def _has_rowid(self, table: str) -> bool:
        try:
            self.conn.execute(f"SELECT rowid FROM {DIALECT.table(table)} LIMIT 0")
        except sqlite3.OperationalError:
            return False  # a WITHOUT ROWID table
        names = {f.name.lower() for f in self._schema}
        return "rowid" not in names

    def _select(self) -> str:
        if self.config.query:
            return f"SELECT * FROM ({self.config.query.rstrip().rstrip(';')})"
        return f"SELECT * FROM {DIALECT.table(self.config.table)}"

    def schema(self) -> pa.Schema:
        if self._schema is None:
            try:
                cur = self.conn.execute(self._select() + " LIMIT 1000")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, f"query on {self.path} failed") from exc
            columns = list(zip(*rows)) if rows else [[] for _ in names]
            fields = []
            for name, values in zip(names, columns):
                try:
                    t = pa.array(list(values)).type
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    t = pa.string()
                fields.append(pa.field(name, pa.string() if pa.types.is_null(t) else t))
            self._schema = pa.schema(fields)
        return self._schema

    def estimate(self) -> Estimate:
        if self.config.table:
            params: list = []
            where = f" WHERE {self._window_condition(params)}" if self.window is not None else ""
            (rows,) = self.conn.execute(f"SELECT count(*) FROM {DIALECT.table(self.config.table)}{where}",
                                        params).fetchone()
            return Estimate(rows=rows, exact=True)
        return Estimate()

    def partitions(self, count: int) -> list[Checkpoint]:
        if not self._use_rowid or count <= 1:
            return [Checkpoint("0", {"after": None, "end": None, "offset": 0})]
        params: list = []
        where = f" WHERE {self._window_condition(params)}" if self.window is not None else ""
        low, high = self.conn.execute(f"SELECT min(rowid), max(rowid) FROM {DIALECT.table(self.config.table)}{where}",
                                      params).fetchone()
        if low is None:
            return [Checkpoint("0", {"after": None, "end": None, "offset": 0})]
        step = max(1, (high - low + 1) // count)
        bounds = [low - 1 + step * i for i in range(count)] + [high]
        return [Checkpoint(str(i), {"after": bounds[i], "end": bounds[i + 1] if i < count - 1 else None, "offset": 0})
                for i in range(count) if i == 0 or bounds[i] < bounds[i + 1]]

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        schema = self.schema()
        pos = dict(start.position)
        rows_done = start.rows
        conn = _connect(self.path, create=False)  # one connection per reader thread
        try:
            if self._use_rowid:
                where, params = [], []
                if pos.get("after") is not None:
                    where.append("rowid > ?"); params.append(pos["after"])
                if pos.get("end") is not None:
                    where.append("rowid <= ?"); params.append(pos["end"])
                if self.window is not None:
                    where.append(self._window_condition(params))
                clause = (" WHERE " + " AND ".join(where)) if where else ""
                query = f"SELECT rowid, * FROM {DIALECT.table(self.config.table)}{clause} ORDER BY rowid"
            else:
                params = []
                within = f" WHERE {self._window_condition(params)}" if self.window is not None else ""
                query = self._select() + within + " LIMIT -1 OFFSET ?"
                params.append(pos.get("offset", 0))
            cursor = conn.execute(query, params)
            while True:
                rows = cursor.fetchmany(batch_rows)
                if not rows:
                    break
                columns = list(zip(*rows))
                if self._use_rowid:
                    pos["after"] = columns[0][-1]
                    columns = columns[1:]
                first = rows_done + 1
                batch, rejects = _to_batch(schema, columns, self.name, first)
                rows_done += len(rows)
                pos["offset"] = pos.get("offset", 0) + len(rows)
                yield Chunk(batch, Checkpoint(start.partition, dict(pos), rows_done), first_record=first, rejects=rejects)
        except sqlite3.Error as exc:
            raise translate(exc, f"reading {self.description} failed") from exc
        finally:
            conn.close()

    # incremental reads (sql.incremental.CursorReads)

    def _window_condition(self, params: list) -> str:
        """The window's condition on the cursor, its values appended to ``params``."""

        def bind(value: Any) -> str:
            params.append(_bindable(value))
            return "?"

        return self.window.condition(self.quoted_cursor(), bind)

    def quoted_cursor(self) -> str:
        return DIALECT.quote(self.config.incremental.cursor)

    def cursor_maximum(self) -> Any:
        """The cursor's largest value now: one query, answered from an index on the cursor when there is one."""
        try:
            relation = DIALECT.table(self.config.table) if self.config.table else f"({self._select()})"
            return self.conn.execute(f"SELECT max({self.quoted_cursor()}) FROM {relation}").fetchone()[0]
        except sqlite3.Error as exc:
            raise translate(exc, f"finding the incremental mark of {self.description} failed") from exc

    def close(self) -> None:
        self.conn.close()


def _bindable(value: Any) -> Any:
    """A window bound as SQLite compares it: decimals as numbers, dates and times as ISO text."""
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    return value


def _to_batch(schema: pa.Schema, columns: list[tuple], source: str, first_record: int) -> tuple[pa.RecordBatch, list[Reject]]:
    """Build a batch from fetched columns. A value that does not fit its column's declared type
    (SQLite lets any value into any column) rejects its row instead of failing the batch."""
    arrays, bad = [], {}
    for field, values in zip(schema, columns):
        try:
            arrays.append(_column(field, values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            fixed = []
            for i, v in enumerate(values):
                try:
                    _column(field, [v])
                    fixed.append(v)
                except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
                    bad.setdefault(i, (field.name, v))
                    fixed.append(None)
            arrays.append(_column(field, fixed))
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    if not bad:
        return batch, []
    rejects = [Reject(source, f"value {v!r} does not fit column {name} ({field_type(schema, name)})",
                      record=first_record + i, column=name, value=v) for i, (name, v) in sorted(bad.items())]
    keep = pa.array([i not in bad for i in range(batch.num_rows)])
    return batch.filter(keep), rejects


def field_type(schema: pa.Schema, name: str) -> str:
    return str(logical_of(schema.field(name)))


def _column(field: pa.Field, values) -> pa.Array:
    t = field.type
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        text = pa.array(values, pa.string())
        if pa.types.is_date(t):
            return pc.cast(pc.utf8_slice_codeunits(text, 0, 10), t)
        return pc.cast(text, t) if not t.tz else pc.cast(pc.cast(text, pa.timestamp(t.unit, "UTC")), t)
    if pa.types.is_decimal(t):
        return pc.cast(pa.array([_decimal_text(v, t.scale) for v in values], pa.string()), t)
    if pa.types.is_boolean(t):
        return pc.not_equal(pa.array(values, pa.int64()), 0)
    return pa.array(values, t)


def _decimal_text(value: Any, scale: int) -> str | None:
    """A decimal column's value as exact text. A REAL holds 15 significant digits of the number
    that was stored (the rest is binary noise), rounded here half away from zero to the scale."""
    if not isinstance(value, float) or not math.isfinite(value):
        return None if value is None else str(value)
    with decimal.localcontext() as context:
        context.prec = 80
        digits = Decimal(format(value, f".{REAL_DIGITS}g"))
        return str(digits.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP))


# --- sink ------------------------------------------------------------------------------------


class SqliteSink:
    """Writes batches inside ``BEGIN IMMEDIATE ... COMMIT`` with the checkpoint in the same
    transaction; upserts go through a temporary staging table and one set-based statement."""

    capabilities = Capabilities(
        modes=frozenset(WriteMode),
        upsert_strategies=frozenset(ConflictStrategy),
        transactional=True,
        resumable=True,
        concurrent_writers=1,
        alters_tables=True,
        bulk_method="multi-row INSERT via executemany, one transaction per batch",
        max_params=MAX_PARAMS,
        keeps_runs=True,
        savepoints=True,
    )

    def __init__(self, config: Config, base_dir: str):
        if not config.table:
            raise TerminalError(f"SQLite destination {config.path}: 'table' is required")
        if config.query:
            raise TerminalError("a SQLite destination takes 'table', not 'query'")
        self.config = config
        self.table = config.table
        self.path = resolve_path(config.path, base_dir)
        self.description = f"sqlite {config.describe()}"
        self._conn: sqlite3.Connection | None = None
        self._truncate_pending = False
        self._stage = f"_portl_stage_{re.sub(r'[^A-Za-z0-9_]', '_', self.table)}"
        self._stage_ready = False
        self._nan_columns: set[str] = set()
        self._savepoints = 0

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, opened (and the database file created) on first write, so that
        planning a load into a new database leaves no file behind."""
        if self._conn is None:
            self._conn = _connect(self.path, create=True)
            if self.config.foreign_keys:
                self._conn.execute("PRAGMA foreign_keys = ON")
        return self._conn

    # introspection and planning

    def table_info(self) -> TableInfo | None:
        if self._conn is None and not os.path.exists(self.path):
            return None
        return _table_info(self.conn, self.table)

    def table_names(self) -> list[str]:
        """The database's tables and views, for a did-you-mean when the table is missing."""
        if self._conn is None and not os.path.exists(self.path):
            return []
        return _table_names(self.conn)

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        d, info = DIALECT, self.table_info()
        plan = TargetPlan(target=f"{self.path} table {self.table}")
        if info is None:
            plan.ddl.append(sql.create_table(d, self.table, _columns(schema), spec.key if spec.mode == WriteMode.UPSERT else ()))
        else:
            for f in schema:
                if info.column(f.name) is None:
                    plan.ddl.append(sql.add_column(d, self.table, f.name, logical_of(f)))
            if spec.mode == WriteMode.UPSERT and not _has_unique(info, spec.key):
                raise TerminalError(
                    f"table {self.table} has no primary key or unique index on ({', '.join(spec.key)}), which an "
                    f"upsert needs; add one, e.g. CREATE UNIQUE INDEX {self.table}_key ON {self.table} ({', '.join(spec.key)})"
                )
        for f in schema:
            lt = logical_of(f)
            if lt.name == "decimal" and (lt.precision or 0) > REAL_DIGITS:
                plan.notes.append(f"column {f.name}: SQLite stores {lt} as a floating-point number; digits past the 15th are not kept")
        columns = [f.name for f in schema]
        if spec.mode == WriteMode.REPLACE:
            plan.per_batch.append(f"DELETE FROM {d.table(self.table)}  -- once, in the first batch's transaction")
        if spec.mode == WriteMode.UPSERT:
            plan.per_batch.append(f"DELETE FROM {d.table(self._stage)}")
            plan.per_batch.append(sql.insert_values(d, self._stage, columns) + "  -- executemany, 100 rows per statement")
            if spec.strategy == ConflictStrategy.FAIL:
                plan.per_batch.append(sql.existing_keys(d, self._stage, self.table, spec.key))
            else:
                plan.per_batch.append(sql.count_existing(d, self._stage, self.table, spec.key))
            plan.per_batch.append(sql.upsert_from_stage(d, self._stage, self.table, columns, spec.key, spec.strategy))
        else:
            plan.per_batch.append(sql.insert_values(d, self.table, columns) + "  -- executemany, 100 rows per statement")
        plan.per_batch.append(f"INSERT INTO {CHECKPOINT_TABLE} ... ON CONFLICT DO UPDATE  -- the checkpoint, same transaction")
        return plan

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        statements = [s for s in self.plan(schema, spec).ddl]
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (run_id TEXT NOT NULL, partition TEXT NOT NULL, "
            "checkpoint TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, partition))"
        )
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                self.conn.execute(statement)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.conn.execute("ROLLBACK") if self.conn.in_transaction else None
            raise translate(exc, f"preparing {self.description} failed") from exc
        self._truncate_pending = spec.mode == WriteMode.REPLACE and not resuming
        if spec.mode == WriteMode.UPSERT:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{DIALECT.quote(self._stage)}")
            self.conn.execute(sql.create_table(DIALECT, self._stage, _columns(schema), temporary=True))
            self._stage_ready = True

    # writing

    @contextmanager
    def transaction(self):
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, f"starting a transaction on {self.description} failed") from exc
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise translate(exc, f"committing to {self.description} failed") from exc

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: sqlite3.Connection) -> WriteResult:
        d = DIALECT
        rows = batch.num_rows
        truncating = self._truncate_pending
        try:
            if truncating:
                tx.execute(f"DELETE FROM {d.table(self.table)}")
                self._truncate_pending = False
            if spec.mode != WriteMode.UPSERT:
                self._insert(tx, self.table, batch)
                return WriteResult(inserted=rows)
            tx.execute(f"DELETE FROM {d.table(self._stage)}")
            self._insert(tx, self._stage, batch)
            if spec.strategy == ConflictStrategy.FAIL:
                keys = tx.execute(sql.existing_keys(d, self._stage, self.table, spec.key)).fetchall()
                if keys:
                    raise ConflictError(self.table, list(spec.key), [tuple(k) for k in keys])
                existing = 0
            else:
                (existing,) = tx.execute(sql.count_existing(d, self._stage, self.table, spec.key)).fetchone()
            tx.execute(sql.upsert_from_stage(d, self._stage, self.table, batch.schema.names, spec.key, spec.strategy))
        except sqlite3.IntegrityError as exc:  # the rows' fault: the engine rejects them and loads the others
            self._truncate_pending = truncating  # rolled back with the rows: the next write empties the table
            column = _CONSTRAINED.search(str(exc))
            raise RowRefused(str(exc), column=column.group(1) if column else None,
                             doing=f"writing to {self.description} failed") from exc
        except sqlite3.Error as exc:
            raise translate(exc, f"writing to {self.description} failed") from exc
        if spec.strategy == ConflictStrategy.SKIP:
            return WriteResult(inserted=rows - existing, skipped=existing)
        return WriteResult(inserted=rows - existing, updated=existing)

    @contextmanager
    def savepoint(self, tx: sqlite3.Connection) -> Iterator[None]:
        """A savepoint in the batch's transaction; an error inside rolls back to it."""
        self._savepoints += 1
        name = f"portl_{self._savepoints}"
        try:
            tx.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                tx.execute(f"ROLLBACK TO {name}")
                tx.execute(f"RELEASE {name}")  # off the stack: a batch of bad rows sets thousands
                raise
            tx.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:
            raise translate(exc, f"writing to {self.description} failed") from exc

    def _insert(self, tx: sqlite3.Connection, table: str, batch: pa.RecordBatch) -> None:
        """Bulk insert: multi-row VALUES statements (fewer statement executions than one row per
        execution), fed a slice of rows at a time."""
        columns = [f.name for f in batch.schema]
        per_statement = max(1, min(100, MAX_PARAMS // max(1, len(columns))))
        many = sql.insert_values(DIALECT, table, columns, per_statement)
        one = sql.insert_values(DIALECT, table, columns)
        converted = text_columns_for_db(self._without_nan(batch), bool_as_int=True, temporal_as_text=True,
                                        decimal_as_text=True)
        for values in row_slices(converted):
            grouped, rest = multi_row_params(values, per_statement)
            if grouped:
                tx.executemany(many, grouped)
            if rest:
                tx.executemany(one, rest)

    # checkpoints

    def save_checkpoint(self, tx: sqlite3.Connection, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        tx.execute(
            f"INSERT INTO {CHECKPOINT_TABLE} (run_id, partition, checkpoint, state, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, partition) DO UPDATE SET checkpoint = excluded.checkpoint, "
            "state = excluded.state, updated_at = excluded.updated_at",
            (run_id, checkpoint.partition, json.dumps(checkpoint.to_json()), json.dumps(state),
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        )

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        if self._conn is None and not os.path.exists(self.path):
            return {}
        try:
            rows = self.conn.execute(f"SELECT checkpoint, state FROM {CHECKPOINT_TABLE} WHERE run_id = ?", (run_id,)).fetchall()
        except sqlite3.OperationalError:
            return {}  # no checkpoint table yet: nothing was ever committed here
        out = {}
        for checkpoint, state in rows:
            cp = Checkpoint.from_json(json.loads(checkpoint))
            out[cp.partition] = (cp, json.loads(state))
        return out

    def job_checkpoints(self, job: str) -> dict[str, dict[str, tuple[Checkpoint, dict[str, Any]]]]:
        """Every run of ``job`` whose checkpoints this database holds, by run id."""
        if self._conn is None and not os.path.exists(self.path):
            return {}
        try:
            rows = self.conn.execute(f"SELECT run_id, checkpoint, state FROM {CHECKPOINT_TABLE} "
                                     "WHERE json_extract(state, '$.job') = ?", (job,)).fetchall()
        except sqlite3.OperationalError:
            return {}  # no checkpoint table yet: nothing was ever committed here
        return group_checkpoints((run_id, json.loads(cp), json.loads(state)) for run_id, cp, state in rows)

    def forget_run(self, run_id: str) -> None:
        try:
            self.conn.execute(f"DELETE FROM {CHECKPOINT_TABLE} WHERE run_id = ?", (run_id,))
        except sqlite3.OperationalError:
            pass  # no checkpoint table: nothing to forget

    def finish(self, run_id: str) -> None:
        if self._stage_ready:
            self.conn.execute(f"DROP TABLE IF EXISTS {DIALECT.table(self._stage)}")

    def _without_nan(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """SQLite stores a NaN as NULL: bind NULL, and remember the column for the run report."""
        columns, changed = list(batch.columns), False
        for i, f in enumerate(batch.schema):
            if pa.types.is_floating(f.type) and pc.any(pc.is_nan(columns[i])).as_py():
                columns[i] = pc.if_else(pc.is_nan(columns[i]), pa.scalar(None, f.type), columns[i])
                self._nan_columns.add(f.name)
                changed = True
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch

    def warnings(self) -> list[str]:
        """What the writes changed on the way, for the run report: NaN stored as NULL."""
        return [f"NaN values became NULL in column {name}: SQLite cannot hold NaN"
                for name in sorted(self._nan_columns)]

    # read-only queries (quality checks: QueryableSink)

    dialect_name = "SQLite"

    def loaded_table(self) -> str:
        return DIALECT.table(self.table)

    def quote(self, name: str) -> str:
        return DIALECT.table(name)

    def query(self, statement: str, tx: Any = None, limit: int = 20) -> QueryResult:
        conn = self.conn
        own = not conn.in_transaction
        try:
            conn.execute("BEGIN" if own else "SAVEPOINT portl_check")
            try:
                cur = conn.execute(statement)
                if cur.description is None:
                    return QueryResult([], [], 0)
                rows = cur.fetchmany(limit)
                total = len(rows) + sum(1 for _ in cur)
                return QueryResult([d[0] for d in cur.description], [tuple(r) for r in rows], total)
            finally:
                conn.execute("ROLLBACK" if own else "ROLLBACK TO portl_check")
                if not own:
                    conn.execute("RELEASE portl_check")
        except sqlite3.Error as exc:
            raise TerminalError(f"{self.description} refused the query: {exc}") from exc

    def count_rows(self) -> int | None:
        if self.table_info() is None:
            return 0
        (rows,) = self.conn.execute(f"SELECT count(*) FROM {DIALECT.table(self.table)}").fetchone()
        return rows

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _columns(schema: pa.Schema) -> list[tuple[str, LogicalType, bool]]:
    return [(f.name, logical_of(f), True) for f in schema]


def _has_unique(info: TableInfo, key: tuple[str, ...]) -> bool:
    wanted = set(key)
    return set(info.primary_key) == wanted or any(set(u) == wanted for u in info.unique_keys)


_LENGTH = re.compile(r"CHAR\s*\(\s*(\d+)\s*\)", re.IGNORECASE)
# CREATE VIEW name [(columns)] AS query: group 1 is a column list (not copied), group 2 the query.
_VIEW = re.compile(r"\s*CREATE\s+(?:TEMP\w*\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                   r"(?:\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|[\w.]+)\s*(\([^)]*\))?\s*AS\s+(.*)$",
                   re.IGNORECASE | re.DOTALL)


def checks_of(created: str) -> list[CheckDef]:
    """The CHECK constraints of a ``CREATE TABLE`` statement (SQLite keeps no catalog of them),
    column constraints and table constraints alike, with their names when given."""
    try:
        every = expressions.tokens(created)
    except expressions.Untranslatable:
        return []
    at = [j for j, t in enumerate(every) if t[0] != "space"]  # positions of the tokens below in every
    toks = [every[j] for j in at]
    out = []
    for i, (kind, tok) in enumerate(toks):
        if kind != "word" or tok.upper() != "CHECK" or i + 1 >= len(toks) or toks[i + 1][1] != "(":
            continue
        depth, end = 0, i + 1
        for end in range(i + 1, len(toks)):
            depth += {"(": 1, ")": -1}.get(toks[end][1], 0)
            if depth == 0:
                break
        name = ""
        if i >= 2 and toks[i - 2][1].upper() == "CONSTRAINT":
            kind_, raw = toks[i - 1]
            name = expressions.unquoted(raw) if kind_ == "quoted" else raw
        out.append(CheckDef(name, "".join(t for _, t in every[at[i + 2]:at[end]]).strip()))
    return out


def open_source(config: Config, base_dir: str) -> SqliteSource | SqliteCatalog:
    return SqliteCatalog(config, base_dir) if config.tables else SqliteSource(config, base_dir)


class SqliteCatalog:
    """The tables of a SQLite database, for whole-database copies (``tables: "*"``)."""

    def __init__(self, config: Config, base_dir: str):
        self.config, self.base_dir = config, base_dir
        self.path = resolve_path(config.path, base_dir)
        self.conn = _connect(self.path, create=False)
        self.description = f"sqlite {self.path} ({'all tables' if config.tables == '*' else config.tables})"
        self.name = config.path
        self.notes: list[str] = []
        """What the copy leaves out that the tables declare: triggers."""

    def tables(self) -> list[TableDef]:
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '\\_portl\\_%' ESCAPE '\\' ORDER BY name")]
        wanted = self.config.tables
        if wanted != "*":
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            missing = [w for w in wanted if w not in names]
            if missing:
                raise SourceError(f"table(s) {', '.join(missing)} not found in SQLite database {self.path}")
            names = [n for n in names if n in wanted]
        self.notes = [f"trigger {name} of table {table} is not copied: triggers are code, written again by hand in "
                      "the destination's own language"
                      for name, table in self.conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = "
                                                           "'trigger' ORDER BY tbl_name, name") if table in names]
        return [self._describe(n) for n in names]

    def _describe(self, table: str) -> TableDef:
        q = DIALECT.quote
        info = _table_info(self.conn, table)
        fields = [_field(c).with_nullable(c.nullable and c.name not in info.primary_key) for c in info.columns]
        indexes = []
        for _seq, index, unique, origin, *_ in self.conn.execute(f"PRAGMA index_list({q(table)})").fetchall():
            if origin == "pk":
                continue
            cols = tuple(r[2] for r in self.conn.execute(f"PRAGMA index_info({q(index)})").fetchall())
            indexes.append(IndexDef(index if origin == "c" else f"{table}_{'_'.join(cols)}_key", cols, bool(unique)))
        keys: dict[int, list] = {}
        for fk_id, _seq, ref, column, ref_column, on_update, on_delete, _match in self.conn.execute(
                f"PRAGMA foreign_key_list({q(table)})").fetchall():
            keys.setdefault(fk_id, [ref, [], [], on_delete, on_update])
            keys[fk_id][1].append(column)
            keys[fk_id][2].append(ref_column)
        foreign = []
        for fk_id, (ref, cols, ref_cols, on_delete, on_update) in sorted(keys.items()):
            if any(c is None for c in ref_cols):  # REFERENCES t without columns: t's primary key
                ref_cols = list(_table_info(self.conn, ref).primary_key)
            foreign.append(ForeignKeyDef(f"{table}_{'_'.join(cols)}_fkey", tuple(cols), ref, tuple(ref_cols), on_delete, on_update))
        identity = None
        if len(info.primary_key) == 1:
            column = info.column(info.primary_key[0])
            if column is not None and column.declared.upper() == "INTEGER":
                identity = column.name  # an INTEGER PRIMARY KEY is the rowid: it numbers new rows
        (rows,) = self.conn.execute(f"SELECT count(*) FROM {DIALECT.table(table)}").fetchone()
        lengths = {c.name: int(m.group(1)) for c in info.columns
                   if logical_of(_field(c)).name == "text" and (m := _LENGTH.search(c.declared))}
        defaults = {name: default for _cid, name, _declared, _notnull, default, _pk, hidden
                    in self.conn.execute(f"PRAGMA table_xinfo({q(table)})").fetchall() if default is not None and not hidden}
        (created,) = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        return TableDef(table, pa.schema(fields), tuple(info.primary_key), tuple(indexes), tuple(foreign), identity, rows,
                        lengths=lengths, defaults=defaults, checks=tuple(checks_of(created or "")), dialect="sqlite")

    def views(self) -> list[ViewDef]:
        """Every view, its query as written in its ``CREATE VIEW``."""
        out = []
        for name, created in self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name"):
            match = _VIEW.match(created or "")
            if match and match.group(1):
                out.append(ViewDef(name, "", "sqlite", why=f"it names its columns in a list {match.group(1)}, "
                                                          "which Portl does not copy"))
            else:
                out.append(ViewDef(name, match.group(2) if match else "", "sqlite"))
        return out

    def table_source(self, name: str) -> SqliteSource:
        return SqliteSource(self.config.model_copy(update={"tables": None, "table": name}), self.base_dir)

    def close(self) -> None:
        self.conn.close()


def open_sink(config: Config, base_dir: str) -> SqliteSink:
    return SqliteSink(config, base_dir)


def sink_capabilities() -> Capabilities:
    """What a SQLite destination can do, as ``portl connectors`` lists it."""
    return SqliteSink.capabilities
