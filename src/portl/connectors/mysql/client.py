"""Connections to one MySQL or MariaDB server: opening them, the pool that concurrent writers
share, and the one place where driver errors become Portl errors.

PyMySQL is imported inside these functions only, so that ``import portl`` never imports it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from portl.connectors.mysql.config import Config
from portl.errors import ConnectorError, SourceError, TerminalError, TransientError
from portl.secrets import MASK, mask_url

# Error numbers (server ER_* and client CR_*) that a new attempt may get past.
TRANSIENT = {
    1205,  # lock wait timeout
    1213,  # deadlock: InnoDB rolled the transaction back
    1040,  # too many connections
    1053,  # server shutdown in progress
    1927,  # connection killed (MariaDB)
    2002, 2003,  # cannot connect (during a run: the server is restarting, or the network dropped)
    2006, 2013,  # server has gone away, lost connection during query
    2055,  # lost connection (system error)
}
NOT_ALLOWED = {1044, 1142, 1143, 1227, 1370}  # permission denied on a database, table, column, privilege, routine
DATA_ERRORS = {1048, 1264, 1265, 1292, 1366, 1406, 4025}  # a value does not fit its column
LOCAL_INFILE_REFUSED = {1148, 2068, 3948}  # the server or the client does not allow LOAD DATA LOCAL

_AT_ROW = re.compile(r"at row (\d+)")
_COLUMN = re.compile(r"column (?:[`'][^`']*[`']\.)*[`']([^`']+)[`']", re.IGNORECASE)
_PERCENT = re.compile(r"%(?!s)")


def errno_of(exc: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL exception, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def column_and_row(message: str) -> tuple[str | None, int | None]:
    """The column and (1-based) row a MySQL data error or warning names, when it names them."""
    column = _COLUMN.search(message)
    row = _AT_ROW.search(message)
    return (column.group(1) if column else None), (int(row.group(1)) if row else None)


def execute(cursor: Any, statement: str, params: Any = None) -> int:
    """Run one statement. PyMySQL fills ``%s`` placeholders with Python's ``%`` operator, so
    every other ``%`` (in a quoted name, a LIKE pattern) is doubled when parameters are bound."""
    if params is None:
        return cursor.execute(statement)
    return cursor.execute(_PERCENT.sub("%%", statement), params)


@dataclass(frozen=True)
class ServerFacts:
    """What the server is and allows, read once per connector."""

    version: str
    mariadb: bool
    local_infile: bool
    max_allowed_packet: int
    database_charset: str


class Server:
    """How to reach one database on one server, and how to explain its failures."""

    def __init__(self, config: Config, base_dir: str, role: str):
        self.config = config
        self.role = role  # "source" or "destination", for messages
        self.location = config.location()
        self.database = config.database_name
        if not self.database:
            terminal = SourceError if role == "source" else TerminalError
            raise terminal(f"MySQL {role} {self.location}: no database given; set `database`, or end the url "
                           "with /<database>")
        self._kwargs = config.connect_kwargs(base_dir)
        self._password = self._kwargs.get("password") or ""
        self._facts: ServerFacts | None = None
        self._facts_lock = threading.Lock()

    def connect(self, *, stream: bool = False, local_infile: bool = False, during_run: bool = False) -> Any:
        """A new connection in autocommit mode, with the session in UTC (TIMESTAMP columns are read
        and written in UTC). ``stream``: for an unbuffered read that may wait on a slow writer."""
        import pymysql

        settings = "SET SESSION time_zone = '+00:00'"
        if stream:
            # The server gives up on a client that does not read for net_write_timeout seconds
            # (default 60); a stream waits while the destination writes the previous batch.
            settings += ", net_write_timeout = 86400"
        try:
            return _connection_class()(**self._kwargs, autocommit=True, local_infile=local_infile,
                                        init_command=settings, conv=_text_conversions(), max_allowed_packet=1 << 30)
        except pymysql.MySQLError as exc:
            raise self.error(exc, f"connecting to the MySQL {self.role}", during_run=during_run) from None

    def facts(self, conn: Any | None = None) -> ServerFacts:
        """Version, LOAD DATA LOCAL permission and packet size, asked once."""
        with self._facts_lock:
            if self._facts is None:
                own = conn is None
                conn = conn or self.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT VERSION(), @@local_infile, @@max_allowed_packet, @@character_set_database")
                        version, local, packet, charset = cur.fetchone()
                finally:
                    if own:
                        conn.close()
                self._facts = ServerFacts(str(version), "mariadb" in str(version).lower(), str(local) in ("1", "ON"),
                                          int(packet), str(charset))
            return self._facts

    def error(self, exc: BaseException, doing: str, *, during_run: bool = True, table: str | None = None) -> ConnectorError:
        """A driver exception as a Portl error whose message says what to do; never the password."""
        code = errno_of(exc)
        # The server's sentence becomes a clause of ours: its own full stop would double ours.
        text = self._scrub(str(exc.args[1]) if len(getattr(exc, "args", ())) > 1 else str(exc)).strip().removesuffix(".")
        where = f"MySQL {self.role} {self.location}/{self.database}"
        terminal = SourceError if self.role == "source" else TerminalError
        if code in (2002, 2003, 2005) and not during_run:
            return terminal(f"{doing}: cannot reach the MySQL server at {self.location} ({text}). Check host and "
                            "port, and that the server is running and accepts connections from here")
        if code in TRANSIENT:
            return TransientError(f"{doing} on {where}: {text} (error {code}); worth retrying")
        if code == 1045:
            return terminal(f"{doing}: {where} refused the credentials of user {self.config.user_name!r} ({text}). "
                            "Check user and password")
        if code == 1049:
            return terminal(f"{doing}: database {self.database!r} does not exist on {self.location}. Create it "
                            f"(CREATE DATABASE `{self.database}`) or correct `database`")
        if code == 1146:
            return terminal(f"{doing}: {text} on {where}. Check the table name (and its database)")
        if code in DATA_ERRORS:
            column, row = column_and_row(text)
            place = ", ".join(p for p in (f"column {column}" if column else "", f"row {row}" if row else "") if p)
            return terminal(f"{doing} on {where}: a value does not fit its column{f' ({place})' if place else ''}: "
                            f"{text} (error {code})")
        if code in NOT_ALLOWED:
            return terminal(f"{doing}: user {self.config.user_name!r} lacks a privilege on {where}: {text}. "
                            "Grant it, or connect as a user who has it")
        return terminal(f"{doing} on {where}: {text}" + (f" (error {code})" if code else ""))

    def _scrub(self, text: str) -> str:
        text = mask_url(text)
        return text.replace(self._password, MASK) if len(self._password) >= 4 else text


@functools.cache
def _connection_class() -> type:
    """PyMySQL's Connection, except that using a connection the driver has closed (after the
    server dropped it) raises "server has gone away" (2006), a transient error, not
    AttributeError. PyMySQL does that when the server kills a session during LOAD DATA LOCAL:
    having closed the socket, it still sends the end-of-file packet."""
    import pymysql

    class Connection(pymysql.connections.Connection):
        def _write_bytes(self, data: bytes) -> None:
            try:
                super()._write_bytes(data)
            except AttributeError as exc:
                if getattr(self, "_sock", "") is not None:  # not the closed socket: a real bug
                    raise
                raise pymysql.err.OperationalError(2006, "MySQL server has gone away (the connection was lost)") from exc

    return Connection


def _text_conversions() -> dict:
    """PyMySQL's encoders without its decoders: every value arrives as the server's text (or
    bytes for binary columns), and Arrow converts whole columns at once."""
    from pymysql import converters

    return {k: v for k, v in converters.conversions.items() if not isinstance(k, int)}


class Pool:
    """A few open connections shared by threads. Each borrower gets a connection of its own;
    at most ``size`` are open at once, and a broken one is dropped instead of lent again."""

    def __init__(self, server: Server, size: int, local_infile: bool):
        self._server = server
        self._local_infile = local_infile
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._opened = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._slots.acquire()
        conn = None
        try:
            with self._lock:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    conn = candidate if candidate.open else None
            if conn is None:
                conn = self._server.connect(local_infile=self._local_infile, during_run=self._opened)
                self._opened = True
            try:
                yield conn
            except BaseException as exc:
                if not isinstance(exc, Exception):  # Ctrl-C mid-statement: the protocol state is unknown
                    close_quietly(conn)
                raise
        finally:
            if conn is not None and conn.open:
                with self._lock:
                    self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            close_quietly(conn)


class ValueReader:
    """The values of a one-column result read through an unbuffered cursor, straight from the
    connection's socket buffer.

    PyMySQL parses each row packet in Python, a dozen calls per row: 2.7 s of CPU for a million
    rows, most of a MySQL read. Here a row packet costs two buffered reads and a slice. Only rows
    go this way: the packet that ends the result, or reports an error, is handed to PyMySQL's own
    code, so warnings and errors come out as they always do. When the connection does not have the
    parts this relies on (another PyMySQL version), ``fetchmany`` reads instead.
    """

    _NEEDS = ("_rfile", "_next_seq_id", "_sock", "_read_timeout", "_current_timeout", "_force_close", "encoding")

    def __init__(self, cur: Any):
        self._cur = cur
        self._conn = conn = cur.connection
        self._result = result = getattr(conn, "_result", None)
        self._fast = (all(hasattr(conn, name) for name in self._NEEDS) and result is not None
                      and getattr(result, "unbuffered_active", False) and getattr(result, "field_count", 0) == 1)

    def take(self, count: int) -> list:
        """Up to ``count`` values (fewer only at the end of the result)."""
        if not self._fast:
            return [row[0] for row in self._cur.fetchmany(count)]
        conn, result = self._conn, self._result
        if not result.unbuffered_active:
            return []
        if conn._current_timeout != conn._read_timeout:
            conn._sock.settimeout(conn._read_timeout)
            conn._current_timeout = conn._read_timeout
        values: list = []
        append, read, seq = values.append, conn._rfile.read, conn._next_seq_id
        try:
            while len(values) < count:
                header = read(4)
                if len(header) < 4:
                    self._lost("the server closed the connection")
                if header[3] != seq:
                    self._out_of_order(header[3], seq)
                seq = (seq + 1) % 256
                length = header[0] | header[1] << 8 | header[2] << 16
                payload = read(length)
                if len(payload) < length:
                    self._lost("the server closed the connection")
                if length == 0xFFFFFF:  # a packet of 16 MB or more continues in the next ones
                    payload, seq = self._rest(payload, seq)
                first = payload[0]
                if first < 0xFB:  # a length-encoded string, its length in this byte
                    append(payload[1:1 + first])
                elif first == 0xFC:
                    append(payload[3:3 + (payload[1] | payload[2] << 8)])
                elif first == 0xFD:
                    append(payload[4:4 + (payload[1] | payload[2] << 8 | payload[3] << 16)])
                elif first == 0xFE and len(payload) >= 9:
                    append(payload[9:9 + int.from_bytes(payload[1:9], "little")])
                elif first == 0xFB:
                    append(None)
                else:  # the end of the result (0xFE) or an error (0xFF): PyMySQL's own handling
                    conn._next_seq_id = seq
                    self._last(payload)
                    break
        except OSError as exc:
            self._lost(str(exc))
        conn._next_seq_id = seq
        return values

    def _rest(self, payload: bytes, seq: int) -> tuple[bytes, int]:
        parts = [payload]
        while True:
            header = self._conn._rfile.read(4)
            if len(header) < 4:
                self._lost("the server closed the connection")
            if header[3] != seq:
                self._out_of_order(header[3], seq)
            seq = (seq + 1) % 256
            length = header[0] | header[1] << 8 | header[2] << 16
            part = self._conn._rfile.read(length)
            if len(part) < length:
                self._lost("the server closed the connection")
            parts.append(part)
            if length < 0xFFFFFF:
                return b"".join(parts), seq

    def _lost(self, why: str) -> None:
        from pymysql import err

        self._conn._force_close()
        raise err.OperationalError(2013, f"Lost connection to MySQL server during query ({why})")

    def _out_of_order(self, got: int, expected: int) -> None:
        from pymysql import err

        self._conn._force_close()
        raise err.InternalError(f"Packet sequence number wrong - got {got} expected {expected}")

    def _last(self, payload: bytes) -> None:
        from pymysql.protocol import MysqlPacket

        result = self._result
        packet = MysqlPacket(payload, self._conn.encoding)
        if packet.is_error_packet():
            result.unbuffered_active = False
            packet.raise_for_error()
        result._check_packet_is_eof(packet)
        result.unbuffered_active = False
        result.connection = None
        result.rows = None


def abandon_stream(conn: Any) -> None:
    """Close a connection in the middle of an unbuffered result without reading the rest of it.
    PyMySQL would otherwise read every remaining row when the cursor or result is collected."""
    result = getattr(conn, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    close_quietly(conn)


def close_quietly(conn: Any) -> None:
    """Close a connection that may already be broken; the server drops the session either way."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already closed or the socket is gone: nothing left to do
        pass
