"""Reading Snowflake: a table or a query, fetched as Arrow batches (``fetch_arrow_batches``) and
cut to the job's batch size.

A read is one ordered SELECT, so that a resumed run can skip exactly the rows already loaded
(``OFFSET``, the checkpoint being a row count): ordered by ``order_by`` when the job names a key,
else by every column. Rows equal in every column are interchangeable, so skipping by count over
that order skips the same rows whatever order the server gives equal ones; a query's own ORDER BY
is kept only inside the subquery, where Snowflake may ignore it, which is why the outer order is
always given. The price is a sort on the warehouse; ``order_by`` on a key makes it a cheap one.

With ``incremental``, every SELECT has the window's condition on the cursor column
(:mod:`portl.connectors.sql.incremental`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from snowflake.connector import errors as sf_errors

from portl.connectors.base import Checkpoint, Chunk, Estimate
from portl.connectors.closest import table_hint
from portl.connectors.snowflake.config import Config
from portl.connectors.snowflake.connection import TableName, connect, existing_name, translate
from portl.connectors.snowflake.typemap import conform, declared_of, quote_ident, schema_of
from portl.connectors.sql.incremental import CursorReads
from portl.errors import SourceError

PARTITION = "0"


class SnowflakeSource(CursorReads):
    """Reads one table or one query of a Snowflake database."""

    def __init__(self, config: Config, base_dir: str):
        if not config.table and not config.query:
            raise SourceError(f"Snowflake source {config.describe()}: give 'table' or 'query'")
        self.config = config
        self.description = config.describe()
        self.name = self.description
        self.conn = connect(config, base_dir)
        self.table: TableName | None = None
        try:
            with self.conn.cursor() as cur:
                if config.table:
                    wanted = TableName.parse(config.table)
                    self.table = existing_name(cur, wanted)
                    if self.table is None:
                        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = CURRENT_SCHEMA()")
                        names = [row[0] for row in cur.fetchall()]
                        raise SourceError(f"table {wanted} does not exist in Snowflake {config.location()}"
                                          + table_hint(wanted.name, names, "the schema"))
                    self.base = f"SELECT * FROM {self.table.sql}"
                else:
                    self.base = config.query.strip().rstrip(";")
                cur.execute(f"SELECT * FROM ({self.base}) LIMIT 0")
                self._schema = schema_of(cur.description)
                self.declared = declared_of(cur.description)
        except sf_errors.Error as exc:
            self.close()
            raise translate(exc, f"describing {self.description}", source=True) from exc
        except BaseException:
            self.close()
            raise
        missing = [c for c in config.order_by or [] if c not in self._schema.names]
        if missing:
            self.close()
            raise SourceError(f"order_by names {', '.join(missing)}, which {self.description} does not have; its "
                              f"columns are {', '.join(self._schema.names)}")
        self.notes = [f"column {name} is TIME: read as text HH:MM:SS.ffffff" for name, t in self.declared.items()
                      if t == "TIME"]
        if not config.order_by:
            self.notes.append("read ordered by every column, so that a resumed run skips exactly the rows already "
                              "loaded; name a unique key in order_by to sort on it alone")

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        if self.table is None:
            return Estimate()
        params: list[Any] = []
        where = f" WHERE {self._window(params)}" if self.window is not None else ""
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {self.table.sql}{where}", params)
                return Estimate(rows=cur.fetchone()[0], exact=True)
        except sf_errors.Error as exc:
            raise translate(exc, f"counting the rows of {self.description}", source=True) from exc

    def partitions(self, count: int) -> list[Checkpoint]:
        return [Checkpoint(PARTITION, {"offset": 0})]

    def statement(self, offset: int, params: list[Any]) -> str:
        """The SELECT a read runs, from row ``offset`` of its order on."""
        where = f" WHERE {self._window(params)}" if self.window is not None else ""
        # Every column follows the order asked for, so that rows which tie on it still come in one
        # order: a resumed read skips by count, and must skip exactly the rows it loaded.
        every = [str(i + 1) for i in range(len(self._schema))]
        order = ", ".join([quote_ident(c) for c in self.config.order_by or []] + every)
        skip = f" LIMIT NULL OFFSET {int(offset)}" if offset else ""
        return f"SELECT * FROM ({self.base}){where} ORDER BY {order}{skip}"

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        offset = int(start.position.get("offset", 0)) if start is not None else 0
        params: list[Any] = []
        statement = self.statement(offset, params)
        pending: list[pa.Table] = []
        held = 0
        try:
            with self.conn.cursor() as cur:
                cur.execute(statement, params)
                for part in cur.fetch_arrow_batches():
                    table = conform(part, self._schema)
                    pending.append(table)
                    held += table.num_rows
                    while held >= batch_rows:
                        whole = pa.concat_tables(pending)
                        batch, rest = whole.slice(0, batch_rows), whole.slice(batch_rows)
                        offset += batch.num_rows
                        yield self._chunk(batch, offset)
                        pending, held = [rest], rest.num_rows
        except sf_errors.Error as exc:
            raise translate(exc, f"reading {self.description}", source=True) from exc
        if held:
            offset += held
            yield self._chunk(pa.concat_tables(pending), offset)

    def _chunk(self, table: pa.Table, offset: int) -> Chunk:
        """Rows up to ``offset`` of the read's order, as one batch with the checkpoint after them."""
        data = table.combine_chunks().to_batches()[0]
        return Chunk(data, Checkpoint(PARTITION, {"offset": offset}, offset), first_record=offset - data.num_rows + 1)

    def _window(self, params: list[Any]) -> str:
        def bind(value: Any) -> str:
            params.append(value)
            return "%s"

        return self.window.condition(self.quoted_cursor(), bind)

    # incremental reads (CursorReads)

    def quoted_cursor(self) -> str:
        return quote_ident(self.config.incremental.cursor)

    def cursor_maximum(self) -> Any:
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT max({self.quoted_cursor()}) FROM ({self.base})")
                return cur.fetchone()[0]
        except sf_errors.Error as exc:
            raise translate(exc, f"finding the largest {self.config.incremental.cursor} of {self.description}",
                            source=True) from exc

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()
