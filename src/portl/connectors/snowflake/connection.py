"""Sessions on Snowflake: logging in, the names of tables, and driver errors translated into
Portl's exception tree.

The connector is imported here, and this module is imported only once a job uses Snowflake.

Worth retrying (:class:`~portl.errors.TransientError`): a request that timed out or a connection
that dropped (the driver's ``OperationalError`` and its HTTP errors), a statement cancelled, and a
transaction aborted by a lock wait or a deadlock (Snowflake's 000625, 000630). Anything else (bad
credentials, a missing object, a missing privilege, a value the column refuses) is a
:class:`~portl.errors.TerminalError`.
"""

from __future__ import annotations

import re
from typing import Any

import snowflake.connector
from snowflake.connector import errors as sf_errors

from portl.connectors.snowflake.config import Config
from portl.connectors.snowflake.typemap import quote_ident
from portl.errors import ConnectorError, SourceError, TerminalError, TransientError

TRANSIENT_CODES = {
    604: "the statement was cancelled",
    625: "the statement waited too long for a lock",
    630: "a deadlock was detected",
    390114: "the session's authentication token expired",
}


def connect(config: Config, base_dir: str) -> Any:
    """A new autocommit session in ``config``'s database and schema."""
    try:
        return snowflake.connector.connect(**config.connect_kwargs(base_dir))
    except sf_errors.Error as exc:
        raise translate(exc, f"connecting to Snowflake at {config.location()}", login=True) from exc


def translate(exc: Exception, doing: str, *, source: bool = False, login: bool = False) -> ConnectorError:
    """A driver error as Portl's: what was being done, and the server's own sentence."""
    message = _message(exc)
    errno = getattr(exc, "errno", None)
    if isinstance(exc, (sf_errors.OperationalError, sf_errors.InterfaceError)) or errno in TRANSIENT_CODES:
        reason = TRANSIENT_CODES.get(errno, message)
        return TransientError(f"{doing}: {reason}")
    if login and isinstance(exc, sf_errors.DatabaseError) and "password" in message.lower():
        return TerminalError(f"{doing}: {message}; check `user` and `password` (or the key pair)")
    if "does not exist or not authorized" in message:
        message += "; check the name (a quoted name keeps its case) and the role's privileges"
    error = SourceError if source else TerminalError
    return error(f"{doing}: {message}")


def _message(exc: Exception) -> str:
    """The server's message without the driver's prefix (``002003 (02000): SQL compilation error:``)."""
    text = re.sub(r"^\d{6} \(\w{5}\): ", "", str(getattr(exc, "raw_msg", None) or exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].rstrip(":").lower() == "sql compilation error":
        lines = lines[1:]
    return " ".join(lines) if lines else type(exc).__name__


class TableName:
    """A table as Snowflake names it: ``schema.table`` or just ``table`` (the session's schema),
    each part written as a quoted name keeps it."""

    def __init__(self, schema: str | None, name: str):
        self.schema = schema
        self.name = name

    @classmethod
    def parse(cls, text: str) -> TableName:
        from portl.connectors.sql.dialect import split_qualified

        parts = split_qualified(text)
        if len(parts) == 1:
            return cls(None, parts[0])
        return cls(".".join(parts[:-1]), parts[-1])

    def sibling(self, name: str) -> TableName:
        return TableName(self.schema, name)

    @property
    def sql(self) -> str:
        if self.schema is None:
            return quote_ident(self.name)
        return ".".join(quote_ident(p) for p in self.schema.split(".")) + "." + quote_ident(self.name)

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


def existing_name(cur: Any, table: TableName) -> TableName | None:
    """``table`` as it exists: its name (and schema) as written, else in upper case, the name
    Snowflake gives a table created without quotes; None when none exists."""
    for schema in _spellings(table.schema) if table.schema else [None]:
        for name in _spellings(table.name):
            candidate = TableName(schema, name)
            if table_exists(cur, candidate):
                return candidate
    return None


def _spellings(name: str) -> list[str]:
    """A name as written, then in upper case (Snowflake's name for one written without quotes)."""
    return [name] if name == name.upper() else [name, name.upper()]


def table_exists(cur: Any, table: TableName) -> bool:
    schema = table.schema.split(".")[-1] if table.schema else None
    where = "table_schema = %s" if schema else "table_schema = CURRENT_SCHEMA()"
    params = (schema, table.name) if schema else (table.name,)
    cur.execute(f"SELECT count(*) FROM information_schema.tables WHERE {where} AND table_name = %s", params)
    return cur.fetchone()[0] > 0
