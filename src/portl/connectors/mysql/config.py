"""The settings of a MySQL or MariaDB connection, as a job or a connections file writes them."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from portl.connectors.config import Incremental, ServerConfig, resolve_path
from portl.errors import TerminalError
from portl.secrets import Secret, mask_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3306
SCHEMES = ("mysql://", "mariadb://", "mysql+pymysql://")


class Config(ServerConfig):
    """A MySQL or MariaDB database (``type: mysql`` or ``type: mariadb``)."""

    type: Literal["mysql", "mariadb"]
    url: str | None = Field(
        None,
        description="Connection URL, e.g. mysql://user:password@host:3306/db. Its password is masked in plans, "
        "logs and messages. The separate fields below override the matching part of it.",
    )
    host: str | None = Field(None, description="Server host name or address (default 127.0.0.1, or the host in url).")
    port: int | None = Field(None, ge=1, le=65535, description="Server port (default 3306, or the port in url).")
    user: str | None = Field(None, description="User to connect as (default root, or the user in url).")
    password: Secret | None = Field(None, description="Password of the user; never printed.")
    database: str | None = Field(None, description="Database (schema) to use; required here or in url.")
    table: str | None = Field(None, description="Table to read or write; `otherdb.orders` names its database.")
    tables: str | list[str] | None = Field(
        None, description="Source only, for whole-database copies: '*' (every table of the database) or a list of table names."
    )
    query: str | None = Field(None, description="Source only: a SELECT to read instead of a table.")
    incremental: Incremental | None = Field(
        None, description="Source only: read only the rows whose cursor column grew since the job's last finished run.")
    ssl_ca: str | None = Field(None, description="CA certificate file to verify the server with (relative to the job file's folder).")
    ssl_cert: str | None = Field(None, description="Client certificate file (relative to the job file's folder).")
    ssl_key: str | None = Field(None, description="Client private key file (relative to the job file's folder).")
    ssl_verify: bool | None = Field(None, description="Check the server certificate (and its host name) against ssl_ca; passed through to the driver.")
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for the server to answer a new connection.")
    local_infile: bool = Field(
        True,
        description="Write with LOAD DATA LOCAL INFILE when the server allows it (its local_infile variable is ON); "
        "false, or a server that refuses it, means large multi-row INSERTs.",
    )
    charset: str = Field("utf8mb4", description="Connection character set; keep utf8mb4 unless the server lacks it.")

    @field_validator("url")
    @classmethod
    def _mysql_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(SCHEMES):
            raise ValueError("url must start with mysql:// (e.g. mysql://user:password@host:3306/db)")
        return value

    @field_validator("tables")
    @classmethod
    def _tables_shape(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, str) and value != "*":
            raise ValueError("tables takes '*' or a list of table names")
        if isinstance(value, list) and not value:
            raise ValueError("tables lists no table")
        return value


    # where and what

    def _url(self) -> dict[str, Any]:
        if not self.url:
            return {}
        try:
            parts = urlsplit(self.url)
            found = {"host": parts.hostname, "port": parts.port,
                     "user": unquote(parts.username) if parts.username else None,
                     "password": unquote(parts.password) if parts.password is not None else None,
                     "database": unquote(parts.path.lstrip("/")) or None}
        except ValueError as exc:  # a port that is not a number
            raise TerminalError(f"cannot read the MySQL url {mask_url(self.url)}: {exc}") from None
        return found

    @property
    def host_name(self) -> str:
        return self.host or self._url().get("host") or DEFAULT_HOST

    @property
    def port_number(self) -> int:
        return self.port or self._url().get("port") or DEFAULT_PORT

    @property
    def user_name(self) -> str:
        return self.user or self._url().get("user") or "root"

    @property
    def database_name(self) -> str | None:
        return self.database or self._url().get("database")

    def location(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host_name}:{self.port_number}"

    def describe(self) -> str:
        if self.table:
            what = self.table
        elif self.tables:
            what = "tables " + (self.tables if isinstance(self.tables, str) else ", ".join(self.tables))
        elif self.query:
            what = "(query)"
        else:
            what = ""
        where = f"{self.user_name}@{self.location()}/{self.database_name or ''}"
        return f"{where} {what}".rstrip()

    def connect_kwargs(self, base_dir: str) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect``: the URL's parts, then each field given."""
        url = self._url()
        if self.password is not None:
            password = self.password.get_secret_value()
        else:
            password = url.get("password") or ""
        kwargs: dict[str, Any] = {
            "host": self.host_name, "port": self.port_number, "user": self.user_name, "password": password,
            "database": self.database_name, "charset": self.charset, "connect_timeout": self.connect_timeout,
        }
        for key in ("ssl_ca", "ssl_cert", "ssl_key"):
            path = getattr(self, key)
            if path is not None:
                kwargs[key] = resolve_path(path, base_dir)
        if self.ssl_verify is not None:
            kwargs["ssl_verify_cert"] = self.ssl_verify
            kwargs["ssl_verify_identity"] = self.ssl_verify
        return kwargs
