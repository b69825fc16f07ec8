"""Writing MySQL and MariaDB tables: append, replace and upsert, a batch and its checkpoint in one
InnoDB transaction, several batches at once.

- Every ``transaction()`` borrows its own connection from a small pool, so up to four batches are
  written in parallel. DDL commits implicitly in MySQL, so none runs inside a batch's
  transaction: tables, columns and the checkpoint table are made in ``prepare()``, and an upsert's
  temporary staging table when a connection is first lent (temporary tables never commit).
- append: ``LOAD DATA LOCAL INFILE`` when the server allows it, else multi-row INSERTs.
- upsert: the batch is loaded into a temporary staging table, then ONE
  ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` moves it into the table.
- replace: rows go to ``<table>__portl_new`` (``CREATE TABLE ... LIKE`` the table), and
  ``finish()`` swaps it in with one atomic ``RENAME TABLE`` and drops the old table. Readers
  see the old rows until the swap, then all the new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from portl.connectors.base import (
    Capabilities, Checkpoint, ConflictStrategy, QueryResult, TableDef, TableInfo, TargetPlan, ViewDef, WriteMode, WriteResult, WriteSpec,
    group_checkpoints,
)
from portl.connectors.mysql import catalog
from portl.connectors.mysql.client import LOCAL_INFILE_REFUSED, Pool, Server, close_quietly, errno_of, execute
from portl.connectors.mysql.config import Config
from portl.connectors.mysql.columns import finite_floats
from portl.connectors.mysql import tables
from portl.connectors.mysql.constraints import constraint_notes, constraint_statements, key_columns, tolerated
from portl.connectors.mysql.dialect import (
    DIALECT, KEY_TYPES, add_column, create_table, qualified, quote, shared_name,
)
from portl.connectors.mysql.loading import insert_batch, load_batch, load_data_statement
from portl.connectors.mysql.refusals import name_primary_key, refusal
from portl.connectors.sql import dialect as sql
from portl.errors import ConflictError, PortlError, RowRefused, TerminalError
from portl.types import logical_of

CHECKPOINT_TABLE = "_portl_checkpoints"
WRITERS = 4
NEW_SUFFIX, OLD_SUFFIX = "__portl_new", "__portl_old"
MAX_NAME = 64


def side_name(table: str, suffix: str) -> str:
    """``table`` + ``suffix``, shortened (with a hash, to stay unique) to MySQL's 64 characters."""
    name = table + suffix
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:8]
    return f"{table[:MAX_NAME - len(suffix) - 9]}_{digest}{suffix}"


@dataclass
class Tx:
    """One batch's transaction: its connection, and a lock for callers that share it
    (``transaction: job`` with parallel workers hands one transaction to every writer)."""

    conn: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


