"""The settings of a PostgreSQL connection, as a job or a connections file writes them."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from portl.connectors.config import Incremental, ServerConfig, resolve_path
from portl.secrets import Secret

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432


class Config(ServerConfig):
    """A PostgreSQL database (``type: postgres``)."""

    type: Literal["postgres", "postgresql"]
    url: str | None = Field(
        None,
        description="Connection URL, e.g. postgresql://user:password@host:5432/db. Its password is masked "
        "in plans, logs and messages. The separate fields below override the matching part of it.",
    )
    host: str | None = Field(None, description="Server host name or address (default 127.0.0.1, or the host in url).")
    port: int | None = Field(None, ge=1, le=65535, description="Server port (default 5432, or the port in url).")
    user: str | None = Field(None, description="User (role) to connect as.")
    password: Secret | None = Field(None, description="Password of the user; never printed.")
    database: str | None = Field(None, description="Database to connect to.")
    schema_: str = Field(
        "public", alias="schema",
        description="Schema of `table` when it names no schema; for a whole-database copy, where tables are read "
        "from (tables: '*') or written to.",
    )
    table: str | None = Field(None, description="Table to read or write; `sales.orders` names its schema.")
    tables: str | list[str] | None = Field(
        None,
        description="Source only, for whole-database copies: '*' (every table of `schema`), 'sales.*' (every "
        "table of schema sales), or a list of table names.",
    )
    query: str | None = Field(None, description="Source only: a SELECT to read instead of a table.")
    incremental: Incremental | None = Field(
        None, description="Source only: read only the rows whose cursor column grew since the job's last finished run.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description="libpq sslmode, passed through."
    )
    sslrootcert: str | None = Field(None, description="CA certificate file (relative to the job file's folder).")
    sslcert: str | None = Field(None, description="Client certificate file (relative to the job file's folder).")
    sslkey: str | None = Field(None, description="Client private key file (relative to the job file's folder).")
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for the server to answer a new connection.")
    application_name: str = Field("portl", description="Shown in pg_stat_activity for Portl's sessions.")
    lock_timeout: float = Field(
        10, gt=0,
        description="Seconds a statement waits for a lock held by another session (DDL, the replace swap, rows "
        "being upserted) before it fails with a retryable error.",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("url must start with postgresql:// (e.g. postgresql://user:password@host:5432/db)")
        return value

    @field_validator("tables")
    @classmethod
    def _tables_shape(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, str) and value != "*" and not value.endswith(".*"):
            raise ValueError("tables takes '*', 'schema.*' or a list of table names")
        if isinstance(value, list) and not value:
            raise ValueError("tables lists no table")
        return value


    # where and what

    def location(self) -> str:
        """``host:port``, for messages."""
        host, port, _ = self._url_parts()
        return f"{self.host or host or DEFAULT_HOST}:{self.port or port or DEFAULT_PORT}"

    def database_name(self) -> str:
        return self.database or self._url_parts()[2] or (self.user or "postgres")

    def describe(self) -> str:
        if self.table:
            what = self.table if "." in self.table else f"{self.schema_}.{self.table}"
        elif self.tables:
            what = "tables " + (self.tables if isinstance(self.tables, str) else ", ".join(self.tables))
        elif self.query:
            what = "(query)"
        else:
            what = f"schema {self.schema_}"
        return f"{self.location()}/{self.database_name()} {what}"

    def _url_parts(self) -> tuple[str | None, int | None, str | None]:
        if not self.url:
            return None, None, None
        try:
            parts = urlsplit(self.url)
            return parts.hostname, parts.port, unquote(parts.path.lstrip("/")) or None
        except ValueError:  # several hosts, or a port that is not a number: libpq will say
            return None, None, None

    def connect_kwargs(self, base_dir: str) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``: the URL, then each field given."""
        kwargs: dict[str, Any] = {"conninfo": self.url or "", "connect_timeout": self.connect_timeout,
                                  "application_name": self.application_name}
        if not self.url:
            kwargs.update(host=DEFAULT_HOST, port=DEFAULT_PORT)
        for key, value in (("host", self.host), ("port", self.port), ("user", self.user), ("dbname", self.database),
                           ("sslmode", self.sslmode)):
            if value is not None:
                kwargs[key] = value
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        for key in ("sslrootcert", "sslcert", "sslkey"):
            path = getattr(self, key)
            if path is not None:
                kwargs[key] = resolve_path(path, base_dir)
        return kwargs
