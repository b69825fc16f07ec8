"""Writing Snowflake: each batch becomes a gzip CSV file (:mod:`csvparts`), sent with ``PUT`` to
a temporary stage of the session and loaded with ``COPY INTO`` (its FILE_FORMAT written inline,
``ON_ERROR = ABORT_STATEMENT``), with its checkpoint row in ``_portl_checkpoints`` in the SAME
transaction::

    PUT 'file://…/part.csv.gz' @PORTL_STAGE_…/b7_…/ AUTO_COMPRESS = FALSE
    BEGIN; COPY INTO "t" FROM @PORTL_STAGE_…/b7_…/ …; DELETE/INSERT the checkpoint; COMMIT

- ``append`` copies into the table; a batch with JSON or bytes goes through the staging table
  below, where they are text, and one ``INSERT … SELECT`` converts them (:data:`staging.CONVERTED`).
- ``upsert`` copies into a temporary staging table, then runs ONE ``MERGE`` on the key (Snowflake
  does not enforce keys: the MERGE's match is what finds an existing row); ``fail`` looks for
  existing keys first and rolls the batch back when there are some.
- ``replace`` loads ``<table>__portl_new`` and swaps it in when the run finishes (:mod:`replace`).

Every DDL statement commits by itself on Snowflake, so the stage and the staging table are
created before the batch's transaction begins, once per session. A COPY the server refuses (a
value a column does not take) fails the batch with the server's file, line and column, and its
transaction rolls back: nothing of the batch is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pyarrow as pa
from snowflake.connector import errors as sf_errors

from portl.connectors.base import (
    Capabilities, Checkpoint, ColumnInfo, ConflictStrategy, QueryResult, TableInfo, TargetPlan, WriteMode, WriteResult, WriteSpec,
    group_checkpoints,
)
from portl.connectors.snowflake import csvparts, replace, staging
from portl.connectors.snowflake.config import Config
from portl.connectors.snowflake.connection import TableName, connect, existing_name, translate
from portl.connectors.snowflake.typemap import DIALECT, logical_of_declared
from portl.connectors.sql import dialect as sql
from portl.errors import ConflictError, TerminalError, TransientError
from portl.plural import counted
from portl.types import LogicalType, arrow_type, logical_of

CHECKPOINT_TABLE = "_portl_checkpoints"
SWAPPED = "(replace: swapped)"  # the checkpoint row that records a finished swap
COPY_OPTIONS = "ON_ERROR = ABORT_STATEMENT PURGE = TRUE"
STAGED = "@PORTL_STAGE_…/<batch>/"  # where a batch's file goes, as the plan shows it
CHECKPOINT_DDL = ("CREATE TABLE IF NOT EXISTS {table} (run_id VARCHAR NOT NULL, partition VARCHAR NOT NULL, job VARCHAR, "
                  "checkpoint VARCHAR NOT NULL, state VARCHAR NOT NULL, updated_at TIMESTAMP_TZ, "
                  "PRIMARY KEY (run_id, partition))")


class Session:
    """The writers' session: its connection, its temporary stage and staging table."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.stage = "PORTL_STAGE_" + uuid.uuid4().hex[:12].upper()
        self.staging: str | None = None
        self.merge = True  # MERGE runs inside a transaction (see staging.merge_works)
        self.ready = False
        self.batches = 0


