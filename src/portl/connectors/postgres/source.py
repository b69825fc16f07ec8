"""Reading Postgres: a table or a query streamed with ``COPY (SELECT …) TO STDOUT``, and whole
schemas described as a catalog for database copies.

A table with a one-column integer primary key is read in key order and resumes by key
(``WHERE id > last``); ``partitions(n)`` splits its key range. Any other table or query resumes by
row count (``OFFSET``) in one partition. COPY sends one message per row; rows are gathered into
blocks of ``batch_rows`` and each block is parsed by Arrow's CSV reader with the columns' types,
so memory stays at about one block per reader.

Read verbatim (``read_verbatim``), a block is handed over as the CSV text COPY sent, which is the
canonical text of every column's type, unless it holds a value Arrow cannot hold (``NaN`` in a
numeric, an infinite or BC date, a year past 9999): such a block is parsed, as ``read`` does, so
that those rows are rejected the same way. Those values are the only texts of these types that
hold ``NaN``, ``nfinity``, `` BC`` or a five-digit year, which a block is searched for; a block
that holds one is read by Arrow (its numeric, date and timestamp fields only) to know for sure.

Into a Postgres table whose columns have the same types, a table read in key order goes as the rows
of a binary COPY instead (``_read_binary``): neither server writes or parses text. Binary rows
cannot be searched for values Arrow cannot hold, so the read asks the server first, in the same
snapshot, whether the rows it is about to read hold any; if so it is read as text and parsed.
"""

from __future__ import annotations

import csv
import io
import json
import select
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import pq

from portl.connectors.base import (
    Checkpoint, Chunk, Estimate, TableDef, TextFormat, Verbatim, VerbatimOffer, VerbatimRequest, ViewDef,
)
from portl.connectors.closest import table_hint
from portl.connectors.postgres import catalog, copybinary
from portl.connectors.postgres.catalog import TableName
from portl.connectors.postgres.config import Config
from portl.connectors.postgres.connection import connect, translate
from portl.connectors.postgres.copytext import Decoder
from portl.connectors.postgres.typemap import PgColumn, quote_ident
from portl.connectors.sql.incremental import CursorReads
from portl.errors import SourceError
from portl.types import logical_of

EXACT_COUNT_BELOW_BYTES = 64 * 1024 * 1024  # count(*) on a table this small takes well under a second
COPY_FORMAT = TextFormat("csv", ",", '"', "")
_GUARDED = ("decimal", "date", "timestamp", "timestamptz")  # types whose text Arrow may not hold
_SPECIAL = "NaN|nfinity| BC"
# Base types whose binary layout the destination loads as it loads their text (``_read_binary``).
_BINARY = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric", "bool", "text", "varchar", "bpchar",
                     "date", "timestamp", "timestamptz", "json", "jsonb", "bytea", "uuid"})
_BIG_YEAR = "[0-9]{5}-[0-9]{2}-[0-9]{2}"  # a date past 9999


