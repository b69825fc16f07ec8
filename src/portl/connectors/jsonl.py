"""JSON lines files: one JSON object per line, streamed in blocks; and writes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portl.connectors.config import ConnectorConfig


class Config(ConnectorConfig):
    """A JSON lines file (``type: jsonl``), optionally gzip-compressed."""

    type: Literal["jsonl"]
    path: str = Field(description="File path, relative to the job file's folder.")
    encoding: str = Field("utf-8", description="Text encoding.")
    compression: Literal["auto", "gzip", "none"] = Field("auto", description="'auto' detects gzip from the .gz suffix.")
    allow_empty: bool = Field(False, description="Accept a file with no rows instead of failing.")

    def describe(self) -> str:
        return self.path