class SnowflakeSink:
    """Writes batches into one Snowflake table."""

    capabilities = Capabilities(
        modes=frozenset(WriteMode),
        upsert_strategies=frozenset(ConflictStrategy),
        transactional=True,
        resumable=True,
        concurrent_writers=1,
        alters_tables=True,
        keeps_runs=True,
        bulk_method="PUT of a gzip CSV file to a temporary stage, then COPY INTO (MERGE from a staging table for "
                    "upserts), one transaction per batch",
    )

    def __init__(self, config: Config, base_dir: str):
        if config.query:
            raise TerminalError(f"Snowflake destination {config.describe()}: takes 'table', not 'query'")
        given = [key for key in ("order_by", "incremental") if getattr(config, key)]
        if given:
            raise TerminalError(f"Snowflake destination {config.describe()}: {' and '.join(given)} "
                                f"{'is a source option' if len(given) == 1 else 'are source options'}: remove "
                                f"{'it' if len(given) == 1 else 'them'} from the destination")
        if not config.table:
            raise TerminalError(f"Snowflake destination {config.describe()}: 'table' is required")
        self.config, self.base_dir = config, base_dir
        self.description = config.describe()
        self.conn = connect(config, base_dir)  # for DDL, checkpoints and counts; batches use the writer's session
        self._writer: Session | None = None
        self._folder = tempfile.mkdtemp(prefix="portl-snowflake-")
        wanted = TableName.parse(config.table)
        try:
            with self.conn.cursor() as cur:
                self.table = existing_name(cur, wanted) or wanted
        except sf_errors.Error as exc:
            self.close()
            raise translate(exc, f"looking for {self.description}") from exc
        self.new = self.table.sibling(self.table.name + replace.NEW)
        self.checkpoints = self.table.sibling(CHECKPOINT_TABLE)
        self._target = self.table
        self._replacing = self._swapped = False
        self._names: dict[str, str] = {}  # a batch's column -> the table's (case told apart only when it must)
        self._order: list[str] = []  # the target's columns, in order
        self._converted: dict[str, str] = {}  # the target's VARIANT and BINARY columns, staged as text
        self._spec: WriteSpec | None = None
        self._warnings: list[str] = []

    # introspection and planning

    def table_info(self) -> TableInfo | None:
        with self.conn.cursor() as cur:
            try:
                return self._info(cur, self.table)
            except sf_errors.Error as exc:
                raise translate(exc, f"describing {self.description}") from exc

    def _info(self, cur: Any, table: TableName) -> TableInfo | None:
        where = "table_schema = %s" if table.schema else "table_schema = CURRENT_SCHEMA()"
        params = (table.schema.split(".")[-1], table.name) if table.schema else (table.name,)
        cur.execute("SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable "
                    f"FROM information_schema.columns WHERE {where} AND table_name = %s ORDER BY ordinal_position",
                    params)
        rows = cur.fetchall()
        if not rows:
            return None
        columns = []
        for name, declared, precision, scale, nullable in rows:
            logical = logical_of_declared(declared, precision, scale)
            columns.append(ColumnInfo(name, arrow_type(logical), declared, nullable == "YES"))
        return TableInfo(table.name, columns)

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        with self.conn.cursor() as cur:
            try:
                ddl, info = self._ddl(cur, schema, spec, resuming=False)
            except sf_errors.Error as exc:
                raise translate(exc, f"planning {self.description}") from exc
        names = _names(schema.names, info)
        columns = [names[c] for c in schema.names]
        target = self.new if spec.mode == WriteMode.REPLACE else self.table
        plan = TargetPlan(target=f"snowflake {self.config.location()} table {self.table}",
                          ddl=[*ddl, CHECKPOINT_DDL.format(table=self.checkpoints.sql),
                               "CREATE TEMPORARY STAGE IF NOT EXISTS PORTL_STAGE_…"])
        plan.per_batch.append(f"PUT 'file://<batch>.csv.gz' {STAGED} AUTO_COMPRESS = FALSE OVERWRITE = TRUE  "
                              "-- the batch as gzip CSV")
        plan.per_batch.append("BEGIN")
        order = [c.name for c in info.columns] if info is not None and spec.mode != WriteMode.REPLACE else columns
        converted = staging.converted_columns(info, schema, names)
        if spec.mode == WriteMode.UPSERT or set(converted) & set(columns):
            stage = staging.staging_name(self.table)
            plan.ddl.append(staging.staging_ddl(stage, columns, target, converted))
            plan.per_batch += [f"DELETE FROM {stage}", _copy_sql(stage, columns, columns, STAGED)]
        if spec.mode == WriteMode.UPSERT:
            key = [names.get(k, k) for k in spec.key]
            if spec.strategy == ConflictStrategy.FAIL:
                plan.per_batch.append(sql.existing_keys(DIALECT, stage, self.table.sql, key))
            plan.per_batch += staging.statements(stage, self.table.sql, columns, key, spec.strategy, converted=converted)
        elif set(converted) & set(columns):
            plan.per_batch.append(staging.insert_converted(target.sql, stage, columns, converted))
        else:
            plan.per_batch.append(_copy_sql(target.sql, columns, order, STAGED))
        plan.per_batch.append(f"DELETE FROM {self.checkpoints.sql} WHERE run_id = … AND partition = …; "
                              f"INSERT INTO {self.checkpoints.sql} …  -- the checkpoint")
        plan.per_batch.append("COMMIT")
        if spec.mode == WriteMode.REPLACE:
            swap = replace.statements(self.table, self.new, info is not None)
            plan.per_batch.append("-- once, after the last batch: " + "; ".join(swap))
        return plan

    def _ddl(self, cur: Any, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> tuple[list[str], TableInfo | None]:
        """The statements that make the table ready, and the table as it is now."""
        ddl: list[str] = []
        info = self._info(cur, self.table)
        target = self.table
        if spec.mode == WriteMode.REPLACE:
            target = self.new
            kept = self._info(cur, self.new) if resuming else None
            if kept is not None:
                info = kept
            else:
                ddl.append(f"DROP TABLE IF EXISTS {self.new.sql}")
                if info is not None:
                    ddl.append(f"CREATE TABLE {self.new.sql} LIKE {self.table.sql}")
                else:
                    ddl.append(sql.create_table(DIALECT, self.new.sql, _columns(schema)))
        elif info is None:
            key = spec.key if spec.mode == WriteMode.UPSERT else ()
            ddl.append(sql.create_table(DIALECT, self.table.sql, _columns(schema), key))
        if info is not None:
            names = _names(schema.names, info)
            for f in schema:
                if info.column(names[f.name]) is None:
                    ddl.append(sql.add_column(DIALECT, target.sql, f.name, logical_of(f)))
        return ddl, info

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._replacing = spec.mode == WriteMode.REPLACE
        self._target = self.new if self._replacing else self.table
        self._spec = spec
        if self._replacing and self._swapped and resuming:
            return  # the run being resumed already swapped its table in; only finishing is left
        self._swapped = False
        with self.conn.cursor() as cur:
            try:
                ddl, _ = self._ddl(cur, schema, spec, resuming)
                for statement in ddl:
                    cur.execute(statement)
                cur.execute(CHECKPOINT_DDL.format(table=self.checkpoints.sql))
                info = self._info(cur, self._target)
                if self._replacing and self._info(cur, self.table) is not None and not replace.can_swap(cur, self.new):
                    self._warnings.append(replace.NOT_ATOMIC.format(table=self.table))
            except sf_errors.Error as exc:
                raise translate(exc, f"preparing {self.description}") from exc
        self._names = _names(schema.names, info)
        self._order = [c.name for c in info.columns] if info is not None else list(schema.names)
        self._converted = staging.converted_columns(info, schema, self._names)

    # writing

    def _session(self) -> Session:
        if self._writer is None:
            self._writer = Session(connect(self.config, self.base_dir))
        session = self._writer
        if not session.ready:  # DDL commits by itself: done before the first transaction
            with session.conn.cursor() as cur:
                try:
                    cur.execute(f"CREATE TEMPORARY STAGE IF NOT EXISTS {session.stage}")
                    names = list(self._names.values())
                    upserting = self._spec is not None and self._spec.mode == WriteMode.UPSERT
                    if upserting or set(self._converted) & set(names):
                        session.staging = staging.staging_name(self.table)
                        cur.execute(staging.staging_ddl(session.staging, names, self._target, self._converted))
                    if upserting:
                        key = [self._names.get(k, k) for k in self._spec.key]
                        session.merge = staging.merge_works(cur, session.staging, self.table.sql, names, key,
                                                           self._converted)
                        if not session.merge:
                            self._warnings.append(staging.NO_MERGE.format(table=self.table))
                except sf_errors.Error as exc:
                    raise translate(exc, f"creating the temporary stage of {self.description}") from exc
            session.ready = True
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """BEGIN … COMMIT on the writers' session; a failure rolls back. After a failure worth
        retrying the session is dropped, so that the retry logs in again."""
        session = self._session()
        cur = session.conn.cursor()
        try:
            _run(cur, "BEGIN", f"beginning a batch's transaction on {self.description}")
            try:
                yield session
            except BaseException:
                with suppress(sf_errors.Error):  # the error that got here says what went wrong
                    cur.execute("ROLLBACK")
                raise
            _run(cur, "COMMIT", f"committing a batch to {self.description}")
        except TransientError:
            self._drop_writer()
            raise
        finally:
            with suppress(sf_errors.Error):
                cur.close()

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with suppress(sf_errors.Error):
                writer.conn.close()

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: Session) -> WriteResult:
        columns = [self._names.get(c, c) for c in batch.schema.names]
        tx.batches += 1
        folder = f"b{tx.batches}_{uuid.uuid4().hex[:8]}"
        null = csvparts.null_marker(batch)
        with tx.conn.cursor() as cur:
            self._put(cur, tx, folder, csvparts.encode(batch, null))
            if spec.mode != WriteMode.UPSERT and not set(self._converted) & set(columns):
                loaded = self._copy(cur, _copy_sql(self._target.sql, columns, self._order, f"@{tx.stage}/{folder}/",
                                                   null), self._target, folder)
                self._check_loaded(loaded, batch.num_rows)
                return WriteResult(inserted=loaded)
            try:
                cur.execute(f"DELETE FROM {tx.staging}")
            except sf_errors.Error as exc:
                raise translate(exc, f"emptying the staging table of {self.description}") from exc
            loaded = self._copy(cur, _copy_sql(tx.staging, columns, columns, f"@{tx.stage}/{folder}/", null),
                                self._target, folder)
            self._check_loaded(loaded, batch.num_rows)
            if spec.mode != WriteMode.UPSERT:  # the text becomes VARIANT / BINARY on its way to the table
                try:
                    cur.execute(staging.insert_converted(self._target.sql, tx.staging, columns, self._converted))
                except sf_errors.Error as exc:
                    raise translate(exc, f"writing a batch to {self.description}") from exc
                self._check_loaded(cur.rowcount or 0, batch.num_rows)
                return WriteResult(inserted=batch.num_rows)
            key = [self._names.get(k, k) for k in spec.key]
            try:
                if spec.strategy == ConflictStrategy.FAIL:
                    cur.execute(sql.existing_keys(DIALECT, tx.staging, self.table.sql, key))
                    keys = cur.fetchall()
                    if keys:
                        raise ConflictError(str(self.table), list(spec.key), [tuple(k) for k in keys])
                inserted, updated = staging.run(cur, tx.staging, self.table.sql, columns, key, spec.strategy, tx.merge,
                                               self._converted)
            except sf_errors.Error as exc:
                raise translate(exc, f"merging a batch into {self.description}") from exc
        untouched = batch.num_rows - inserted - updated  # rows whose key exists, left as they are
        if spec.strategy in (ConflictStrategy.SKIP, ConflictStrategy.FAIL):
            return WriteResult(inserted=inserted, skipped=untouched)
        return WriteResult(inserted=inserted, updated=updated + untouched)

    def _put(self, cur: Any, tx: Session, folder: str, data: bytes) -> None:
        """Send one batch's file to the session's stage, under a folder of its own."""
        path = os.path.join(self._folder, f"{folder}.csv.gz")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            cur.execute(f"PUT 'file://{path}' @{tx.stage}/{folder}/ AUTO_COMPRESS = FALSE OVERWRITE = TRUE")
            status = cur.fetchone()
        except sf_errors.Error as exc:
            raise translate(exc, f"uploading a batch for {self.description} to the stage") from exc
        finally:
            os.remove(path)
        if status is not None and str(status[6]).upper() not in ("UPLOADED", "SKIPPED"):
            raise TerminalError(f"uploading a batch for {self.description}: PUT answered {status[6]} {status[7]}")

    def _copy(self, cur: Any, statement: str, table: TableName, folder: str) -> int:
        """Run a COPY; the rows it loaded. A refusal names the table, the file and where in it."""
        try:
            cur.execute(statement)
            results = cur.fetchall()
        except sf_errors.Error as exc:
            error = translate(exc, "")
            if isinstance(error, TerminalError):
                raise TerminalError(f"COPY INTO {table} refused the batch in file {folder}.csv.gz:{str(error)[1:]} "
                                    "(line N of the file is row N of the batch, which has no header; the batch's "
                                    "transaction was rolled back: nothing of it was written)") from exc
            raise error from exc
        names = [d.name.lower() for d in cur.description]
        at = names.index("rows_loaded") if "rows_loaded" in names else None
        if at is None:  # "Copy executed with 0 files processed."
            return 0
        return sum(int(row[at] or 0) for row in results)

    def _check_loaded(self, loaded: int, rows: int) -> None:
        if loaded != rows:  # the row accounting rests on it: never trust a count blindly
            raise TerminalError(f"writing to {self.description}: COPY loaded {counted(loaded, 'row')} of a batch of {rows}")

    # checkpoints

    def save_checkpoint(self, tx: Session, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        with tx.conn.cursor() as cur:
            try:
                _save(cur, self.checkpoints, run_id, checkpoint.partition, checkpoint.to_json(), state)
            except sf_errors.Error as exc:
                raise translate(exc, f"saving a checkpoint in {self.checkpoints}") from exc

    def _checkpoint_rows(self, where: str, params: tuple) -> list[tuple]:
        with self.conn.cursor() as cur:
            try:
                if self._info(cur, self.checkpoints) is None:
                    return []
                cur.execute(f"SELECT run_id, partition, checkpoint, state FROM {self.checkpoints.sql} WHERE {where}",
                            params)
                return cur.fetchall()
            except sf_errors.Error as exc:
                raise translate(exc, f"reading checkpoints from {self.checkpoints}") from exc

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        out = {}
        for _, partition, checkpoint, state in self._checkpoint_rows("run_id = %s", (run_id,)):
            if partition == SWAPPED:
                self._swapped = True
                continue
            cp = Checkpoint.from_json(json.loads(checkpoint))
            out[cp.partition] = (cp, json.loads(state))
        return out

    def job_checkpoints(self, job: str) -> dict[str, dict[str, tuple[Checkpoint, dict[str, Any]]]]:
        rows = self._checkpoint_rows("job = %s", (job,))
        return group_checkpoints((run_id, json.loads(checkpoint), json.loads(state))
                                 for run_id, partition, checkpoint, state in rows if partition != SWAPPED)

    def forget_run(self, run_id: str) -> None:
        with self.conn.cursor() as cur:
            try:
                if self._info(cur, self.checkpoints) is not None:
                    cur.execute(f"DELETE FROM {self.checkpoints.sql} WHERE run_id = %s", (run_id,))
            except sf_errors.Error as exc:
                raise translate(exc, f"removing the checkpoints of run {run_id} from {self.checkpoints}") from exc

    def finish(self, run_id: str) -> None:
        if not self._replacing or self._swapped:
            return
        with self.conn.cursor() as cur:
            try:
                replace.swap(cur, self.table, self.new, run_id)
                _save(cur, self.checkpoints, run_id, SWAPPED, {}, {})
            except sf_errors.Error as exc:
                raise translate(exc, f"swapping the loaded table {self.new} in for {self.table}") from exc
        self._swapped = True

    def warnings(self) -> list[str]:
        return list(self._warnings)

    # read-only queries (quality checks: QueryableSink)

    dialect_name = "Snowflake"

    def loaded_table(self) -> str:
        return (self.new if self._replacing and not self._swapped else self.table).sql

    def quote(self, name: str) -> str:
        return DIALECT.table(name)

    def query(self, statement: str, tx: Session | None = None, limit: int = 20) -> QueryResult:
        """In the job's transaction when given (Snowflake has no savepoints: the query must not
        write), else on the writers' session between batches."""
        session = tx if tx is not None else self._session()
        with session.conn.cursor() as cur:
            try:
                cur.execute(statement)
                if cur.description is None:
                    return QueryResult([], [], 0)
                rows = cur.fetchmany(limit)
                total = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else len(rows)
                return QueryResult([d[0] for d in cur.description], [tuple(r) for r in rows], max(total, len(rows)))
            except sf_errors.Error as exc:
                raise TerminalError(f"{self.description} refused the query: {exc}") from exc

    def count_rows(self) -> int | None:
        table = self.new if self._replacing and not self._swapped else self.table
        with self.conn.cursor() as cur:
            try:
                if self._info(cur, table) is None:
                    return 0
                cur.execute(f"SELECT count(*) FROM {table.sql}")
                return cur.fetchone()[0]
            except sf_errors.Error as exc:
                raise translate(exc, f"counting the rows of {table}") from exc

    def close(self) -> None:
        """Log out; the sessions' temporary stage and staging table go with them."""
        if getattr(self, "_writer", None) is not None:
            self._drop_writer()
        conn = getattr(self, "conn", None)
        if conn is not None:
            with suppress(sf_errors.Error):
                conn.close()
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)


