"""Parquet files: row-group streaming reads, and writes with an atomic rename."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portl.connectors.config import ConnectorConfig


class Config(ConnectorConfig):
    """A Parquet file (``type: parquet``)."""

    type: Literal["parquet"]
    path: str = Field(description="File path, relative to the job file's folder.")
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field("zstd", description="Codec used when writing.")

    def describe(self) -> str:
        return self.path
