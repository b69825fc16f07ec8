"""Reading MySQL and MariaDB: a table, a query, or (as a catalog) every table of a database.

Rows stream through an unbuffered cursor (``SSCursor``), ``batch_rows`` at a time, so memory
stays flat whatever the table's size. PyMySQL parses every field of every row in Python, which
is slow; so a table is read *packed*: the server joins each row's fields into one binary value,
separated by the byte 0xFF, with 0xFD standing for NULL (neither byte occurs in UTF-8 text;
binary columns travel as hex), and Arrow splits a whole batch at once. That reads about 2.7 times
faster than one field at a time; reading those one-value rows from the socket buffer without
PyMySQL's per-row parsing (:class:`~portl.connectors.mysql.client.ValueReader`) halves it again.
A query is read field by field: packing would mean wrapping it in a derived table, whose ORDER BY
the server is free to ignore.

Checkpoints: a table with a single-column integer primary key is read in key order and resumes
after the last key committed (``partitions(n)`` splits the key range); any other table, and a
query, resumes by row count and is read in one partition.

Read verbatim (``read_verbatim``, a table only), the server writes each row as a CSV line instead
(:mod:`portl.connectors.mysql.csvrows`) and a block of lines goes to the destination as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import Checkpoint, Chunk, Estimate, TableDef, Verbatim, VerbatimOffer, VerbatimRequest, ViewDef
from portl.connectors.closest import table_hint
from portl.connectors.mysql import csvrows
from portl.connectors.mysql import catalog
from portl.connectors.mysql.client import Server, ValueReader, abandon_stream, close_quietly, errno_of, execute
from portl.connectors.mysql.columns import Column, column_of_result, to_arrow
from portl.connectors.mysql.config import Config
from portl.connectors.mysql.dialect import DIALECT, qualified
from portl.connectors.sql.incremental import CursorReads
from portl.errors import SourceError

SEPARATOR = b"\xff"
NULL_MARK = b"\xfd"
ALL_ROWS = 18446744073709551615  # MySQL has no OFFSET without LIMIT; this is its documented idiom
_UTF8 = {"utf8mb4", "utf8mb3", "utf8", "ascii"}
_KEYSET_KINDS = {"int32", "int64", "uint64"}
_NO_DATE_EXAMPLES = {"zero": "0000-00-00", "impossible": "2024-02-30"}


class MysqlSource(CursorReads):
    """Reads one table or one query; with ``incremental``, only the rows of its window
    (:mod:`portl.connectors.sql.incremental`). A query is then read as a derived table."""

    def __init__(self, config: Config, base_dir: str, server: Server | None = None):
        if not config.table and not config.query:
            raise SourceError(f"MySQL source {config.describe()}: give `table`, `query` or `tables`")
        self.config = config
        self.server = server or Server(config, base_dir, "source")
        self.description = f"mysql {config.describe()}"
        self.name = config.describe()
        # per partition, how many values became NULL because they are no dates, by (column, reason)
        self._zero_dates: dict[str, dict[tuple[str, str], int]] = {}
        self._lock = threading.Lock()
        self._last: dict[str, Checkpoint] = {}  # per partition, the checkpoint of the last chunk read
        self.key: str | None = None
        self.order_by: list[str] = []
        # Describe the table or query now (a bad name or a missing privilege shows at plan time),
        # on a connection that is not kept: a database copy opens a source per table.
        conn = self.server.connect()
        try:
            facts = self.server.facts(conn)
            with conn.cursor() as cur:
                if config.table:
                    self.database, self.table = catalog.split_name(config.table, self.server.database)
                    self.columns = catalog.columns(cur, self.database, self.table, facts.mariadb)
                    if not self.columns:
                        raise SourceError(f"table {config.table!r} not found in MySQL database {self.database} on "
                                          f"{self.server.location}"
                                          + table_hint(self.table, catalog.table_names(cur, self.database), "it"))
                    primary = catalog.indexes(cur, self.database, self.table).get("PRIMARY", (True, []))[1]
                    self.order_by = primary
                    kinds = {c.name: c.kind for c in self.columns}
                    if len(primary) == 1 and kinds.get(primary[0]) in _KEYSET_KINDS:
                        self.key = primary[0]
                else:
                    self.columns = self._query_columns(cur)
        except SourceError:
            raise
        except Exception as exc:
            raise self.server.error(exc, f"reading the columns of {self.description}", during_run=False) from exc
        finally:
            close_quietly(conn)
        self.notes = [c.note for c in self.columns if c.note]
        if any(c.kind in ("date", "timestamp") for c in self.columns):
            self.notes.append("zero dates (0000-00-00, 2024-05-00, 0000-00-00 00:00:00, any date in the year 0) and "
                              "impossible ones (2024-02-30) are read as NULL; the run report counts them per column")
        if config.table and not self.order_by:
            self.notes.append(f"table {config.table} has no primary key: it is read in storage order in one "
                              "partition, and a resumed run skips the rows already loaded by position")
        if config.query:
            self.notes.append("a query is read in one partition in the order it returns rows; a resumed run skips the "
                              "rows already loaded by position, so give it an ORDER BY on a unique key")

    def _query_columns(self, cur: Any) -> list[Column]:
        """The columns of the query's result, asked of the server without running it (LIMIT 0)."""
        import pymysql

        try:
            execute(cur, f"SELECT * FROM ({self._query_text()}) AS portl_query LIMIT 0")
        except pymysql.MySQLError as exc:
            if errno_of(exc) == 1060:  # "Duplicate column name 'id'"
                repeated = str(exc.args[1]).split("'")[1] if "'" in str(exc.args[1]) else "?"
                raise SourceError(f"the query returns more than one column named {repeated}; give each a distinct "
                                  "name with AS") from exc
            raise
        # cursor.description lacks the flags (unsigned) and character set (binary or text) that
        # the protocol's field descriptions carry; PyMySQL keeps those on the result.
        fields = cur._result.fields
        return [column_of_result(f.name, f.type_code, f.length, f.scale, f.flags, f.charsetnr) for f in fields]

    def _query_text(self) -> str:
        return self.config.query.strip().rstrip(";")

    # the seam

    def schema(self) -> pa.Schema:
        return pa.schema([c.field.with_nullable(True) for c in self.columns])

    @contextmanager
    def _cursor(self, doing: str) -> Iterator[Any]:
        """A short-lived connection's cursor, errors translated."""
        import pymysql

        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                yield cur
        except pymysql.MySQLError as exc:
            raise self.server.error(exc, f"{doing} {self.description}") from exc
        finally:
            close_quietly(conn)

    def estimate(self) -> Estimate:
        if not self.config.table or self.window is not None:  # a window's size is known once read
            return Estimate()
        with self._cursor("estimating the rows of") as cur:
            rows = catalog.table_rows(cur, self.database, self.table)
        return Estimate(rows=rows, exact=False)

    def partitions(self, count: int) -> list[Checkpoint]:
        whole = [Checkpoint("0", {"after": None, "end": None, "offset": 0})]
        if self.key is None or count <= 1:
            return whole
        q = DIALECT.quote
        with self._cursor("finding the key range of") as cur:
            params: list = []
            where = f" WHERE {self._window_condition(params)}" if self.window is not None else ""
            execute(cur, f"SELECT MIN({q(self.key)}), MAX({q(self.key)}) FROM {self._table_sql()}{where}", params or None)
            low, high = cur.fetchone()
        if low is None:
            return whole
        low, high = int(low), int(high)
        step = max(1, (high - low + 1) // count)
        bounds = [low - 1 + step * i for i in range(count)] + [high]
        return [Checkpoint(str(i), {"after": bounds[i] if i else None, "end": bounds[i + 1] if i < count - 1 else None,
                                    "offset": 0})
                for i in range(count) if i == 0 or bounds[i] < bounds[i + 1]]

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        return self._read(batch_rows, start, False)

    def verbatim_offer(self) -> VerbatimOffer | None:
        """A table's rows as CSV lines the server writes, each field the text of its own type."""
        return VerbatimOffer(csvrows.FORMAT, own_types=True) if self.config.table else None

    def read_verbatim(self, batch_rows: int, start: Checkpoint | None, request: VerbatimRequest) -> Iterator[Chunk]:
        if not self.config.table or request.types or request.required:
            raise SourceError(f"{self.description} hands over a table's rows as they are, unchecked")
        return self._read(batch_rows, start, True)

    def parse_verbatim(self, chunk: Chunk) -> Chunk:
        """The chunk ``read`` gives for a verbatim block."""
        counts = self._zero_dates.setdefault(chunk.checkpoint.partition, {})
        batch = self._batch(csvrows.texts_of(chunk.verbatim.data, self.columns), counts)
        return Chunk(batch, chunk.checkpoint, first_record=chunk.first_record, size_bytes=chunk.size_bytes)

    def _read(self, batch_rows: int, start: Checkpoint | None, verbatim: bool) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        import pymysql

        with self._lock:
            # A read that goes on from the last chunk of its partition's previous read (opened
            # again after a dropped connection) adds to its counts; any other read replaces them
            # (the plan's preview read the first rows already).
            going_on = start is self._last.get(start.partition)
            counts: dict[tuple[str, str], int] = self._zero_dates.get(start.partition, {}) if going_on else {}
            self._zero_dates[start.partition] = counts
        conn = self.server.connect(stream=True, during_run=True)
        try:
            if self.config.table:
                chunks = self._read_table(conn, batch_rows, start, counts, verbatim)
            else:
                chunks = self._read_query(conn, batch_rows, start, counts)
            for chunk in chunks:
                self._last[start.partition] = chunk.checkpoint
                yield chunk
        except pymysql.MySQLError as exc:
            raise self.server.error(exc, f"reading {self.description}") from exc
        finally:
            close_quietly(conn)

    def _table_sql(self) -> str:
        return qualified(self.database, self.table)

    def _read_table(self, conn: Any, batch_rows: int, start: Checkpoint, counts: dict[tuple[str, str], int],
                    verbatim: bool = False) -> Iterator[Chunk]:
        q = DIALECT.quote
        pos = dict(start.position)
        rows_done = start.rows
        where, params = [], []
        if self.key is not None:
            if pos.get("after") is not None:
                where.append(f"{q(self.key)} > %s")
                params.append(pos["after"])
            if pos.get("end") is not None:
                where.append(f"{q(self.key)} <= %s")
                params.append(pos["end"])
        if self.window is not None:
            where.append(self._window_condition(params))
        row = csvrows.csv_row(self.columns) if verbatim else packed_row(self.columns)
        statement = f"SELECT {row} FROM {self._table_sql()}"
        if where:
            statement += " WHERE " + " AND ".join(where)
        if self.order_by:
            statement += " ORDER BY " + ", ".join(q(c) for c in self.order_by)
        if self.key is None and pos.get("offset"):
            statement += " LIMIT %s, %s"
            params += [pos["offset"], ALL_ROWS]
        key_index = [c.name for c in self.columns].index(self.key) if self.key else None
        with _stream(conn, statement, params or None) as cur:
            values = ValueReader(cur)
            while True:
                rows = values.take(batch_rows)
                if not rows:
                    break
                if verbatim:
                    yield self._verbatim_chunk(rows, key_index, pos, start.partition, rows_done)
                    rows_done += len(rows)
                    continue
                blob = SEPARATOR.join(rows)
                texts = unpack(blob, len(rows), self.columns, self.description)
                if key_index is not None:
                    pos["after"] = int(texts[key_index][-1].as_py())
                batch = self._batch(texts, counts)
                first = rows_done + 1
                rows_done += len(rows)
                pos["offset"] = pos.get("offset", 0) + len(rows)
                yield Chunk(batch, Checkpoint(start.partition, dict(pos), rows_done), first_record=first,
                            size_bytes=len(blob))

    def _verbatim_chunk(self, rows: list, key_index: int | None, pos: dict, partition: str, rows_done: int) -> Chunk:
        data = csvrows.block(rows)
        if key_index is not None:
            pos["after"] = int(csvrows.field_of(rows[-1], key_index))
        pos["offset"] = pos.get("offset", 0) + len(rows)
        chunk = Chunk(pa.RecordBatch.from_pylist([], schema=self.schema()),
                      Checkpoint(partition, dict(pos), rows_done + len(rows)), first_record=rows_done + 1,
                      size_bytes=len(data), verbatim=Verbatim(data, len(rows)))
        if not csvrows.canonical(data):
            # Dates that are no dates: the Arrow path makes them NULL and counts them.
            return self.parse_verbatim(chunk)
        return chunk

    def _read_query(self, conn: Any, batch_rows: int, start: Checkpoint,
                    counts: dict[tuple[str, str], int]) -> Iterator[Chunk]:
        pos = dict(start.position)
        rows_done = start.rows
        statement, params = self._query_text(), None
        if self.window is not None:
            params = []
            statement = f"SELECT * FROM ({statement}) AS portl_query WHERE {self._window_condition(params)}"
        with _stream(conn, statement, params) as cur:
            skip = pos.get("offset", 0)
            while skip > 0:  # a query's order is its own: skip the rows already loaded as they arrive
                skipped = len(cur.fetchmany(min(skip, 50_000)))
                if not skipped:
                    break
                skip -= skipped
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                columns = list(zip(*rows))
                texts = [_fetched_array(c, values) for c, values in zip(self.columns, columns)]
                batch = self._batch(texts, counts)
                first = rows_done + 1
                rows_done += len(rows)
                pos["offset"] = pos.get("offset", 0) + len(rows)
                yield Chunk(batch, Checkpoint(start.partition, dict(pos), rows_done), first_record=first,
                            size_bytes=batch.nbytes)

    # incremental reads (sql.incremental.CursorReads)

    def _window_condition(self, params: list) -> str:
        """The window's condition on the cursor, its values appended to ``params``."""

        def bind(value: Any) -> str:
            params.append(value)
            return "%s"

        return self.window.condition(self.quoted_cursor(), bind)

    def quoted_cursor(self) -> str:
        return DIALECT.quote(self.config.incremental.cursor)

    def cursor_maximum(self) -> Any:
        """The cursor's largest value now: one query, answered from an index on the cursor when there is one."""
        relation = self._table_sql() if self.config.table else f"({self._query_text()}) AS portl_query"
        with self._cursor("finding the incremental mark of") as cur:
            execute(cur, f"SELECT MAX({self.quoted_cursor()}) FROM {relation}")
            return cur.fetchone()[0]

    def _batch(self, texts: list[pa.Array], counts: dict[tuple[str, str], int]) -> pa.RecordBatch:
        arrays = []
        for column, text in zip(self.columns, texts):
            try:
                array, nulled = to_arrow(column, text)
            except (pa.ArrowInvalid, ValueError) as exc:
                raise SourceError(f"{self.description}: column {column.name} ({column.declared}) holds a value Portl "
                                  f"cannot read as {column.logical}: {exc}") from exc
            for reason, n in nulled.items():
                if n:
                    with self._lock:
                        counts[column.name, reason] = counts.get((column.name, reason), 0) + n
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema())

    def warnings(self) -> list[str]:
        """What the reads changed on the way, for the run report: zero and impossible dates that
        became NULL."""
        totals: dict[tuple[str, str], int] = {}
        with self._lock:
            for counts in self._zero_dates.values():
                for key, n in counts.items():
                    totals[key] = totals.get(key, 0) + n
        return [f"{n:,} {reason} date{'s' if n != 1 else ''} (such as {_NO_DATE_EXAMPLES[reason]}) became NULL in "
                f"column {column}" for (column, reason), n in totals.items()]

    def close(self) -> None:
        """Nothing stays open between calls: each read has its own connection."""


