"""Reading Postgres: a table or a query streamed with ``COPY (SELECT …) TO STDOUT``, and whole
schemas described as a catalog for database copies.

A table with a one-column integer primary key is read in key order and resumes by key
(``WHERE id > last``); ``partitions(n)`` splits its key range. Any other table or query resumes by
row count (``OFFSET``) in one partition. COPY sends one message per row; rows are gathered into
blocks of ``batch_rows`` and each block is parsed by Arrow's CSV reader with the columns' types,
so memory stays at about one block per reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pyarrow as pa

from portl.connectors.base import Checkpoint, Chunk, Estimate, TableDef
from portl.connectors.postgres import catalog
from portl.connectors.postgres.catalog import TableName
from portl.connectors.postgres.config import Config
from portl.connectors.postgres.connection import connect, translate
from portl.connectors.postgres.copytext import Decoder
from portl.connectors.postgres.typemap import PgColumn, quote_ident
from portl.errors import SourceError

EXACT_COUNT_BELOW_BYTES = 64 * 1024 * 1024  # count(*) on a table this small takes well under a second


class PostgresSource:
    """Reads one table or one query."""

    def __init__(self, config: Config, base_dir: str):
        if not config.table and not config.query:
            raise SourceError(f"PostgreSQL source {config.describe()}: give 'table', 'tables' or 'query'")
        self.config, self.base_dir = config, base_dir
        self.description = f"postgres {config.describe()}"
        self.name = config.describe()
        self.conn = connect(config, base_dir)  # for the catalog; each read opens its own
        self.key: str | None = None
        self.order: list[str] = []
        self.oid: int | None = None
        try:
            if config.table:
                self.table = TableName.parse(config.table, config.schema_)
                self.oid = catalog.table_oid(self.conn, self.table)
                if self.oid is None:
                    raise SourceError(f"table {self.table} does not exist in PostgreSQL database "
                                      f"{config.database_name()} at {config.location()}")
                self.columns = catalog.columns(self.conn, self.oid)
                self.key = catalog.single_integer_key(self.conn, self.oid)
                self.order = catalog.primary_key(self.conn, self.oid)
            else:
                self.query = config.query.strip().rstrip(";")
                cur = self.conn.execute(f"SELECT * FROM ({self.query}) AS q LIMIT 0")
                self.columns = catalog.query_columns(self.conn, cur.description)
        except psycopg.Error as exc:
            error = self._translate(exc, self.conn)
            self.close()
            raise error from exc
        except BaseException:
            self.close()
            raise
        self._schema = pa.schema([c.field for c in self.columns])
        self.notes = [c.note for c in self.columns if c.note]
        if config.table and not self.order:
            self.notes.append(f"table {self.table} has no primary key: it is read in its physical order, and a resumed "
                              "run skips the rows already loaded by count, so the table must not change in between")
        if config.query:
            self.notes.append("a query is read in one partition, in the order it returns rows; a resumed run skips "
                              "the rows already loaded by count (OFFSET), so give the query an ORDER BY on a unique key")

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        """An exact count for a small table; otherwise the planner's estimate (from
        ``pg_class.reltuples`` and the table's current size), which costs nothing to get."""
        try:
            if self.oid is not None:
                kind, size = self.conn.execute("SELECT relkind, pg_relation_size(oid) FROM pg_class WHERE oid = %s",
                                               (self.oid,)).fetchone()
                if kind in ("r", "m") and size < EXACT_COUNT_BELOW_BYTES:
                    (rows,) = self.conn.execute(f"SELECT count(*) FROM {self.table.sql}").fetchone()
                    return Estimate(rows=rows, exact=True)
            query = f"SELECT * FROM {self.table.sql}" if self.oid is not None else self.query
            (plan,) = self.conn.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            return Estimate(rows=int(plan[0]["Plan"]["Plan Rows"]))
        except psycopg.Error:
            return Estimate()  # an estimate is a courtesy; reading will report a real problem

    def partitions(self, count: int) -> list[Checkpoint]:
        whole = [Checkpoint("0", {"after": None, "end": None, "offset": 0})]
        if self.key is None or count <= 1:
            return whole
        q = quote_ident(self.key)
        low, high = self.conn.execute(f"SELECT min({q}), max({q}) FROM {self.table.sql}").fetchone()
        if low is None:
            return whole
        step = max(1, (high - low + 1) // count)
        bounds = [low - 1 + step * i for i in range(count)] + [high]
        return [Checkpoint(str(i), {"after": bounds[i] if i else None, "end": bounds[i + 1] if i < count - 1 else None,
                                    "offset": 0})
                for i in range(count) if i == 0 or bounds[i] < bounds[i + 1]]

    def _select(self, position: dict, conn: psycopg.Connection) -> str:
        """The SELECT a read starts from ``position`` with. The few values in it (a key, an offset)
        are rendered by psycopg's own adapters: COPY takes no bound parameters, and a query that
        contains "%" (LIKE 'a%') must not be scanned for placeholders."""

        def value(v: object) -> str:
            return psycopg.sql.Literal(v).as_string(conn)

        offset = f" OFFSET {value(position.get('offset', 0))}" if position.get("offset") else ""
        if self.config.query:
            names = [c.name for c in self.columns]
            if any(c.rounded for c in self.columns) and len(set(names)) == len(names):
                return f"SELECT {', '.join(_item(c, 'q.') for c in self.columns)} FROM ({self.query}) AS q{offset}"
            return f"SELECT * FROM ({self.query}) AS q{offset}"
        head = f"SELECT {', '.join(_item(c, '') for c in self.columns)} FROM {self.table.sql}"
        if self.key is not None:
            key = quote_ident(self.key)
            where = []
            if position.get("after") is not None:
                where.append(f"{key} > {value(position['after'])}")
            if position.get("end") is not None:
                where.append(f"{key} <= {value(position['end'])}")
            clause = (" WHERE " + " AND ".join(where)) if where else ""
            return f"{head}{clause} ORDER BY {key}"
        order = f" ORDER BY {', '.join(quote_ident(k) for k in self.order)}" if self.order else ""
        return f"{head}{order}{offset}"

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        position, rows_done = dict(start.position), start.rows
        decoder = Decoder(self._schema, self.name, self.key)
        conn = connect(self.config, self.base_dir)  # one connection per reader thread
        try:
            if self.key is None:
                # Without a key, rows come in physical order: a scan that starts where another
                # session's scan is (synchronized seqscans), or a parallel one, would break OFFSET.
                conn.execute("SELECT set_config('synchronize_seqscans', 'off', false), "
                             "set_config('max_parallel_workers_per_gather', '0', false)")
            statement = f"COPY ({self._select(position, conn)}) TO STDOUT (FORMAT csv)"
            with conn.cursor() as cur, cur.copy(statement) as copy:
                block: list = []
                for row in copy:
                    block.append(row)
                    if len(block) >= batch_rows:
                        yield self._chunk(decoder, block, start.partition, position, rows_done)
                        rows_done += len(block)
                        block = []
                if block:
                    yield self._chunk(decoder, block, start.partition, position, rows_done)
        except psycopg.Error as exc:
            raise self._translate(exc, conn) from exc
        finally:
            conn.close()

    def _translate(self, exc: psycopg.Error, conn: psycopg.Connection):
        table = str(self.table) if self.config.table else None
        return translate(exc, f"reading {self.description}", table=table, privilege="SELECT", user=conn.info.user,
                         source=True)

    def _chunk(self, decoder: Decoder, block: list, partition: str, position: dict, rows_done: int) -> Chunk:
        data = b"".join(block)
        decoded = decoder.decode(data, len(block), rows_done + 1)
        position["offset"] = position.get("offset", 0) + len(block)
        if self.key is not None:
            position["after"] = decoded.last_key
        checkpoint = Checkpoint(partition, dict(position), rows_done + len(block))
        return Chunk(decoded.batch, checkpoint, first_record=rows_done + 1, rejects=decoded.rejects, size_bytes=len(data))

    def close(self) -> None:
        self.conn.close()


def _item(column: PgColumn, prefix: str) -> str:
    q = prefix + quote_ident(column.name)
    return f"round({q}, 10) AS {quote_ident(column.name)}" if column.rounded else q


class PostgresCatalog:
    """The tables of a database for a whole-database copy (``tables: "*"``, ``"sales.*"`` or a list)."""

    def __init__(self, config: Config, base_dir: str):
        self.config, self.base_dir = config, base_dir
        self.description = f"postgres {config.describe()}"
        self.name = config.describe()
        self.conn = connect(config, base_dir)
        self.notes: list[str] = []
        try:
            self._names = self._resolve(config.tables)
        except BaseException:
            self.conn.close()
            raise

    def _resolve(self, tables: str | list[str]) -> dict[TableName, str]:
        """Each table to copy, with the name it is known by in this copy: bare when it is in
        ``schema``, else ``schema.table``."""
        if isinstance(tables, str):
            schema = self.config.schema_ if tables == "*" else tables[:-2]
            found = catalog.list_tables(self.conn, schema)
            if not found:
                raise SourceError(f"{self.description}: schema {schema} has no tables")
        else:
            found = [TableName.parse(t, self.config.schema_) for t in tables]
            missing = [str(t) for t in found if catalog.table_oid(self.conn, t) is None]
            if missing:
                raise SourceError(f"{self.description}: no table {', '.join(missing)}")
        return {t: (t.name if t.schema == self.config.schema_ else str(t)) for t in found}

    def tables(self) -> list[TableDef]:
        out = []
        for table, label in self._names.items():
            table_def, notes = catalog.table_def(self.conn, table, label, self._names)
            out.append(table_def)
            self.notes += [n for n in notes if n not in self.notes]
        return out

    def table_source(self, name: str) -> PostgresSource:
        table = TableName.parse(name, self.config.schema_)
        config = self.config.model_copy(update={"tables": None, "table": f"{quote_ident(table.schema)}.{quote_ident(table.name)}"})
        return PostgresSource(config, self.base_dir)

    def close(self) -> None:
        self.conn.close()
