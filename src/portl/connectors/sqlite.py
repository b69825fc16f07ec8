"""SQLite databases: read a table or a query; write append / replace / upsert in bulk."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from portl.connectors.config import ConnectorConfig


class Config(ConnectorConfig):
    """A SQLite database file (``type: sqlite``)."""

    type: Literal["sqlite"]
    path: str = Field(description="Database file, relative to the job file's folder; created when written to.")
    table: str | None = Field(None, description="Table to read or write.")
    query: str | None = Field(None, description="SELECT to read instead of a table (sources only).")

    @model_validator(mode="after")
    def _table_or_query(self) -> "Config":
        if self.table and self.query:
            raise ValueError("give either 'table' or 'query', not both")
        return self

    def describe(self) -> str:
        return f"{self.path}:{self.table or '(query)'}"
