"""The hidden tab ``_portl_checkpoints``: one row per run and partition, written in the same
batchUpdate as the batch it describes.

Only Portl writes this tab, and it keeps its rows together (a run forgotten has its rows deleted,
not blanked), so the row a new checkpoint lands on is known without asking: the one after the
last. The rows are read whole (they are few) whenever the engine asks what is committed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from portl.connectors.base import Checkpoint, RunCheckpoints, group_checkpoints
from portl.connectors.gsheet.client import SheetsApi, quote_sheet

TITLE = "_portl_checkpoints"
HEADER = ["run_id", "partition", "checkpoint", "state", "updated_at", "sheet"]
WIDTH = len(HEADER)

Where = tuple[str, str]
"""(run id, partition)."""


def text_row(values: list[str]) -> dict:
    """A RowData of text cells."""
    return {"values": [{"userEnteredValue": {"stringValue": v}} for v in values]}


class CheckpointTab:
    """The checkpoint rows of one spreadsheet. ``sheet_id()`` gives the tab's id (None while it
    does not exist); ``tab`` is the title of the tab whose loads this sink writes."""

    def __init__(self, api: SheetsApi, sheet_id: Callable[[], int | None], tab: str):
        self.api, self.sheet_id, self.tab = api, sheet_id, tab
        self.rows: dict[Where, int] | None = None  # (run, partition) -> 1-based row
        self.count = 0  # rows in the tab, the header included

    # -- set-up ----------------------------------------------------------------------------------

    @staticmethod
    def add_request() -> dict:
        return {"addSheet": {"properties": {"title": TITLE, "hidden": True, "gridProperties": {
            "rowCount": 1, "columnCount": WIDTH}}}}

    def header_request(self) -> dict | None:
        """The header row, for a tab that has none yet."""
        if self.rows is None:
            self.read()
        if self.count:
            return None
        self.count = 1  # written with the set-up requests
        return {"updateCells": {"start": {"sheetId": self.sheet_id(), "rowIndex": 0, "columnIndex": 0},
                                "rows": [text_row(HEADER)], "fields": "userEnteredValue"}}

    # -- reading ---------------------------------------------------------------------------------

    def read(self) -> dict[Where, list[str]]:
        """Every checkpoint row, as text, by (run, partition); the row index is kept up to date."""
        if self.sheet_id() is None:
            self.rows, self.count = {}, 0
            return {}
        api = self.api
        answer = api.call(lambda: api.values.get(spreadsheetId=api.spreadsheet, range=f"{quote_sheet(TITLE)}!A1:F",
                                                 valueRenderOption="UNFORMATTED_VALUE"), "reading the checkpoints of")
        values = answer.get("values", [])
        found: dict[Where, list[str]] = {}
        self.rows = {}
        for at, row in enumerate(values[1:], start=2):
            row = [str(v) for v in row] + [""] * (WIDTH - len(row))
            if row[0]:
                found[(row[0], row[1])] = row[:WIDTH]
                self.rows[(row[0], row[1])] = at
        self.count = len(values)
        return found

    def load(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        out = {}
        for (run, _), row in self.read().items():
            if run == run_id:
                checkpoint = Checkpoint.from_json(json.loads(row[2]))
                out[checkpoint.partition] = (checkpoint, json.loads(row[3] or "{}"))
        return out

    def of_job(self, job: str) -> dict[str, RunCheckpoints]:
        found = []
        for (run, _), row in self.read().items():
            state = json.loads(row[3] or "{}")
            if state.get("job") == job and row[5] in ("", self.tab):
                found.append((run, json.loads(row[2]), state))
        return group_checkpoints(found)

    # -- writing ---------------------------------------------------------------------------------

    def row(self, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> list[str]:
        return [run_id, checkpoint.partition, json.dumps(checkpoint.to_json()), json.dumps(state),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), self.tab]

    def requests(self, checkpoints: dict[Where, list[str]]) -> tuple[list[dict], dict[Where, int]]:
        """The requests that write ``checkpoints`` (an existing row updated in place, new rows
        appended), and the rows the new ones will land on, for :meth:`committed`."""
        if not checkpoints:
            return [], {}
        if self.rows is None:
            self.read()
        sheet_id = self.sheet_id()
        out: list[dict] = []
        placed: dict[Where, int] = {}
        fresh: list[list[str]] = []
        for where, row in checkpoints.items():
            at = self.rows.get(where)
            if at is not None:
                out.append({"updateCells": {"start": {"sheetId": sheet_id, "rowIndex": at - 1, "columnIndex": 0},
                                            "rows": [text_row(row)], "fields": "userEnteredValue"}})
            else:
                placed[where] = self.count + len(fresh) + 1
                fresh.append(row)
        if fresh:
            out.append({"appendCells": {"sheetId": sheet_id, "rows": [text_row(r) for r in fresh],
                                        "fields": "userEnteredValue"}})
        return out, placed

    def committed(self, placed: dict[Where, int]) -> None:
        for where, at in placed.items():
            self.rows.setdefault(where, at)
        self.count = max([self.count, *placed.values()])

    def landed(self, checkpoints: dict[Where, list[str]]) -> bool:
        """Whether every one of ``checkpoints`` is in the tab, as written (a request whose answer
        was lost did apply)."""
        saved = self.read()
        return all(saved.get(where) == row for where, row in checkpoints.items())

    def forget(self, run_id: str) -> None:
        """Delete the rows of a run that will not be continued."""
        self.read()
        rows = sorted((at for (run, _), at in (self.rows or {}).items() if run == run_id), reverse=True)
        if not rows:
            return
        sheet_id = self.sheet_id()
        requests = [{"deleteDimension": {"range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": at - 1,
                                                   "endIndex": at}}} for at in rows]
        self.api.batch_update(requests, "forgetting an old run in", landed=lambda: not self.load(run_id))
        self.read()