def _run(cur: Any, statement: str, doing: str) -> None:
    try:
        cur.execute(statement)
    except sf_errors.Error as exc:
        raise translate(exc, doing) from exc


def _save(cur: Any, table: TableName, run_id: str, partition: str, checkpoint: dict, state: dict) -> None:
    cur.execute(f"DELETE FROM {table.sql} WHERE run_id = %s AND partition = %s", (run_id, partition))
    cur.execute(f"INSERT INTO {table.sql} (run_id, partition, job, checkpoint, state, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, CURRENT_TIMESTAMP())",
                (run_id, partition, state.get("job"), json.dumps(checkpoint), json.dumps(state)))


def _copy_sql(table: str, columns: list[str], order: list[str], location: str, null: str = csvparts.NULL) -> str:
    """``COPY INTO`` a table from a stage folder; the column list only when the file's columns are
    not the table's, in its order."""
    listed = "" if list(columns) == list(order) else f" ({DIALECT.column_list(columns)})"
    return f"COPY INTO {table}{listed} FROM {location} FILE_FORMAT = ({csvparts.file_format(null)}) {COPY_OPTIONS}"


def _names(columns: list[str], info: TableInfo | None) -> dict[str, str]:
    """Each batch column's name in the table: itself, else the one column equal to it but for
    case (``id`` → ``ID``, a column created without quotes)."""
    out = {}
    existing = [c.name for c in info.columns] if info is not None else []
    for name in columns:
        if name in existing:
            out[name] = name
            continue
        folded = [e for e in existing if e.casefold() == name.casefold()]
        out[name] = folded[0] if len(folded) == 1 else name
    return out


def _columns(schema: pa.Schema) -> list[tuple[str, LogicalType, bool]]:
    return [(f.name, logical_of(f), True) for f in schema]