@contextmanager
def _stream(conn: Any, statement: str, params: Any = None) -> Iterator[Any]:
    """An unbuffered cursor over ``statement``. A reader may stop early (the plan's preview reads
    a few rows); the connection is then dropped here, before the cursor is collected: PyMySQL
    would otherwise read the rest of the result, the whole table, when it closes the cursor."""
    import pymysql.cursors

    cur = conn.cursor(pymysql.cursors.SSCursor)
    try:
        execute(cur, statement, params)
        yield cur
    finally:
        abandon_stream(conn)


def packed_row(columns: list[Column]) -> str:
    """One binary value per row: the fields as text joined by 0xFF, NULL as 0xFD."""
    # CAST AS BINARY: the value is bytes, never decoded as text by the driver.
    return "CAST(CONCAT_WS(UNHEX('FF'), " + ", ".join(_packed_field(c) for c in columns) + ") AS BINARY)"


def _packed_field(column: Column) -> str:
    name = DIALECT.quote(column.name)
    if column.kind == "bytes":
        value = f"HEX({name})"
    elif column.kind == "bit":
        value = f"({name} + 0)"
    elif column.kind == "year2":
        value = f"YEAR({name})"  # the year in full: a year(2) shows 1970 as 70
    elif column.kind == "geometry":
        value = f"ST_AsText({name})"
    elif column.kind == "text" and (column.charset or "").lower() not in _UTF8:
        value = f"CONVERT({name} USING utf8mb4)"  # also turns MySQL's binary JSON into its text
    else:
        value = name
    # Every field is made binary on its own. CONCAT_WS gives its result the character set of its
    # text arguments, and a field left as text drags the separator into it: in utf8mb3 (legacy
    # "utf8"), where 0xFF is no character, the server sends the separator as '?'.
    field = f"CAST({value} AS BINARY)"
    # CONCAT_WS leaves NULL arguments out, which would shift the fields that follow. Both sides
    # of IFNULL are binary: otherwise the server converts the mark to its text type ('?').
    return f"IFNULL({field}, UNHEX('FD'))" if column.nullable else field


