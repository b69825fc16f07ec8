"""Writing Postgres: every batch is one transaction on a pooled connection, loaded with
``COPY … FROM STDIN``, with its checkpoint in the same transaction. The COPY data is in Postgres'
binary format when the column types allow it (:mod:`portl.connectors.postgres.copybinary`), else
CSV text (:mod:`portl.connectors.postgres.copytext`).

- ``append`` copies straight into the table.
- ``upsert`` copies into a temporary staging table, then runs ONE ``INSERT … SELECT … ON CONFLICT``
  whose ``RETURNING (xmax = 0)`` tells inserted rows from updated ones.
- ``replace`` loads ``<table>__portl_new`` and swaps it in when the run finishes
  (:mod:`portl.connectors.postgres.replace`), so readers see the old rows until then.

A batch may also arrive as the source's own CSV text (``write_verbatim``, see
:mod:`portl.connectors.postgres.textcopy`): the same statements, with that text as the COPY data.

Up to four batches are written at once, each on its own connection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa

from portl.connectors.base import (
    Capabilities, Checkpoint, ConflictStrategy, QueryResult, TableInfo, TargetPlan, TextFormat, Verbatim, WriteMode, WriteResult,
    WriteSpec, group_checkpoints,
)
from portl.connectors.postgres import catalog, copybinary, copytext, refusals, replace, textcopy
from portl.connectors.postgres.catalog import TableName
from portl.connectors.postgres.config import Config
from portl.connectors.postgres.connection import Pool, Session, translate
from portl.connectors.postgres.typemap import CREATED_TYPNAMES, DIALECT, quote_ident
from portl.connectors.sql import dialect as sql
from portl.errors import ConflictError, TerminalError
from portl.plural import counted
from portl.types import LogicalType, logical_of

CONCURRENT_WRITERS = 4
CHECKPOINT_TABLE = "_portl_checkpoints"
COPY_SLICE_BYTES = 256 * 1024
SWAPPED = "(replace: swapped)"  # the checkpoint row that records a finished swap


class PostgresSink:
    """Writes batches into one table."""

    capabilities = Capabilities(
        modes=frozenset(WriteMode),
        upsert_strategies=frozenset(ConflictStrategy),
        transactional=True,
        resumable=True,
        concurrent_writers=CONCURRENT_WRITERS,
        alters_tables=True,
        bulk_method="COPY FROM STDIN (FORMAT binary, or csv for other column types), one transaction per batch, "
                    "up to 4 at once",
        verbatim=frozenset({"csv", "pgbinary"}),
        savepoints=True,
        keeps_runs=True,
        whole_databases=True,
    )

    def __init__(self, config: Config, base_dir: str, *, table: TableName | None = None, pool: Pool | None = None):
        if config.query or config.tables:
            raise TerminalError("a PostgreSQL destination takes 'table' (or nothing, for a whole-database copy), "
                                "not 'query' or 'tables'")
        if table is None and not config.table:
            raise TerminalError(f"PostgreSQL destination {config.describe()}: 'table' is required")
        self.config = config
        self.table = table or TableName.parse(config.table, config.schema_)
        self.new = TableName(self.table.schema, replace.side_name(self.table.name, replace.NEW))
        self.checkpoints = TableName(self.table.schema, CHECKPOINT_TABLE)
        self.description = f"postgres {config.location()}/{config.database_name()} {self.table}"
        self._pool = pool or Pool(config, base_dir, keep=CONCURRENT_WRITERS)
        self._owns_pool = pool is None
        self._target = self.table
        self._replacing = False
        self._swapped = False
        self._types: dict[str, tuple[str, int]] = {}  # the target's columns, once prepared
        self._layout: tuple[pa.Schema, copybinary.BinaryCopy | None] | None = None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        session = self._pool.take()
        try:
            yield session.conn
        finally:
            self._pool.give(session)

    # introspection and planning

    def table_info(self) -> TableInfo | None:
        with self._conn() as conn:
            try:
                return catalog.table_info(conn, self.table)
            except psycopg.Error as exc:
                raise translate(exc, f"describing {self.description}") from exc

    def table_names(self) -> list[str]:
        """The tables and views there are, for a did-you-mean when the table is missing."""
        with self._conn() as conn:
            try:
                return catalog.relation_names(conn, self.table.schema)
            except psycopg.Error as exc:
                raise translate(exc, f"listing the tables of {self.description}") from exc

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        with self._conn() as conn:
            try:
                ddl = self._ddl(conn, schema, spec, resuming=False)
                oid = catalog.table_oid(conn, self.table)
                exists = oid is not None
                types = {f.name: _created_type(logical_of(f)) for f in schema}
                types.update(catalog.base_types(conn, oid) if exists else {})
            except psycopg.Error as exc:
                raise translate(exc, f"planning {self.description}") from exc
        target = self.new if spec.mode == WriteMode.REPLACE else self.table
        plan = TargetPlan(target=f"{self.config.location()}/{self.config.database_name()} table {self.table}", ddl=ddl)
        columns = schema.names
        layout, why = copybinary.plan(schema, types)  # the format the batches will take, and why when it is text
        fmt, comment = ("binary", "") if layout is not None else ("csv", f"  -- as text: {why}")
        if spec.mode == WriteMode.UPSERT:
            stage = self._stage(columns)
            plan.per_batch += [self._create_stage(stage, columns), f"TRUNCATE {stage}", _copy_sql(stage, columns, fmt) + comment]
            if spec.strategy == ConflictStrategy.FAIL:
                plan.per_batch.append(sql.existing_keys(DIALECT, stage, self.table.sql, spec.key))
            plan.per_batch.append(self._upsert_sql(stage, columns, spec))
        else:
            plan.per_batch.append(_copy_sql(target.sql, columns, fmt) + comment)
        plan.per_batch.append(f"INSERT INTO {self.checkpoints.sql} ... ON CONFLICT DO UPDATE  -- the checkpoint, same transaction")
        if spec.mode == WriteMode.REPLACE:
            old = TableName(self.table.schema, replace.side_name(self.table.name, replace.OLD))
            swap = [f"ALTER TABLE {self.table.sql} RENAME TO {quote_ident(old.name)}"] if exists else []
            swap.append(f"ALTER TABLE {self.new.sql} RENAME TO {quote_ident(self.table.name)}")
            swap += [f"DROP TABLE {old.sql}"] if exists else []
            plan.per_batch.append("-- once, after the last batch, in one transaction: " + "; ".join(swap))
        return plan

    def _ddl(self, conn: psycopg.Connection, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> list[str]:
        """The statements that make the table ready, checking what would make the load fail."""
        ddl: list[str] = []
        info = catalog.table_info(conn, self.table)
        if not catalog.schema_exists(conn, self.table.schema):
            ddl.append(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.table.schema)}")
        target = self.table
        if spec.mode == WriteMode.REPLACE:
            target = self.new
            if info is not None:
                replace.check_no_dependents(conn, self.table)
            kept = catalog.table_info(conn, self.new) if resuming else None
            if kept is not None:
                info = kept
            else:
                ddl.append(f"DROP TABLE IF EXISTS {self.new.sql}")
                ddl.append(replace.create_new(self.new, _columns(schema)) if info is None
                           else f"CREATE TABLE {self.new.sql} (LIKE {self.table.sql} INCLUDING ALL)")
        elif info is None:
            key = spec.key if spec.mode == WriteMode.UPSERT else ()
            ddl.append(sql.create_table(DIALECT, self.table.sql, _columns(schema), key))
        elif spec.mode == WriteMode.UPSERT and not _has_unique(info, spec.key):
            keys = ", ".join(quote_ident(k) for k in spec.key)
            raise TerminalError(
                f"table {self.table} has no primary key or unique index on ({', '.join(spec.key)}), which an upsert "
                f"needs; add one, e.g. CREATE UNIQUE INDEX ON {self.table.sql} ({keys})"
            )
        if info is not None:
            for f in schema:
                if info.column(f.name) is None:
                    ddl.append(sql.add_column(DIALECT, target.sql, f.name, logical_of(f)))
        return ddl

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._replacing = spec.mode == WriteMode.REPLACE
        self._target = self.new if self._replacing else self.table
        if self._replacing and self._swapped and resuming:
            return  # the run being resumed already swapped its table in; only finishing is left
        self._swapped = False
        with self._conn() as conn:
            try:
                with conn.transaction():
                    # Sinks preparing tables of one schema at once (a whole-database copy) would
                    # race to create the schema and the checkpoint table: one at a time.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                 (f"portl prepare {self.table.schema}",))
                    for statement in self._ddl(conn, schema, spec, resuming):
                        conn.execute(statement)
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {self.checkpoints.sql} (run_id text NOT NULL, partition text NOT NULL, "
                        "checkpoint jsonb NOT NULL, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
                        "PRIMARY KEY (run_id, partition))"
                    )
                oid = catalog.table_oid(conn, self._target)
                self._types = catalog.base_types(conn, oid) if oid is not None else {}
            except psycopg.Error as exc:
                raise translate(exc, f"preparing {self.description}", table=str(self.table), privilege="CREATE",
                                on=f"SCHEMA {quote_ident(self.table.schema)}", user=conn.info.user) from exc

    # writing

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        session = self._pool.take()
        try:
            with session.conn.transaction():
                yield session
        except psycopg.Error as exc:
            raise translate(exc, f"committing a batch to {self.description}") from exc
        finally:
            self._pool.give(session)

    @contextmanager
    def savepoint(self, tx: Session) -> Iterator[None]:
        """A savepoint in the batch's transaction; an error inside rolls back to it."""
        with tx.lock:
            try:
                with tx.conn.transaction():
                    yield
            except psycopg.Error as exc:
                raise translate(exc, f"writing to {self.description}") from exc

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Session) -> WriteResult:
        return self._write(batch.num_rows, batch.schema.names, spec, tx, lambda cur, table: self._copy(cur, table, batch))

    def verbatim_problems(self, schema: pa.Schema, spec: WriteSpec, fmt: TextFormat) -> list[str]:
        """Columns whose type would not read canonical text as Portl does (see ``textcopy``), or
        would not take the binary layout of the source's column."""
        if fmt.kind not in self.capabilities.verbatim:
            return [f"{self.description} loads csv text or binary COPY rows, not {fmt.kind}"]
        with self._conn() as conn:
            try:
                oid = catalog.table_oid(conn, self.table)
                types = catalog.base_types(conn, oid) if oid is not None else {}
            except psycopg.Error as exc:
                raise translate(exc, f"describing {self.description}") from exc
        if fmt.kind == "pgbinary":
            created = {f.name: _created_type(logical_of(f)) for f in schema}
            return textcopy.binary_problems(fmt.wire_types, {**created, **types})
        return textcopy.problems(schema, types)

    def write_verbatim(self, block: Verbatim, columns: list[str], fmt: TextFormat, spec: WriteSpec,
                       tx: Session) -> WriteResult:
        """COPY the source's text (or binary rows) as it is; a block the server refuses raises a
        TerminalError."""
        binary = fmt.kind == "pgbinary"
        if not binary and textcopy.ends_early(block.data):
            raise TerminalError(f"writing to {self.description}: a line of the block is \\., which COPY reads as "
                                "the end of the data")

        def load(cur: psycopg.Cursor, table: str) -> None:
            with cur.copy(textcopy.copy_statement(table, columns, fmt, tx.conn)) as copy:
                if binary:
                    copy.write(copybinary.SIGNATURE)
                copy.write(block.data)
                if binary:
                    copy.write(copybinary.TRAILER)
            if cur.rowcount != block.rows:  # the row accounting rests on it: never trust a count blindly
                raise TerminalError(f"writing to {self.description}: COPY loaded {counted(cur.rowcount, 'row')} of a block "
                                    f"of {block.rows}")

        return self._write(block.rows, columns, spec, tx, load)

    def _write(self, rows: int, columns: list[str], spec: WriteSpec, tx: Session,
               load: Callable[[psycopg.Cursor, str], None]) -> WriteResult:
        """Load ``rows`` rows of ``columns`` with ``load(cursor, table)``: into the table, or into
        the staging table and from there with one upsert statement."""
        stage = self._stage(columns) if spec.mode == WriteMode.UPSERT else None
        with tx.lock, tx.conn.cursor() as cur:
            try:
                if stage is None:
                    load(cur, self._target.sql)
                    return WriteResult(inserted=rows)
                cur.execute(self._create_stage(stage, columns))
                cur.execute(f"TRUNCATE {stage}")
                load(cur, stage)
                if spec.strategy == ConflictStrategy.FAIL:
                    keys = cur.execute(sql.existing_keys(DIALECT, stage, self.table.sql, spec.key)).fetchall()
                    if keys:
                        raise ConflictError(str(self.table), list(spec.key), [tuple(k) for k in keys])
                    cur.execute(self._upsert_sql(stage, columns, spec))
                    return WriteResult(inserted=cur.rowcount)
                inserted, updated = cur.execute(self._upsert_sql(stage, columns, spec)).fetchone()
            except psycopg.Error as exc:
                refused = refusals.refusal(exc, f"writing to {self.description}",
                                           stage=_unquoted(stage) if stage else None, table=self.table.name)
                if refused is not None:  # the rows' fault: the engine rejects them and loads the others
                    raise refused from exc
                privilege = "INSERT" if stage is None else "SELECT, INSERT, UPDATE"
                error = translate(exc, f"writing to {self.description}", table=str(self._target), privilege=privilege,
                                  on=str(self._target), user=tx.conn.info.user)
                if stage is not None:  # a COPY error names the staging table; the user knows the target
                    error = type(error)(str(error).replace(_unquoted(stage), self.table.name))
                raise error from exc
        untouched = rows - inserted - updated  # DO NOTHING leaves rows whose key exists
        if spec.strategy == ConflictStrategy.SKIP:
            return WriteResult(inserted=inserted, skipped=untouched)
        return WriteResult(inserted=inserted, updated=updated + untouched)

    def _copy(self, cur: psycopg.Cursor, table: str, batch: pa.RecordBatch) -> None:
        layout = self._layout_for(batch.schema)
        if layout is not None:
            try:
                encoded = layout.encode(batch)
            except copybinary.NotExact:
                pass  # the text COPY below lets the server refuse the value with its own message
            else:
                with cur.copy(_copy_sql(table, encoded.columns, "binary")) as copy:
                    copy.write(copybinary.SIGNATURE)
                    for part in encoded.slices(COPY_SLICE_BYTES):
                        copy.write(part)
                    copy.write(copybinary.TRAILER)
                return
        # Sent in slices of about COPY_SLICE_BYTES: the server parses one slice while the next is
        # encoded, which hides most of the encoding time (1M rows of 25,000-row batches: 6.8 s -> 5.4 s).
        per_row = max(1, batch.nbytes // max(1, batch.num_rows))
        rows = max(100, COPY_SLICE_BYTES // per_row)
        with cur.copy(_copy_sql(table, batch.schema.names)) as copy:
            for offset in range(0, batch.num_rows, rows):
                copy.write(memoryview(copytext.encode(batch.slice(offset, rows))))

    def _layout_for(self, schema: pa.Schema) -> copybinary.BinaryCopy | None:
        """How batches of ``schema`` go as binary COPY (None: as CSV text)."""
        known = self._layout
        if known is None or not known[0].equals(schema):
            known = self._layout = (schema, copybinary.plan(schema, self._types)[0])
        return known[1]

    def _stage(self, columns: list[str]) -> str:
        """The session's staging table for this target and these columns."""
        digest = hashlib.sha1(json.dumps([str(self.table), list(columns)]).encode()).hexdigest()[:12]
        return f"{quote_ident('pg_temp')}.{quote_ident('_portl_stage_' + digest)}"

    def _create_stage(self, stage: str, columns: list[str]) -> str:
        # Column types only (no NOT NULL, defaults or keys): the target checks those on insert.
        name = stage.split(".", 1)[1]
        return f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT {DIALECT.column_list(columns)} FROM {self.table.sql} WITH NO DATA"

    def _upsert_sql(self, stage: str, columns: list[str], spec: WriteSpec) -> str:
        statement = sql.upsert_from_stage(DIALECT, stage, self.table.sql, columns, spec.key, spec.strategy)
        if spec.strategy == ConflictStrategy.FAIL:
            return statement
        return (f"WITH up AS ({statement} RETURNING (xmax = 0) AS inserted) "
                "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up")

    # checkpoints

    def save_checkpoint(self, tx: Session, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        with tx.lock:
            try:
                _save(tx.conn, self.checkpoints, run_id, checkpoint.partition, checkpoint.to_json(), state)
            except psycopg.Error as exc:
                raise translate(exc, f"saving a checkpoint in {self.checkpoints}") from exc

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        with self._conn() as conn:
            try:
                if catalog.table_oid(conn, self.checkpoints) is None:
                    return {}
                rows = conn.execute(f"SELECT partition, checkpoint, state FROM {self.checkpoints.sql} WHERE run_id = %s",
                                    (run_id,)).fetchall()
            except psycopg.Error as exc:
                raise translate(exc, f"reading checkpoints from {self.checkpoints}") from exc
        out = {}
        for partition, checkpoint, state in rows:
            if partition == SWAPPED:
                self._swapped = True
                continue
            cp = Checkpoint.from_json(checkpoint)
            out[cp.partition] = (cp, state)
        return out

    def job_checkpoints(self, job: str) -> dict[str, dict[str, tuple[Checkpoint, dict[str, Any]]]]:
        """Every run of ``job`` whose checkpoints this schema holds, by run id."""
        with self._conn() as conn:
            try:
                if catalog.table_oid(conn, self.checkpoints) is None:
                    return {}
                rows = conn.execute(f"SELECT run_id, partition, checkpoint, state FROM {self.checkpoints.sql} "
                                    "WHERE state ->> 'job' = %s", (job,)).fetchall()
            except psycopg.Error as exc:
                raise translate(exc, f"reading checkpoints from {self.checkpoints}") from exc
        return group_checkpoints((run_id, checkpoint, state) for run_id, partition, checkpoint, state in rows
                                 if partition != SWAPPED)

    def forget_run(self, run_id: str) -> None:
        with self._conn() as conn:
            try:
                if catalog.table_oid(conn, self.checkpoints) is not None:
                    conn.execute(f"DELETE FROM {self.checkpoints.sql} WHERE run_id = %s", (run_id,))
            except psycopg.Error as exc:
                raise translate(exc, f"removing the checkpoints of run {run_id} from {self.checkpoints}") from exc

    def finish(self, run_id: str) -> None:
        if not self._replacing or self._swapped:
            return
        with self._conn() as conn:
            try:
                with conn.transaction():
                    replace.swap(conn, self.table, self.new)
                    _save(conn, self.checkpoints, run_id, SWAPPED, {}, {})
            except psycopg.Error as exc:
                raise translate(exc, f"swapping the loaded table {self.new} in for {self.table}", table=str(self.table)) from exc
        self._swapped = True

    # read-only queries (quality checks: QueryableSink)

    dialect_name = "PostgreSQL"

    def loaded_table(self) -> str:
        return (self.new if self._replacing and not self._swapped else self.table).sql

    def quote(self, name: str) -> str:
        return DIALECT.table(name)

    def query(self, statement: str, tx: Session | None = None, limit: int = 20) -> QueryResult:
        def run(conn: psycopg.Connection) -> QueryResult:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                cur.execute(statement)
                if cur.description is None:
                    return QueryResult([], [], 0)
                rows = cur.fetchmany(limit)
                return QueryResult([d.name for d in cur.description], rows, max(cur.rowcount, len(rows)))

        try:
            if tx is not None:
                with tx.lock:
                    return run(tx.conn)
            with self._conn() as conn:
                return run(conn)
        except psycopg.Error as exc:
            raise TerminalError(f"{self.description} refused the query: {str(exc).strip()}") from exc

    def count_rows(self) -> int | None:
        table = self.new if self._replacing and not self._swapped else self.table
        with self._conn() as conn:
            try:
                if catalog.table_oid(conn, table) is None:
                    return 0
                return conn.execute(f"SELECT count(*) FROM {table.sql}").fetchone()[0]
            except psycopg.Error as exc:
                raise translate(exc, f"counting the rows of {table}", table=str(table), privilege="SELECT",
                                user=conn.info.user) from exc

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()


def _save(conn: psycopg.Connection, table: TableName, run_id: str, partition: str, checkpoint: dict, state: dict) -> None:
    conn.execute(
        f"INSERT INTO {table.sql} (run_id, partition, checkpoint, state, updated_at) VALUES (%s, %s, %s, %s, now()) "
        "ON CONFLICT (run_id, partition) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, state = EXCLUDED.state, "
        "updated_at = EXCLUDED.updated_at",
        (run_id, partition, json.dumps(checkpoint), json.dumps(state)),
    )


def _unquoted(stage: str) -> str:
    return sql.split_qualified(stage)[-1]


def _created_type(logical: LogicalType) -> tuple[str, int]:
    """The base type name and modifier of a column Portl creates for ``logical``."""
    if logical.name == "decimal":
        return "numeric", ((logical.precision << 16) | logical.scale) + 4
    return CREATED_TYPNAMES[logical.name], -1


def _copy_sql(table: str, columns: list[str], fmt: str = "csv") -> str:
    return f"COPY {table} ({DIALECT.column_list(columns)}) FROM STDIN (FORMAT {fmt})"


def _columns(schema: pa.Schema) -> list[tuple[str, LogicalType, bool]]:
    return [(f.name, logical_of(f), True) for f in schema]


def _has_unique(info: TableInfo, key: tuple[str, ...]) -> bool:
    wanted = set(key)
    return set(info.primary_key) == wanted or any(set(u) == wanted for u in info.unique_keys)
