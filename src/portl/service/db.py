"""The state database: an SQLAlchemy engine and session factory for the settings' URL.

SQLite gets foreign keys switched on, write-ahead logging (readers do not wait for a writer) and
real transactions (Python's sqlite3 would run DDL outside any, so a failed migration could leave
half a schema); PostgreSQL gets a connection pool that checks a connection before handing it out. A database
that cannot be reached is a :class:`~portl.errors.ServiceError` naming it, password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from portl.errors import ServiceError
from portl.secrets import mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30
WRITE_LOCK = "portl_write_lock"
"""Execution option: on SQLite, a transaction of a connection with it set takes the database's
write lock as it begins (``BEGIN IMMEDIATE``), so that it reads what it then writes unchanged."""


def create_engine(url: str) -> Engine:
    """An engine for ``url`` (a URL as :func:`portl.service.settings.normalise_url` returns it)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        sqlalchemy.event.listen(engine, "connect", _sqlite_connect)
        sqlalchemy.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sqlalchemy.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                    connect_args={"connect_timeout": 10})


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 begins nothing itself: _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_LOCK) else "BEGIN")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine``; objects stay readable after commit (the CLI prints them then)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def check_reachable(engine: Engine) -> None:
    """Connect once; a failure becomes a ServiceError naming the database and what to check."""
    try:
        with engine.connect():
            pass
    except Exception as exc:  # the driver's own errors differ by database: all mean "not reachable"
        raise unreachable(engine, exc) from exc


def unreachable(engine: Engine, exc: BaseException) -> ServiceError:
    """The error for a state database that refused or failed a connection."""
    reason = getattr(exc, "orig", None) or exc
    first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    shown = mask_url(engine.url.render_as_string(hide_password=False))
    return ServiceError(f"cannot reach the service's state database {shown}: {mask_url(first_line)}; check "
                        "PORTL_SERVICE_DATABASE and that the server is running")
