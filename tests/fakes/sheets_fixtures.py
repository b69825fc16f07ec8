"""pytest fixtures for the local Google Sheets API: a server per test, and credentials for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.sheets_server import SheetsServer

TOKEN = "test-access-token"
REFRESH = "test-refresh-token"


@dataclass
class LocalSheets:
    """A running :class:`SheetsServer` that accepts only ``TOKEN``, and an OAuth authorized-user
    file (``credentials``) whose refresh gets that token from the server's token endpoint."""

    server: SheetsServer
    credentials: Path

    def destination(self, spreadsheet: str, sheet: str, **extra: str) -> str:
        """A flow-style YAML mapping for a job's source or destination."""
        fields = {"type": "gsheet", "spreadsheet": spreadsheet, "sheet": sheet, "endpoint": self.server.url,
                  "credentials": str(self.credentials), "retry_wait": "0.01", **extra}
        return "{" + ", ".join(f"{k}: {json.dumps(v) if k in ('endpoint', 'credentials', 'sheet') else v}"
                               for k, v in fields.items()) + "}"


def start_local_sheets(folder: Path) -> LocalSheets:
    server = SheetsServer()
    server.tokens = {TOKEN}
    server.refresh_tokens = {REFRESH: TOKEN, "service-account": TOKEN}
    path = folder / "google-user.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "portl-tests", "client_secret": "not-secret",
                                "refresh_token": REFRESH, "token_uri": server.token_uri}))
    return LocalSheets(server, path)


@pytest.fixture
def local_sheets(tmp_path: Path) -> Iterator[LocalSheets]:
    """The local Sheets API for one test (``.server``, ``.credentials``, ``.destination(...)``)."""
    sheets = start_local_sheets(tmp_path)
    try:
        yield sheets
    finally:
        sheets.server.close()


@pytest.fixture
def gsheet_url(local_sheets: LocalSheets) -> str:
    """For the conformance suite: the keys that put a ``gsheet`` sink on a fresh spreadsheet of
    the local server (stands for ``%(url)s`` in its line of SINKS)."""
    local_sheets.server.create("conformance", sheets={"Sheet1": []})
    return (f"spreadsheet: conformance, endpoint: '{local_sheets.server.url}', "
            f"credentials: '{local_sheets.credentials}', retry_wait: 0.01")