class PostgresSource(CursorReads):
    """Reads one table or one query; with ``incremental``, only the rows of its window
    (:mod:`portl.connectors.sql.incremental`), in every SELECT it makes."""

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
                                      f"{config.database_name()} at {config.location()}"
                                      + table_hint(self.table.name, catalog.relation_names(self.conn, self.table.schema),
                                                   "the database"))
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
                    where = f" WHERE {self._window_condition(self.conn, '')}" if self.window is not None else ""
                    (rows,) = self.conn.execute(f"SELECT count(*) FROM {self.table.sql}{where}").fetchone()
                    return Estimate(rows=rows, exact=True)
            query = f"SELECT * FROM {self.table.sql}" if self.oid is not None else self.query
            if self.window is not None:  # the planner's estimate of the window's rows, read through the index
                query = f"SELECT * FROM ({query}) AS q WHERE {self._window_condition(self.conn, 'q.')}"
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
        where = f" WHERE {self._window_condition(self.conn, '')}" if self.window is not None else ""
        low, high = self.conn.execute(f"SELECT min({q}), max({q}) FROM {self.table.sql}{where}").fetchone()
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
            within = f" WHERE {self._window_condition(conn, 'q.')}" if self.window is not None else ""
            if any(c.rounded for c in self.columns) and len(set(names)) == len(names):
                return f"SELECT {', '.join(_item(c, 'q.') for c in self.columns)} FROM ({self.query}) AS q{within}{offset}"
            return f"SELECT * FROM ({self.query}) AS q{within}{offset}"
        head = f"SELECT {', '.join(_item(c, '') for c in self.columns)} FROM {self.table.sql}"
        if self.key is not None:
            key = quote_ident(self.key)
            where = [self._window_condition(conn, "")] if self.window is not None else []
            if position.get("after") is not None:
                where.append(f"{key} > {value(position['after'])}")
            if position.get("end") is not None:
                where.append(f"{key} <= {value(position['end'])}")
            clause = (" WHERE " + " AND ".join(where)) if where else ""
            return f"{head}{clause} ORDER BY {key}"
        order = f" ORDER BY {', '.join(quote_ident(k) for k in self.order)}" if self.order else ""
        within = f" WHERE {self._window_condition(conn, '')}" if self.window is not None else ""
        return f"{head}{within}{order}{offset}"

    # incremental reads (sql.incremental.CursorReads)

    def _window_condition(self, conn: psycopg.Connection, prefix: str) -> str:
        """The window's condition on the cursor, its values rendered by psycopg (COPY binds none)."""
        return self.window.condition(prefix + quote_ident(self.config.incremental.cursor),
                                     lambda v: psycopg.sql.Literal(v).as_string(conn))

    def quoted_cursor(self) -> str:
        return quote_ident(self.config.incremental.cursor)

    def cursor_maximum(self) -> object:
        """The cursor's largest value now: one query, answered from an index on the cursor when there is one."""
        q = quote_ident(self.config.incremental.cursor)
        relation = self.table.sql if self.config.table else f"({self.query}) AS q"
        try:
            return self.conn.execute(f"SELECT max({q}) FROM {relation}").fetchone()[0]
        except psycopg.Error as exc:
            raise self._translate(exc, self.conn) from exc

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        return self._read(batch_rows, start, False)

    def verbatim_offer(self) -> VerbatimOffer | None:
        """COPY's binary rows for a table read in key order whose column types all have a binary
        layout Portl reads as their text (see ``_BINARY``), else COPY's CSV text, in which every
        column's type writes its canonical text; neither when a column is an unconstrained
        numeric (its values are rounded by the read, and refused past decimal(38,10))."""
        if any(c.rounded for c in self.columns):
            return None
        wire = self._wire_types()
        if wire:
            return VerbatimOffer(TextFormat("pgbinary", "", "", "", wire), own_types=True, also=(COPY_FORMAT,))
        return VerbatimOffer(COPY_FORMAT, own_types=True)

    def _wire_types(self) -> tuple[tuple[str, str, int], ...]:
        if self.key is None or self.oid is None:
            return ()  # a block refused in binary is read again as text by its key range
        types = catalog.base_types(self.conn, self.oid)
        if any(typname not in _BINARY for typname, _ in types.values()):
            return ()
        return tuple((c.name, *types[c.name]) for c in self.columns)

    def read_verbatim(self, batch_rows: int, start: Checkpoint | None, request: VerbatimRequest) -> Iterator[Chunk]:
        if request.types or request.required:
            raise SourceError(f"{self.description} cannot check its text for other types or NULLs")
        if request.format is not None and request.format.kind == "pgbinary":
            return self._read_binary(batch_rows, start)
        return self._read(batch_rows, start, True)

    def parse_verbatim(self, chunk: Chunk) -> Chunk:
        """The chunk ``read`` gives for a verbatim block: parsed, rows Arrow cannot hold rejected.
        Binary rows are not parsed here: their key range is read again as text."""
        data, rows = chunk.verbatim.data, chunk.verbatim.rows
        if isinstance(chunk.verbatim.state, _KeyRange):
            block = self._rows_between(chunk.verbatim.state)
            data, rows = b"".join(block), len(block)
        decoded = Decoder(self._schema, self.name, self.key).decode(data, rows, chunk.first_record or 1)
        return Chunk(decoded.batch, chunk.checkpoint, first_record=chunk.first_record, rejects=decoded.rejects,
                     size_bytes=chunk.size_bytes)

    def _read_binary(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        """Blocks of binary COPY rows, in key order. They are read in one snapshot, after a check
        in that snapshot that the rows to read hold no value Arrow cannot hold (which the text
        path rejects): if some do, the read goes the text way, parsed, as ``read`` does."""
        start = start or self.partitions(1)[0]
        if start.done:
            return
        position, rows_done = dict(start.position), start.rows
        conn = connect(self.config, self.base_dir)
        as_text = False
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot: the check, then the rows
            with conn.transaction():
                select_ = self._select(position, conn)
                unholdable = self._unholdable()
                check = f"SELECT EXISTS (SELECT 1 FROM ({select_}) AS r WHERE {unholdable})"
                as_text = bool(unholdable) and conn.execute(check).fetchone()[0]
                if not as_text:
                    yield from self._binary_blocks(conn, select_, batch_rows, start, position, rows_done)
        except psycopg.Error as exc:
            raise self._translate(exc, conn) from exc
        finally:
            conn.close()
        if as_text:
            yield from self._read(batch_rows, start, False)

    def _binary_blocks(self, conn: psycopg.Connection, select_: str, batch_rows: int, start: Checkpoint,
                       position: dict, rows_done: int) -> Iterator[Chunk]:
        key_index = self._schema.get_field_index(self.key)
        with conn.cursor() as cur, cur.copy(f"COPY ({select_}) TO STDOUT (FORMAT binary)"):
            rows = _BinaryCopyOut(conn)
            while block := rows.take(batch_rows):
                data = b"".join(block)
                low = position.get("after")
                position["after"] = _binary_integer(block[-1], key_index)
                position["offset"] = position.get("offset", 0) + len(block)
                checkpoint = Checkpoint(start.partition, dict(position), rows_done + len(block))
                yield Chunk(_empty(self._schema), checkpoint, first_record=rows_done + 1, size_bytes=len(data),
                            verbatim=Verbatim(data, len(block), _KeyRange(low, position["after"])))
                rows_done += len(block)

    def _unholdable(self) -> str:
        """A condition true of a row holding a value Arrow cannot hold, or "" when none can."""
        found = []
        for c in self.columns:
            q = "r." + quote_ident(c.name)
            if c.logical.name == "decimal":
                found.append(f"{q} = 'NaN'")
            elif c.logical.name in ("date", "timestamp", "timestamptz"):  # infinite, BC, or past 9999
                found.append(f"NOT ({q}::date BETWEEN '0001-01-01' AND '9999-12-31')")
        return " OR ".join(found)

    def _rows_between(self, keys: _KeyRange) -> list:
        """The rows of a key range as COPY's CSV text, read again."""
        conn = connect(self.config, self.base_dir)
        try:
            statement = f"COPY ({self._select({'after': keys.after, 'end': keys.last}, conn)}) TO STDOUT (FORMAT csv)"
            with conn.cursor() as cur, cur.copy(statement):
                rows, block = _CopyOut(conn), []
                while more := rows.take(10_000):
                    block += more
                return block
        except psycopg.Error as exc:
            raise self._translate(exc, conn) from exc
        finally:
            conn.close()

    def _read(self, batch_rows: int, start: Checkpoint | None, verbatim: bool) -> Iterator[Chunk]:
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
            with conn.cursor() as cur, cur.copy(statement):
                guard = _Guard(self._schema) if verbatim else None
                rows = _CopyOut(conn)
                while block := rows.take(batch_rows):
                    yield self._chunk(decoder, block, start.partition, position, rows_done, guard)
                    rows_done += len(block)
        except psycopg.Error as exc:
            raise self._translate(exc, conn) from exc
        finally:
            conn.close()

    def _translate(self, exc: psycopg.Error, conn: psycopg.Connection):
        table = str(self.table) if self.config.table else None
        return translate(exc, f"reading {self.description}", table=table, privilege="SELECT", user=conn.info.user,
                         source=True)

    def _chunk(self, decoder: Decoder, block: list, partition: str, position: dict, rows_done: int,
               guard: _Guard | None = None) -> Chunk:
        data = b"".join(block)
        position["offset"] = position.get("offset", 0) + len(block)
        if guard is not None and guard.holds(data, len(block)):
            if self.key is not None:
                position["after"] = self._last_key(block[-1])
            checkpoint = Checkpoint(partition, dict(position), rows_done + len(block))
            return Chunk(_empty(self._schema), checkpoint, first_record=rows_done + 1, size_bytes=len(data),
                         verbatim=Verbatim(data, len(block)))
        decoded = decoder.decode(data, len(block), rows_done + 1)
        if self.key is not None:
            position["after"] = decoded.last_key
        checkpoint = Checkpoint(partition, dict(position), rows_done + len(block))
        return Chunk(decoded.batch, checkpoint, first_record=rows_done + 1, rejects=decoded.rejects, size_bytes=len(data))

    def _last_key(self, row: bytes) -> int:
        """The key of a row of COPY's CSV text (an integer: never quoted, never NULL)."""
        fields = next(csv.reader(io.StringIO(bytes(row).decode("utf-8"), newline="")))
        return int(fields[self._schema.get_field_index(self.key)])

    def close(self) -> None:
        self.conn.close()


class _CopyOut:
    """The rows of the COPY TO under way on a connection, read from libpq itself.

    psycopg's own ``Copy.read`` makes a generator and a wait per row, about a microsecond each,
    a third of the reader's time on a million rows. Here a row already received costs one call;
    only when none is, the socket is waited for. The final result is read as psycopg reads it, so
    an error the server sends after the last row is raised as psycopg's own error.
    """

    def __init__(self, conn: psycopg.Connection):
        self._conn, self._pgconn = conn, conn.pgconn
        self._done = False

    def take(self, count: int) -> list:
        """Up to ``count`` rows (fewer only at the end; none once it is reached)."""
        rows: list = []
        if self._done:
            return rows
        pgconn, append = self._pgconn, rows.append
        get = pgconn.get_copy_data
        while count:
            nbytes, data = get(1)
            if nbytes > 0:
                append(data)
                count -= 1
            elif nbytes == 0:  # nothing received yet
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            elif nbytes == -1:  # the end: the COPY's own result follows
                self._finish()
                break
            else:
                raise psycopg.OperationalError(f"reading COPY data failed: {pgconn.get_error_message()}")
        return rows

    def _finish(self) -> None:
        self._done = True
        pgconn, results = self._pgconn, []
        while True:
            pgconn.consume_input()
            while pgconn.is_busy():
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
        if failed:
            raise psycopg.errors.error_from_result(failed[0], encoding=self._conn.info.encoding)


class _BinaryCopyOut:
    """The rows of a binary COPY TO: the signature taken off the first message (which also holds
    the first row, or the trailer when there is none), the trailer dropped."""

    def __init__(self, conn: psycopg.Connection):
        self._rows, self._first = _CopyOut(conn), True

    def take(self, count: int) -> list:
        rows = self._rows.take(count)
        if self._first and rows:
            self._first = False
            if bytes(rows[0][:len(copybinary.SIGNATURE)]) != copybinary.SIGNATURE:
                raise SourceError("the server's binary COPY did not start with its signature")
            rows[0] = rows[0][len(copybinary.SIGNATURE):]
        if rows and rows[-1] == copybinary.TRAILER:
            rows.pop()
        return rows


@dataclass(frozen=True)
class _KeyRange:
    """The keys of a block of binary rows: after ``after`` (None: from the start) up to ``last``."""

    after: int | None
    last: int


def _binary_integer(row: bytes, index: int) -> int:
    """Field ``index`` of a binary COPY row, an integer (a key: never NULL)."""
    view, at = memoryview(row), 2
    for _ in range(index):
        at += 4 + max(0, int.from_bytes(view[at:at + 4], "big", signed=True))
    size = int.from_bytes(view[at:at + 4], "big", signed=True)
    return int.from_bytes(view[at + 4:at + 4 + size], "big", signed=True)


class _Guard:
    """Whether Arrow holds every numeric, date and timestamp value of a block of COPY text. A
    block without any text such a value could be passes at once; one with some is parsed with
    those columns' types only, as the Decoder's first attempt does."""

    def __init__(self, schema: pa.Schema):
        names = [f"c{i}" for i in range(len(schema))]
        self._types = {n: f.type for n, f in zip(names, schema) if logical_of(f).name in _GUARDED}
        dates = any(logical_of(f).name != "decimal" for f in schema if logical_of(f).name in _GUARDED)
        self._suspicious = f"{_SPECIAL}|{_BIG_YEAR}" if dates else _SPECIAL
        self._names = names
        self._parse = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        self._convert = pacsv.ConvertOptions(column_types=self._types, include_columns=list(self._types),
                                             null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)

    def holds(self, data: bytes, rows: int) -> bool:
        if not self._types or not self._suspect(data):
            return True
        try:
            # The whole block in one piece, on this thread: a block is small, and the reader's own.
            read = pacsv.ReadOptions(column_names=self._names, use_threads=False, block_size=len(data) + 1)
            table = pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=self._parse,
                                   convert_options=self._convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return table.num_rows == rows

    def _suspect(self, data: bytes) -> bool:
        # One pass of RE2 over the block, outside the GIL; the block is not copied.
        whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, _offsets(len(data)), pa.py_buffer(data)])
        return bool(pc.match_substring_regex(whole, self._suspicious)[0].as_py())


def _offsets(size: int) -> pa.Buffer:
    return pa.array([0, size], pa.int64()).buffers()[1]


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


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
        for table, label in self._names.items():
            for (name,) in self.conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT "
                                             "tgisinternal ORDER BY tgname", (table.sql,)):
                self.notes.append(f"trigger {name} of table {label} is not copied: triggers are code, written again "
                                  "by hand in the destination's own language")
        return out

    def views(self) -> list[ViewDef]:
        """The views of the schema copied (``tables: "*"`` or ``"schema.*"``); none for a list of tables."""
        if not isinstance(self.config.tables, str):
            return []
        schema = self.config.schema_ if self.config.tables == "*" else self.config.tables[:-2]
        return catalog.views(self.conn, schema)

    def table_source(self, name: str) -> PostgresSource:
        table = TableName.parse(name, self.config.schema_)
        config = self.config.model_copy(update={"tables": None, "table": f"{quote_ident(table.schema)}.{quote_ident(table.name)}"})
        return PostgresSource(config, self.base_dir)

    def close(self) -> None:
        self.conn.close()