def unpack(blob: bytes, rows: int, columns: list[Column], what: str) -> list[pa.Array]:
    """Split packed rows into one text array per column; NULL marks become nulls."""
    width = len(columns)
    parts = pc.split_pattern(pa.array([blob], pa.binary()), SEPARATOR).values
    if len(parts) != rows * width:
        raise SourceError(f"{what}: a batch of {rows} rows unpacked into {len(parts)} fields instead of "
                          f"{rows * width}; a text column holds bytes that are not UTF-8")
    grid = pa.FixedSizeListArray.from_arrays(parts, width)
    texts = []
    for j, column in enumerate(columns):
        values = pc.list_element(grid, j)
        null = pc.equal(values, pa.scalar(NULL_MARK, pa.binary()))
        if pc.any(null).as_py():
            values = pc.if_else(null, pa.scalar(None, pa.binary()), values)
        try:
            texts.append(pc.cast(values, pa.string()))
        except pa.ArrowInvalid as exc:
            raise SourceError(f"{what}: column {column.name} holds text that is not valid UTF-8: {exc}") from exc
    return texts


def _fetched_array(column: Column, values: tuple) -> pa.Array:
    """A column of a query's rows as fetched (text, or bytes for binary columns) as an Arrow array."""
    if column.kind == "bit":
        # bit(n) arrives as big-endian bytes; they have no text form to convert in bulk.
        return pa.array([None if v is None else str(int.from_bytes(v, "big")) for v in values], pa.string())
    if column.kind == "bytes" or (values and isinstance(next((v for v in values if v is not None), ""), bytes)):
        return pa.array(values, pa.binary())
    return pa.array(values, pa.string())


