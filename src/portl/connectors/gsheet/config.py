"""The settings of a Google Sheets tab, as a job or a connections file writes them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from portl.connectors.config import ConnectorConfig
from portl.secrets import Secret

DEFAULT_ENDPOINT = "https://sheets.googleapis.com"
_URL_ID = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def spreadsheet_id(text: str) -> str:
    """The spreadsheet ID in ``text``: the ID itself, or a full URL of the spreadsheet
    (``https://docs.google.com/spreadsheets/d/ID/edit#gid=0``). Raises ValueError otherwise."""
    text = text.strip()
    found = _URL_ID.search(text)
    if found:
        return found.group(1)
    if _ID.match(text):
        return text
    raise ValueError(f"{text!r} is neither a spreadsheet ID nor a Google Sheets URL "
                     "(https://docs.google.com/spreadsheets/d/ID/...)")


class Config(ConnectorConfig):
    """A tab of a Google Sheets spreadsheet (``type: gsheet``)."""

    type: Literal["gsheet"]
    spreadsheet: str = Field(description="The spreadsheet's ID, or its full URL (the ID is taken from it).")
    sheet: str | None = Field(None, description="The tab's name. Sources default to the first tab; destinations must "
                                                "name one (it is created when missing).")
    range: str | None = Field(None, description="Sources only: the cells to read within the tab, in A1 notation "
                                                "(B3:F, A1:D500); its first row is the header. Default: the whole tab.")
    credentials: str | None = Field(None, description="A service-account key file or an OAuth authorized-user file "
                                                      "(told apart by its 'type'), relative to the job file's folder.")
    api_key: Secret | None = Field(None, description="An API key, for reading a public spreadsheet; never printed. "
                                                     "Google refuses writes made with an API key.")
    endpoint: str = Field(DEFAULT_ENDPOINT, description="Root URL of the Sheets API, for a proxy or an emulator.")
    retries: int = Field(5, ge=1, le=20, description="Attempts per request when Google answers 429 (quota) or 5xx, "
                                                   "the first one included.")
    retry_wait: float = Field(1.0, ge=0, description="Seconds before the second attempt; doubles each time, with jitter.")
    sample_rows: int = Field(1000, ge=1, description="Sources: data rows read to infer each column's type.")
    timeout: float = Field(120, gt=0, description="Seconds to wait for one answer of the API.")

    @field_validator("spreadsheet")
    @classmethod
    def _spreadsheet_id(cls, value: str) -> str:
        return spreadsheet_id(value)

    @field_validator("range")
    @classmethod
    def _range_in_tab(cls, value: str | None) -> str | None:
        if value is not None and "!" in value:
            raise ValueError("range is A1 notation within the tab (B3:F), without a sheet name: put that in 'sheet'")
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> Config:
        if self.credentials and self.api_key:
            raise ValueError("give credentials or api_key, not both")
        return self

    def describe(self) -> str:
        tab = f"!{self.sheet}" if self.sheet else ""
        return f"spreadsheet {self.spreadsheet}{tab}"
