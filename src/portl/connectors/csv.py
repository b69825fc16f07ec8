"""CSV and TSV files: streaming reads in byte blocks cut at record boundaries, and writes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portl.connectors.config import ConnectorConfig


class Config(ConnectorConfig):
    """A delimited text file (``type: csv`` or ``type: tsv``)."""

    type: Literal["csv", "tsv"]
    path: str = Field(description="File path, relative to the job file's folder.")
    delimiter: str | None = Field(None, description="Field separator; ',' for csv, a tab for tsv.")
    quote_char: str | None = Field('"', description="Quote character; null turns quoting off.")
    escape_char: str | None = Field(None, description="Escape character inside quoted fields (default: doubled quotes).")
    header: bool = Field(True, description="The first line holds column names.")
    columns: list[str] | None = Field(None, description="Column names, for files without a header (or to rename them all).")
    encoding: str = Field("utf-8", description="Text encoding, e.g. utf-8, latin-1, cp1252, utf-16.")
    compression: Literal["auto", "gzip", "none"] = Field("auto", description="'auto' detects gzip from the .gz suffix.")
    null_values: list[str] = Field([""], description="Unquoted values read as NULL. A quoted empty string stays an empty string.")
    skip_rows: int = Field(0, ge=0, description="Lines to skip before the header.")
    allow_empty: bool = Field(False, description="Accept a file with no data rows instead of failing.")

    def describe(self) -> str:
        return self.path

    @property
    def field_delimiter(self) -> str:
        return self.delimiter or ("\t" if self.type == "tsv" else ",")