class MysqlCatalog:
    """The tables of a MySQL database, for whole-database copies (``tables: "*"``)."""

    def __init__(self, config: Config, base_dir: str):
        self.config, self.base_dir = config, base_dir
        self.server = Server(config, base_dir, "source")
        which = "all tables" if config.tables == "*" else ", ".join(config.tables)
        self.description = f"mysql {self.server.location}/{self.server.database} ({which})"
        self.name = config.describe()
        self._conn = self.server.connect()
        self.notes: list[str] = []
        """What the copy leaves out that the tables declare: ON UPDATE clauses, triggers."""

    def tables(self) -> list[TableDef]:
        facts = self.server.facts(self._conn)
        try:
            with self._conn.cursor() as cur:
                names = catalog.table_names(cur, self.server.database)
                wanted = self.config.tables
                if wanted != "*":
                    missing = [w for w in wanted if w not in names]
                    if missing:
                        raise SourceError(f"table(s) {', '.join(missing)} not found in MySQL database "
                                          f"{self.server.database} on {self.server.location}")
                    names = [n for n in names if n in wanted]
                self.notes = catalog.not_copied(cur, self.server.database, names)
                return [catalog.table_def(cur, self.server.database, n, facts.mariadb) for n in names]
        except SourceError:
            raise
        except Exception as exc:
            raise self.server.error(exc, f"listing the tables of {self.description}", during_run=False) from exc

    def views(self) -> list[ViewDef]:
        """The database's views (``tables: "*"``); none for a list of tables."""
        if self.config.tables != "*":
            return []
        try:
            with self._conn.cursor() as cur:
                return catalog.views(cur, self.server.database)
        except Exception as exc:
            raise self.server.error(exc, f"listing the views of {self.description}", during_run=False) from exc

    def table_source(self, name: str) -> MysqlSource:
        config = self.config.model_copy(update={"tables": None, "table": DIALECT.quote(name) if "." in name else name})
        return MysqlSource(config, self.base_dir, self.server)

    def close(self) -> None:
        close_quietly(self._conn)
