"""The settings of a Snowflake connection, named as ``snowflake.connector.connect()`` names them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from portl.connectors.config import Incremental, ServerConfig, resolve_path
from portl.secrets import Secret


class Config(ServerConfig):
    """A Snowflake table or query (``type: snowflake``)."""

    type: Literal["snowflake"]
    account: str = Field(..., description="Account identifier, e.g. myorg-myaccount (or xy12345.eu-central-1).")
    user: str = Field(..., description="User to log in as.")
    password: Secret | None = Field(None, description="Password of the user; never printed.")
    authenticator: str | None = Field(
        None, description="How to log in when not with a password: snowflake_jwt (key pair, with private_key_file), "
        "externalbrowser, oauth, or an Okta URL; passed through.",
    )
    private_key_file: str | None = Field(
        None, description="PEM private key for key-pair login (relative to the job file's folder).",
    )
    private_key_file_pwd: Secret | None = Field(None, description="Passphrase of private_key_file; never printed.")
    token: Secret | None = Field(None, description="OAuth token (authenticator: oauth); never printed.")
    host: str | None = Field(None, description="Host to connect to, when not <account>.snowflakecomputing.com.")
    port: int | None = Field(None, ge=1, le=65535, description="Port (default 443).")
    protocol: Literal["https", "http"] | None = Field(None, description="https (default) or http.")
    database: str = Field(..., description="Database of the table.")
    schema_: str = Field("PUBLIC", alias="schema", description="Schema of the table (default PUBLIC).")
    warehouse: str | None = Field(None, description="Warehouse that runs the queries, COPY and MERGE.")
    role: str | None = Field(None, description="Role to use.")
    table: str | None = Field(
        None, description="Table to read or write. Written as Snowflake reads a quoted name (case kept); a name "
        "in lower case that does not exist is also looked for in upper case (a table created unquoted).",
    )
    query: str | None = Field(None, description="Source only: a SELECT to read instead of a table.")
    incremental: Incremental | None = Field(
        None, description="Source only: read only the rows whose cursor column grew since the job's last finished run.")
    order_by: list[str] | None = Field(
        None, description="Source only: columns that order the rows uniquely (a key). A resumed read skips the "
        "rows already loaded in this order; without it every column orders the rows.",
    )
    session_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Session parameters set at login (e.g. QUERY_TAG); passed through.",
    )
    login_timeout: int = Field(60, ge=1, description="Seconds to wait for the login to answer.")
    network_timeout: int | None = Field(None, ge=1, description="Seconds to wait for a request to answer.")

    @field_validator("order_by")
    @classmethod
    def _some_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("order_by lists no column")
        return value

    def location(self) -> str:
        """The account (or host), database and schema, for messages; never a secret."""
        where = self.host or f"{self.account}.snowflakecomputing.com"
        return f"{where}/{self.database}.{self.schema_}"

    def describe(self) -> str:
        what = self.table or "(query)"
        return f"snowflake {self.location()} {what}"

    def connect_kwargs(self, base_dir: str) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect``. Every session works in UTC, so
        that TIMESTAMP_LTZ values and text without an offset mean the same thing on both sides."""
        kwargs: dict[str, Any] = {
            "account": self.account, "user": self.user, "database": self.database, "schema": self.schema_,
            "login_timeout": self.login_timeout, "application": "portl",
            "session_parameters": {**self.session_parameters, "TIMEZONE": "UTC"},
        }
        for key in ("host", "port", "protocol", "warehouse", "role", "authenticator", "network_timeout"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value
        for key in ("password", "private_key_file_pwd", "token"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value.get_secret_value()
        if self.private_key_file is not None:
            kwargs["private_key_file"] = resolve_path(self.private_key_file, base_dir)
        return kwargs
