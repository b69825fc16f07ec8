"""Connections to PostgreSQL: opening them, a small pool for the writers, and the translation of
driver errors into Portl's exception tree.

psycopg is imported here, and this module is imported only once a job uses Postgres.

Which failures are worth retrying (:class:`~portl.errors.TransientError`): deadlocks (40P01),
serialization failures (40001), lock timeouts (55P03), cancelled statements (57014), a session
the server ended (57P01: a shutdown, or ``pg_terminate_backend``), the server shutting down or
starting up (57P02, 57P03), too many connections (53300), and a connection that was refused or
dropped. Everything else (bad credentials, a missing database or table, a missing privilege, a
value the column's type does not accept) is a :class:`~portl.errors.TerminalError`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import psycopg
from psycopg.pq import TransactionStatus

from portl.connectors.postgres.config import Config
from portl.errors import ConnectorError, SourceError, TerminalError, TransientError
from portl.secrets import mask_url

TRANSIENT_STATES = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
    "55P03": "lock not available",
    "57014": "statement cancelled",
    "57P01": "the server ended the session",
    "57P02": "the server is shutting down",
    "57P03": "the server is not accepting connections yet",
    "53300": "too many connections",
}


def connect(config: Config, base_dir: str) -> psycopg.Connection:
    """A new autocommit connection with the session settings Portl's reads and writes rely on."""
    try:
        conn = psycopg.connect(autocommit=True, **config.connect_kwargs(base_dir))
    except psycopg.Error as exc:
        raise connect_error(exc, config) from exc
    try:
        # ISO dates, UTC timestamps, hex bytea and shortest exact floats are what the COPY text
        # parsers expect; lock_timeout keeps DDL and upserts from hanging behind another session.
        conn.execute(
            "SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, MDY', false), "
            "set_config('bytea_output', 'hex', false), set_config('extra_float_digits', '1', false), "
            "set_config('client_min_messages', 'warning', false), set_config('lock_timeout', %s, false)",
            (f"{int(config.lock_timeout * 1000)}ms",),
        )
    except psycopg.Error as exc:
        conn.close()
        raise translate(exc, f"setting up a session on {config.location()}") from exc
    return conn


def connect_error(exc: psycopg.Error, config: Config) -> ConnectorError:
    """Why a connection could not be opened, in one sentence that says what to check."""
    text = mask_url(str(exc))
    reason = text.rsplit(" failed: ", 1)[-1].strip()
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason).split("\n")[0].strip()
    where = f"cannot connect to PostgreSQL at {config.location()}"
    lowered = reason.lower()
    if "connection refused" in lowered:
        return TransientError(f"{where}: connection refused; is the server running and listening on that port?")
    if "timeout expired" in lowered:
        return TransientError(f"{where}: no answer within connect_timeout ({config.connect_timeout} s)")
    if "starting up" in lowered or "shutting down" in lowered or "too many" in lowered or "remaining connection slots" in lowered:
        return TransientError(f"{where}: {reason}")
    if "does not exist" in lowered and lowered.startswith("database"):
        return TerminalError(f"{where}: {reason}; check `database` (or the url), or create it first")
    if "does not exist" in lowered and lowered.startswith("role"):
        return TerminalError(f"{where}: {reason}; check `user` (or the url)")
    if "password" in lowered:
        return TerminalError(f"{where}: {reason}; check `user` and `password` (or the url)")
    if "could not translate host name" in lowered:
        return TerminalError(f"{where}: unknown host; check `host` (or the url)")
    return TerminalError(f"{where}: {reason}")


def translate(exc: psycopg.Error, doing: str, *, table: str | None = None, privilege: str | None = None,
              on: str | None = None, user: str | None = None, source: bool = False) -> ConnectorError:
    """A psycopg error met while ``doing`` something, as a Portl error.

    ``table`` names the table in the message for a missing table (a :class:`SourceError` when
    ``source``); ``privilege`` (``SELECT``), ``on`` (``public.t``, ``SCHEMA public``) and
    ``user`` complete the message for a missing privilege with the GRANT that fixes it.
    """
    state = getattr(exc, "sqlstate", None)
    message = _server_message(exc)
    if state in TRANSIENT_STATES:
        return TransientError(f"{doing}: {message} ({TRANSIENT_STATES[state]}; worth retrying)")
    if (state is None and isinstance(exc, psycopg.OperationalError)) or (state or "").startswith("08"):
        # psycopg puts the libpq call that failed first ("consuming input failed: ..."): the
        # reason after it is what a user can read.
        reason = re.sub(r"^[a-z][a-z ]* failed: ", "", message)
        return TransientError(f"{doing}: the connection to the server was lost ({reason}); worth retrying")
    if state == "42P01":
        error = SourceError if source else TerminalError
        return error(f"{doing}: table {table} does not exist" if table else f"{doing}: {message}")
    if state == "42501" and privilege:
        target = on or table
        who = user or "the user"
        return TerminalError(f"{doing}: {message}; {who} needs the {privilege} privilege on {target}: "
                             f"GRANT {privilege} ON {target} TO {user or '<user>'}")
    return TerminalError(f"{doing}: {message}")


def _server_message(exc: psycopg.Error) -> str:
    """The server's message with its detail and where it happened (``COPY t, line 3, column id: "x"``)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return mask_url(str(exc).strip().split("\n")[0])
    parts = [primary]
    if diag.message_detail:
        parts.append(diag.message_detail)
    if diag.context and diag.context.startswith("COPY"):
        parts.append(f"at {diag.context.splitlines()[0]}")
    # The server ends its detail with a full stop ("Key (id)=(1) already exists."): the parts are
    # clauses of one sentence here, and more text may follow after a semicolon.
    return mask_url("; ".join(part.strip().removesuffix(".") for part in parts))


@dataclass(eq=False)
class Session:
    """One connection of the pool: the transaction object a sink hands to the engine. ``lock``
    serialises work on the connection when several threads share one transaction
    (``transaction: job`` with parallel workers)."""

    conn: psycopg.Connection
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def usable(self) -> bool:
        return not self.conn.closed and self.conn.info.transaction_status == TransactionStatus.IDLE


class Pool:
    """A few open connections for concurrent writers.

    Each transaction takes a session and gives it back when it ends; a broken session is closed
    instead of kept. (``psycopg_pool`` would do, but it is not a dependency, and this is all the
    writers need.)
    """

    def __init__(self, config: Config, base_dir: str, keep: int = 4):
        self.config, self.base_dir, self.keep = config, base_dir, keep
        self._idle: list[Session] = []
        self._all: set[Session] = set()
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Session:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        session = Session(connect(self.config, self.base_dir))
        with self._lock:
            self._all.add(session)
        return session

    def give(self, session: Session) -> None:
        with self._lock:
            if not self._closed and session.usable and len(self._idle) < self.keep:
                self._idle.append(session)
                return
            self._all.discard(session)
        session.conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions, self._all, self._idle = list(self._all), set(), []
        for session in sessions:
            session.conn.close()