class MysqlSink:
    """A MySQL table to write; without a table, a whole database (a copy's destination)."""

    def __init__(self, config: Config, base_dir: str, server: Server | None = None, table: str | None = None,
                 pool: Pool | None = None):
        if config.query:
            raise TerminalError("a MySQL destination takes `table`, not `query`")
        if config.tables:
            raise TerminalError("`tables` belongs on the source of a whole-database copy, not on the destination")
        self.config, self.base_dir = config, base_dir
        self.server = server or Server(config, base_dir, "destination")
        name = table if table is not None else config.table
        self.table_name = name
        if name:
            self.database, self.table = catalog.split_name(name, self.server.database)
            self.description = f"mysql {self.config.user_name}@{self.server.location}/{self.server.database} {name}"
        else:
            self.database, self.table = self.server.database, ""
            self.description = f"mysql {self.config.user_name}@{self.server.location}/{self.server.database}"
        # The tables of a database copy share their database sink's pool: a copy of 500 tables
        # must not hold 500 connections.
        self._pool: Pool | None = pool
        self._owns_pool = pool is None
        self._pool_lock = threading.Lock()
        self._facts = self.server.facts()  # also checks the server, the credentials and the database now
        self._use_load_data = config.local_infile and self._facts.local_infile
        self._staged: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._mode: WriteMode | None = None
        self._target = self.table
        self._swap = False
        self._stage = side_name(self.table, "__portl_stage") if self.table else ""
        self._non_finite: set[str] = set()  # float columns whose NaN or infinities became NULL
        self._copy_notes: dict[str, list[str]] = {"tables": [], "constraints": [], "views": []}  # a copy's, per step
        self._savepoints = itertools.count(1)
        self._primary_key: tuple[str, ...] = ()

    # --- plumbing --------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        if self._use_load_data:
            method = "LOAD DATA LOCAL INFILE of each batch (tab-separated, escaped), up to 4 batches at once"
        else:
            method = "multi-row INSERT with bound values, up to 4 batches at once"
        return Capabilities(modes=frozenset(WriteMode), upsert_strategies=frozenset(ConflictStrategy),
                            transactional=True, resumable=True, concurrent_writers=WRITERS, alters_tables=True,
                            bulk_method=method, savepoints=True, whole_databases=True, keeps_runs=True)

    def _connections(self) -> Pool:
        with self._pool_lock:
            if self._pool is None:
                # One connection per concurrent writer, and one for DDL and bookkeeping.
                self._pool = Pool(self.server, WRITERS + 1, local_infile=self._use_load_data)
            return self._pool

    @contextmanager
    def _cursor(self, doing: str) -> Iterator[Any]:
        """An autocommit cursor for metadata and DDL, with errors translated."""
        import pymysql

        with self._connections().connection() as conn:
            try:
                with conn.cursor() as cur:
                    yield cur
            except pymysql.MySQLError as exc:
                raise self.server.error(exc, doing) from exc

    def _require_table(self) -> None:
        if not self.table:
            raise TerminalError(f"MySQL destination {self.server.location}/{self.server.database}: `table` is required "
                                "(or copy a whole database by giving the source `tables:`)")

    def _sql(self, table: str) -> str:
        return qualified(self.database, table)

    # --- introspection and planning ----------------------------------------------------------

    def table_info(self) -> TableInfo | None:
        self._require_table()
        with self._cursor(f"reading the table definition of {self.description}") as cur:
            return catalog.table_info(cur, self.database, self.table, self._facts.mariadb, shown_as=self.table_name)

    def table_names(self) -> list[str]:
        """The database's tables, for a did-you-mean when the table is missing."""
        with self._cursor(f"listing the tables of {self.description}") as cur:
            return catalog.table_names(cur, self.database)

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._require_table()
        info = self.table_info()
        plan = TargetPlan(target=f"{self.server.location}/{self.database} table {self.table}")
        plan.ddl = self._ddl(schema, spec, info, resuming=False, new_exists=False)
        with self._cursor(f"checking {self.description}") as cur:
            self._check(cur, spec, info, plan)
        self._notes(schema, spec, info, plan)
        self._per_batch(schema, spec, plan)
        return plan

    def _ddl(self, schema: pa.Schema, spec: WriteSpec, info: TableInfo | None, resuming: bool, new_exists: bool) -> list[str]:
        """The DDL before loading: create the table (or the replacement) and add missing columns."""
        charset = None if self._facts.database_charset.startswith("utf8mb4") else "utf8mb4"
        key = spec.key if spec.mode == WriteMode.UPSERT else ()
        if spec.mode == WriteMode.REPLACE:
            new = side_name(self.table, NEW_SUFFIX)
            if resuming and new_exists:
                return []
            out = [f"DROP TABLE IF EXISTS {self._sql(new)}"]
            if info is None:
                return out + [create_table(self.database, new, schema, (), charset)]
            out.append(f"CREATE TABLE {self._sql(new)} LIKE {self._sql(self.table)}")
            return out + [add_column(self.database, new, f) for f in schema if info.column(f.name) is None]
        if info is None:
            return [create_table(self.database, self.table, schema, key, charset)]
        return [add_column(self.database, self.table, f) for f in schema if info.column(f.name) is None]

    def _swap_statements(self, exists: bool) -> list[str]:
        """One atomic RENAME TABLE swaps the tables. A ``__portl_old`` table left by a swap that
        was interrupted before its DROP goes first, or the RENAME would fail."""
        new, old = side_name(self.table, NEW_SUFFIX), side_name(self.table, OLD_SUFFIX)
        if not exists:
            return [f"RENAME TABLE {self._sql(new)} TO {self._sql(self.table)}"]
        return [f"DROP TABLE IF EXISTS {self._sql(old)}",
                f"RENAME TABLE {self._sql(self.table)} TO {self._sql(old)}, {self._sql(new)} TO {self._sql(self.table)}",
                f"DROP TABLE {self._sql(old)}"]

    def _check(self, cur: Any, spec: WriteSpec, info: TableInfo | None, plan: TargetPlan) -> None:
        """Refuse, before anything is read, what the table cannot take."""
        if info is None:
            return
        if spec.mode == WriteMode.UPSERT:
            wanted = set(spec.key)
            uniques = [info.primary_key] + info.unique_keys if info.primary_key else list(info.unique_keys)
            if not any(set(u) == wanted for u in uniques):
                columns = ", ".join(quote(k) for k in spec.key)
                raise TerminalError(
                    f"table {self.table} has no primary key or unique index on ({', '.join(spec.key)}), which an upsert "
                    f"needs (ON DUPLICATE KEY UPDATE matches rows by unique keys); add one, e.g. ALTER TABLE "
                    f"{self._sql(self.table)} ADD UNIQUE KEY ({columns})"
                )
            others = [u for u in uniques if set(u) != wanted]
            if others:
                shown = "; ".join("(" + ", ".join(u) + ")" for u in others)
                plan.notes.append(
                    f"table {self.table} has other unique keys besides ({', '.join(spec.key)}): {shown}. MySQL's ON "
                    "DUPLICATE KEY UPDATE fires on any of them, so a row matching an existing row on one of those "
                    "updates that row (and is counted as inserted)"
                )
        if spec.mode == WriteMode.REPLACE:
            referencing = catalog.referenced_by(cur, self.database, self.table)
            own = catalog.foreign_keys(cur, self.database, self.table)
            triggers = catalog.triggers(cur, self.database, self.table)
            problems = []
            if referencing:
                problems.append(f"foreign keys of {', '.join(referencing)} point at it (after the swap they would "
                                "point at the old table)")
            if own:
                problems.append(f"it has foreign keys ({', '.join(fk.name for fk in own)}), which CREATE TABLE ... "
                                "LIKE does not copy")
            if triggers:
                problems.append(f"it has triggers ({', '.join(triggers)}), which would leave with the old table")
            if problems:
                raise TerminalError(
                    f"mode replace loads a copy of table {self.table} and swaps it in with RENAME TABLE, but "
                    + "; ".join(problems) + ". Empty the table yourself (DELETE FROM or TRUNCATE) and use mode append"
                )

    def _notes(self, schema: pa.Schema, spec: WriteSpec, info: TableInfo | None, plan: TargetPlan) -> None:
        created = {f.name for f in schema} if info is None else {f.name for f in schema if info.column(f.name) is None}
        for f in schema:
            lt = logical_of(f)
            if f.name in created and lt.name == "timestamptz":
                plan.notes.append(f"column {f.name}: MySQL's DATETIME(6) keeps no time zone; the instants are stored "
                                  "as UTC times")
            if info is None and spec.mode == WriteMode.UPSERT and f.name in spec.key and lt.name in KEY_TYPES:
                plan.notes.append(f"key column {f.name} is created as {KEY_TYPES[lt.name]}: MySQL cannot make a "
                                  "LONGTEXT or LONGBLOB column a key; a longer value fails its batch")
        if self.config.local_infile and not self._facts.local_infile:
            plan.notes.append(f"the server at {self.server.location} has local_infile OFF, so batches are written "
                              "with multi-row INSERTs instead of LOAD DATA LOCAL INFILE (SET GLOBAL local_infile = 1 "
                              "allows it)")

    def _per_batch(self, schema: pa.Schema, spec: WriteSpec, plan: TargetPlan) -> None:
        columns = schema.names
        if spec.mode == WriteMode.UPSERT:
            into = quote(self._stage)
            plan.per_batch.append(f"DELETE FROM {into}  -- a TEMPORARY TABLE LIKE {quote(self.table)}, one per connection")
        else:
            into = self._sql(side_name(self.table, NEW_SUFFIX) if spec.mode == WriteMode.REPLACE else self.table)
        if self._use_load_data:
            plan.per_batch.append(load_data_statement(into, schema).replace("%s", "'<batch file>'"))
            plan.per_batch.append("SHOW WARNINGS  -- any warning (a truncated or converted value) fails the batch")
        else:
            plan.per_batch.append(f"INSERT INTO {into} ({DIALECT.column_list(columns)}) VALUES (...), (...), ...  "
                                  "-- bound values, as many rows as fit max_allowed_packet")
        if spec.mode == WriteMode.UPSERT:
            stage, table = _shared(self._stage), shared_name(self.database, self.table)
            if spec.strategy == ConflictStrategy.FAIL:
                plan.per_batch.append(sql.existing_keys(DIALECT, stage, table, spec.key))
            elif spec.strategy != ConflictStrategy.SKIP:
                plan.per_batch.append(sql.count_existing(DIALECT, stage, table, spec.key))
            plan.per_batch.append(sql.upsert_from_stage(DIALECT, stage, table, columns, spec.key, spec.strategy))
        plan.per_batch.append(f"INSERT INTO {quote(CHECKPOINT_TABLE)} ... ON DUPLICATE KEY UPDATE  -- the checkpoint, "
                              "same transaction")
        if spec.mode == WriteMode.REPLACE:
            swap = self._swap_statements(self.table_info() is not None)
            plan.per_batch.append("-- once, after the last batch: " + "; ".join(swap))

    # --- preparing ---------------------------------------------------------------------------

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._require_table()
        info = self.table_info()
        new, old = side_name(self.table, NEW_SUFFIX), side_name(self.table, OLD_SUFFIX)
        with self._cursor(f"preparing {self.description}") as cur:
            new_exists = spec.mode == WriteMode.REPLACE and bool(catalog.columns(cur, self.database, new, False))
            # Checkpoints were committed but the replacement is gone: the swap already happened,
            # after every batch was in. Nothing is left to load or to swap, only the old table to
            # drop if the run stopped between the RENAME and the DROP.
            swapped = spec.mode == WriteMode.REPLACE and resuming and not new_exists
            if swapped:
                statements = [f"DROP TABLE IF EXISTS {self._sql(old)}"]
            else:
                statements = self._ddl(schema, spec, info, resuming, new_exists)
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {self._sql(CHECKPOINT_TABLE)} (run_id VARCHAR(64) NOT NULL, "
                "`partition` VARCHAR(191) NOT NULL, checkpoint LONGTEXT NOT NULL, state LONGTEXT NOT NULL, "
                "updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (run_id, `partition`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )
            for statement in statements:
                execute(cur, statement)
        self._mode = spec.mode
        # A duplicate-key refusal names the key, not its columns: a one-column primary key is named.
        self._primary_key = tuple(info.primary_key) if info is not None else tuple(spec.key)
        self._swap = spec.mode == WriteMode.REPLACE and not swapped
        self._target = new if self._swap else self.table

    def _ensure_stage(self, conn: Any) -> None:
        """The upsert staging table of this connection, made before its first transaction."""
        if self._mode != WriteMode.UPSERT or self._staged.get(conn):
            return
        with conn.cursor() as cur:
            execute(cur, f"DROP TEMPORARY TABLE IF EXISTS {quote(self._stage)}")
            execute(cur, f"CREATE TEMPORARY TABLE {quote(self._stage)} LIKE {self._sql(self.table)}")
        self._staged[conn] = True

    # --- writing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        import pymysql

        with self._connections().connection() as conn:
            try:
                self._ensure_stage(conn)
                conn.begin()
            except pymysql.MySQLError as exc:
                raise self.server.error(exc, f"starting a transaction on {self.description}") from exc
            try:
                yield Tx(conn)
            except BaseException:
                try:
                    conn.rollback()
                except Exception:  # noqa: BLE001 - the connection broke; the server rolls back on its own
                    close_quietly(conn)
                raise
            try:
                conn.commit()
            except pymysql.MySQLError as exc:
                raise self.server.error(exc, f"committing to {self.description}") from exc

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Tx) -> WriteResult:
        import pymysql

        rows = batch.num_rows
        with tx.lock:
            try:
                with tx.conn.cursor() as cur:
                    if spec.mode != WriteMode.UPSERT:
                        self._load(cur, self._target, batch)
                        return WriteResult(inserted=rows)
                    return self._upsert(cur, batch, spec)
            except RowRefused as refused:
                raise name_primary_key(refused, self._primary_key)
            except PortlError:
                raise
            except pymysql.MySQLError as exc:
                what = f"writing to {self.description}"
                message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                refused = refusal(errno_of(exc), message, what)
                if refused is not None:  # the rows' fault: the engine rejects them and loads the others
                    raise name_primary_key(refused, self._primary_key) from exc
                raise self.server.error(exc, what) from exc

    @contextmanager
    def savepoint(self, tx: Tx) -> Iterator[None]:
        """A savepoint in the batch's transaction; an error inside rolls back to it (a LOAD DATA
        that stored changed values and warned is undone too)."""
        name = f"portl_{next(self._savepoints)}"
        self._statement(tx, f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._statement(tx, f"ROLLBACK TO SAVEPOINT {name}")
            self._statement(tx, f"RELEASE SAVEPOINT {name}")  # off the stack: a batch of bad rows sets thousands
            raise
        self._statement(tx, f"RELEASE SAVEPOINT {name}")

    def _statement(self, tx: Tx, statement: str) -> None:
        import pymysql

        with tx.lock:
            try:
                with tx.conn.cursor() as cur:
                    execute(cur, statement)
            except pymysql.MySQLError as exc:
                raise self.server.error(exc, f"writing to {self.description}") from exc

    def _load(self, cur: Any, table: str, batch: pa.RecordBatch, table_sql: str | None = None) -> None:
        what = f"writing to {self.description}"
        batch, changed = finite_floats(batch)
        self._non_finite.update(changed)
        table_sql = table_sql or self._sql(table)
        if self._use_load_data:
            try:
                load_batch(cur, table_sql, batch, what)
                return
            except Exception as exc:  # the server or the driver may still refuse LOCAL INFILE
                if errno_of(exc) not in LOCAL_INFILE_REFUSED:
                    raise
                self._use_load_data = False
        insert_batch(cur, table_sql, batch, what, self._facts.max_allowed_packet)

    def _load_stage(self, cur: Any, batch: pa.RecordBatch) -> None:
        """Into the connection's temporary staging table, named without a database."""
        self._load(cur, self._stage, batch, quote(self._stage))

    def _upsert(self, cur: Any, batch: pa.RecordBatch, spec: WriteSpec) -> WriteResult:
        rows = batch.num_rows
        stage, table = _shared(self._stage), shared_name(self.database, self.table)
        execute(cur, f"DELETE FROM {quote(self._stage)}")
        self._load_stage(cur, batch)
        existing = 0
        if spec.strategy == ConflictStrategy.FAIL:
            execute(cur, sql.existing_keys(DIALECT, stage, table, spec.key))
            keys = [tuple(_key_value(v, batch.schema.field(k)) for v, k in zip(row, spec.key)) for row in cur.fetchall()]
            if keys:
                raise ConflictError(self.table, list(spec.key), keys)
        elif spec.strategy != ConflictStrategy.SKIP:
            execute(cur, sql.count_existing(DIALECT, stage, table, spec.key))
            existing = int(cur.fetchone()[0])
        affected = execute(cur, sql.upsert_from_stage(DIALECT, stage, table, batch.schema.names, spec.key, spec.strategy))
        if spec.strategy == ConflictStrategy.SKIP:
            # "= key" changes nothing, so MySQL counts 1 per inserted row and 0 per existing one.
            return WriteResult(inserted=affected, skipped=rows - affected)
        return WriteResult(inserted=rows - existing, updated=existing)

    # --- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, tx: Tx, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        import pymysql

        values = (run_id, checkpoint.partition, json.dumps(checkpoint.to_json()), json.dumps(state),
                  time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        with tx.lock:
            try:
                with tx.conn.cursor() as cur:
                    execute(cur, f"INSERT INTO {self._sql(CHECKPOINT_TABLE)} (run_id, `partition`, checkpoint, state, "
                                 "updated_at) SELECT * FROM (SELECT %s AS a, %s AS b, %s AS c, %s AS d, %s AS e) AS s "
                                 "ON DUPLICATE KEY UPDATE checkpoint = s.c, state = s.d, updated_at = s.e", values)
            except pymysql.MySQLError as exc:
                raise self.server.error(exc, f"saving the checkpoint in {self.description}") from exc

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        import pymysql

        out = {}
        with self._connections().connection() as conn, conn.cursor() as cur:
            try:
                execute(cur, f"SELECT checkpoint, state FROM {self._sql(CHECKPOINT_TABLE)} WHERE run_id = %s", (run_id,))
            except pymysql.MySQLError as exc:
                if errno_of(exc) == 1146:
                    return {}  # no checkpoint table: nothing was ever committed here
                raise self.server.error(exc, f"reading checkpoints from {self.description}") from exc
            for checkpoint, state in cur.fetchall():
                cp = Checkpoint.from_json(json.loads(checkpoint))
                out[cp.partition] = (cp, json.loads(state))
        return out

    def job_checkpoints(self, job: str) -> dict[str, dict[str, tuple[Checkpoint, dict[str, Any]]]]:
        """Every run of ``job`` whose checkpoints this database holds, by run id."""
        import pymysql

        with self._connections().connection() as conn, conn.cursor() as cur:
            try:
                execute(cur, f"SELECT run_id, checkpoint, state FROM {self._sql(CHECKPOINT_TABLE)} "
                             "WHERE JSON_UNQUOTE(JSON_EXTRACT(state, '$.job')) = %s", (job,))
            except pymysql.MySQLError as exc:
                if errno_of(exc) == 1146:
                    return {}  # no checkpoint table: nothing was ever committed here
                raise self.server.error(exc, f"reading checkpoints from {self.description}") from exc
            rows = cur.fetchall()
        return group_checkpoints((run_id, json.loads(cp), json.loads(state)) for run_id, cp, state in rows)

    def forget_run(self, run_id: str) -> None:
        import pymysql

        with self._connections().connection() as conn, conn.cursor() as cur:
            try:
                execute(cur, f"DELETE FROM {self._sql(CHECKPOINT_TABLE)} WHERE run_id = %s", (run_id,))
            except pymysql.MySQLError as exc:
                if errno_of(exc) != 1146:
                    raise self.server.error(exc, f"removing the checkpoints of run {run_id} from {self.description}") from exc

    # --- the end -----------------------------------------------------------------------------

    def finish(self, run_id: str) -> None:
        if not self._swap:
            return
        exists = self.table_info() is not None
        with self._cursor(f"swapping the new rows into {self.description}") as cur:
            for statement in self._swap_statements(exists):
                execute(cur, statement)
        self._swap, self._target = False, self.table

    def warnings(self) -> list[str]:
        """What the writes changed on the way, for the run report: NaN and infinities stored as NULL."""
        return [f"NaN or infinite values became NULL in column {name}: MySQL's DOUBLE cannot hold them"
                for name in sorted(self._non_finite)]

    # read-only queries (quality checks: QueryableSink)

    dialect_name = "MySQL"

    def loaded_table(self) -> str:
        self._require_table()
        return self._sql(self._target)

    def quote(self, name: str) -> str:
        return DIALECT.table(name)

    def query(self, statement: str, tx: Tx | None = None, limit: int = 20) -> QueryResult:
        def run(conn: Any, own: bool) -> QueryResult:
            with conn.cursor() as cur:
                execute(cur, "START TRANSACTION READ ONLY" if own else "SAVEPOINT portl_check")
                try:
                    execute(cur, statement)
                    if cur.description is None:
                        return QueryResult([], [], 0)
                    rows = cur.fetchmany(limit)
                    return QueryResult([d[0] for d in cur.description], [tuple(r) for r in rows],
                                       max(cur.rowcount, len(rows)))
                finally:
                    execute(cur, "ROLLBACK" if own else "ROLLBACK TO SAVEPOINT portl_check")

        try:
            if tx is not None:
                with tx.lock:
                    return run(tx.conn, False)
            with self._connections().connection() as conn:
                return run(conn, True)
        except Exception as exc:
            if errno_of(exc) is None:
                raise
            raise TerminalError(f"{self.description} refused the query: {exc}") from exc

    def count_rows(self) -> int | None:
        self._require_table()
        with self._connections().connection() as conn, conn.cursor() as cur:
            try:
                execute(cur, f"SELECT COUNT(*) FROM {self._sql(self._target)}")
            except Exception as exc:
                if errno_of(exc) == 1146:
                    return 0
                raise self.server.error(exc, f"counting the rows of {self.description}") from exc
            return int(cur.fetchone()[0])

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._owns_pool:
            pool.close()

    # --- whole-database copies -----------------------------------------------------------------

    def table_sink(self, name: str) -> MysqlSink:
        """The sink of one table of a copy, sharing this server's settings."""
        return MysqlSink(self.config, self.base_dir, self.server, quote(name) if "." in name else name,
                         pool=self._connections())

    @property
    def notes(self) -> list[str]:
        """What a copy's statements rename or leave out, and why, for the plan's warnings."""
        return [note for step in self._copy_notes.values() for note in step]

    def table_ddl(self, table: TableDef) -> list[str]:
        """``CREATE TABLE`` of a copied table, without keys (:mod:`.tables`)."""
        statement, notes = tables.create_table(self.database, table, key_columns([table]).get(table.name, set()))
        self._copy_notes["tables"] += notes
        return [statement]

    def drop_ddl(self, dropped: list[TableDef]) -> list[str]:
        """Dropping tables the copy makes again: foreign key checks off for that session, since
        the copy adds its foreign keys again."""
        names = ", ".join(qualified(self.database, t.name) for t in dropped)
        return ["SET SESSION foreign_key_checks = 0", f"DROP TABLE IF EXISTS {names}", "SET SESSION foreign_key_checks = 1"]

    def view_ddl(self, views: list[ViewDef], copied: list[TableDef]) -> list[str]:
        statements, self._copy_notes["views"] = tables.create_views(self.database, views, copied)
        return statements

    def constraint_ddl(self, tables: list[TableDef], absent: frozenset[str] = frozenset()) -> list[str]:
        """Keys, CHECKs, indexes, foreign keys and AUTO_INCREMENT, once the data of every table is
        in: what the destination's catalog says is missing (tables in ``absent``, dropped first,
        have nothing), each table, index and foreign key on its own, so that a copy whose last
        step stopped partway adds the rest when it resumes."""
        with self._cursor(f"reading the tables of {self.description}") as cur:
            present = {name: keys for name, keys in catalog.keys_of_tables(cur, self.database).items()
                       if name not in absent}
        self._copy_notes["constraints"] = constraint_notes(self.database, tables, present)
        return constraint_statements(self.database, tables, present)

    def execute_ddl(self, statements: list[str]) -> None:
        """Run the statements one by one; one whose key, index or constraint has appeared since the
        plan read the catalog (another run of the copy) is skipped."""
        import pymysql

        with self._connections().connection() as conn, conn.cursor() as cur:
            for statement in statements:
                try:
                    execute(cur, statement)
                except pymysql.MySQLError as exc:
                    if tolerated(exc):
                        continue
                    raise self.server.error(exc, f"adding keys and constraints to {self.description} ({statement})") from exc


def _shared(name: str) -> str:
    """An unqualified name for the shared statement builders, dots inside kept."""
    return '"' + name.replace('"', '""') + '"'


def _key_value(value: Any, field: pa.Field) -> Any:
    """A key read back from MySQL (as text) in the batch's own type, for the conflict report."""
    if value is None:
        return None
    try:
        return pa.array([value], pa.string()).cast(field.type)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return value
