"""Running jobs against the local Sheets API."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import portl
from tests.fakes.sheets_server import SheetsServer

DATE = {"type": "DATE", "pattern": "yyyy-mm-dd"}
DATE_TIME = {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}


def job(tmp_path: Path, text: str, name: str = "sheet_job") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n" + textwrap.dedent(text))
    return str(path)


def run(path: str, tmp_path: Path, **options):
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), **options))
    finally:
        the_plan.close()


def rows_of(database: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def write_csv(tmp_path: Path, text: str, name: str = "in.csv") -> None:
    (tmp_path / name).write_text(textwrap.dedent(text).lstrip())


def data(server: SheetsServer, spreadsheet: str, tab: str) -> list[list]:
    return server.values(spreadsheet, tab)
