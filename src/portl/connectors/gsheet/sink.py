"""Writing a tab of a spreadsheet: append, replace, or upsert by key columns, each batch and its
checkpoint in ONE ``spreadsheets.batchUpdate``, which Google applies whole or not at all.

A transaction is the list of requests a batch makes (rows to append, rows to update, the tab
cleared for ``replace``, the checkpoint row), held here and sent as one batchUpdate at commit: a
batch that fails before sends nothing, and ``--resume`` continues after the last batch whose
checkpoint is in the spreadsheet. Part of a transaction can be undone (a savepoint is a mark in
the list), so a row the sheet cannot hold (a cell over 50,000 characters, a spreadsheet past 10
million cells) is rejected alone and the others load.

Upserts read the key columns once (one ``values.batchGet``), then know which rows exist: rows
whose key is new are appended (``appendCells``), rows whose key exists are updated in place
(``updateCells``), following the conflict strategy. Checkpoints live in a hidden tab,
``_portl_checkpoints``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from portl.connectors.base import (
    Capabilities, Checkpoint, ColumnInfo, ConflictStrategy, RunCheckpoints, TableInfo, TargetPlan, WriteMode,
    WriteResult, WriteSpec,
)
from portl.connectors.gsheet.cells import MAX_CELLS, Refusal, cell_key_text, column_cells, key_text
from portl.connectors.gsheet.checkpoints import TITLE as CONTROL
from portl.connectors.gsheet.checkpoints import WIDTH as CONTROL_WIDTH
from portl.connectors.gsheet.checkpoints import CheckpointTab, text_row
from portl.connectors.gsheet.client import REQUEST_BYTES, SheetsApi, column_letters, quote_sheet
from portl.connectors.gsheet.config import Config
from portl.connectors.gsheet.source import Area, Tab
from portl.errors import ConfigError, ConflictError, RowRefused, TerminalError
from portl.types import logical_of

KEY_METADATA = "portl.key"
CELL_BYTES = {"date": 130, "timestamp": 140, "timestamptz": 140, "text": 160, "json": 300, "uuid": 80, "bytes": 300}
"""Bytes a cell of each logical type takes in a request, about (text: 100 characters); others 50."""
TYPE_SAMPLE = 100  # rows of an existing tab read to tell its columns' types


@dataclass
class SheetTx:
    """A batch's work, sent as one batchUpdate at commit."""

    requests: list[dict] = field(default_factory=list)
    """Requests on the tab, in order: the clear of a replace, the header, updates of existing rows."""
    appended: list[list[dict]] = field(default_factory=list)
    """New rows (cells in the tab's column order), sent as one appendCells."""
    new_keys: dict[str, int] = field(default_factory=dict)
    """Key of each appended row -> its index in ``appended``."""
    key_order: list[str] = field(default_factory=list)
    undo: list[tuple[int, list[dict]]] = field(default_factory=list)
    """Appended rows changed in place by a later row of the same key: (index, cells before)."""
    checkpoints: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    cells: int = 0
    """Cells this transaction adds to the spreadsheet's grid."""
    rows: int = 0
    """Rows written (appended or updated)."""
    cleared: bool = False


class GsheetSink:
    """A tab of a spreadsheet as a destination."""

    capabilities = Capabilities(
        modes=frozenset(WriteMode),
        upsert_strategies=frozenset(ConflictStrategy),
        transactional=True,
        resumable=True,
        concurrent_writers=1,
        alters_tables=False,
        bulk_method="one spreadsheets.batchUpdate per batch: appendCells for new rows, updateCells for existing "
                    "keys, the checkpoint in the same request",
        savepoints=True,
    )

    def __init__(self, config: Config, base_dir: str):
        if config.api_key is not None:
            raise ConfigError(f"{config.describe()}: Google refuses writes made with an API key; give credentials: "
                              "(a service-account key or an authorized-user file) to write")
        if not config.sheet:
            raise ConfigError(f"{config.describe()}: a destination names its tab: set sheet:")
        if config.range:
            raise ConfigError(f"{config.describe()}: range is for sources; a destination writes the whole tab")
        self.config = config
        self.title = config.sheet
        self.api = SheetsApi(config, base_dir, write=True)
        self.description = f"Google Sheets {config.describe()}"
        self._sheets: list[dict] | None = None
        self._tab: Tab | None = None
        self._scanned = False
        self._warnings: list[str] = []  # values the sheet holds changed, once per column and kind
        self.header: list[str] = []
        self._key: tuple[str, ...] = ()
        self._keys: dict[str, int | None] | None = None  # key -> 1-based sheet row (None: appended, row unknown)
        self.checkpoints = CheckpointTab(self.api, self._control_id, self.title)
        self._truncate_pending = False
        self._grid_cells = 0
        self._fields = "userEnteredValue"
        self.max_batch_rows: int | None = None
        """Rows per batch whose request stays under Google's 10 MB, about; the engine reads at most
        as many at once."""

    # -- what is there -----------------------------------------------------------------------------

    def _meta(self, fresh: bool = False) -> list[dict]:
        if self._sheets is None or fresh:
            api = self.api
            answer = api.call(lambda: api.spreadsheets.get(
                spreadsheetId=api.spreadsheet, fields="sheets(properties,developerMetadata)"), "reading")
            self._sheets = answer.get("sheets", [])
        return self._sheets

    def _sheet(self, title: str) -> dict | None:
        return next((s for s in self._meta() if s["properties"]["title"] == title), None)

    def _control_id(self) -> int | None:
        sheet = self._sheet(CONTROL)
        return None if sheet is None else sheet["properties"]["sheetId"]

    def _properties(self) -> dict | None:
        sheet = self._sheet(self.title)
        return None if sheet is None else sheet["properties"]

    def _declared_key(self) -> tuple[str, ...]:
        sheet = self._sheet(self.title) or {}
        for meta in sheet.get("developerMetadata", []):
            if meta.get("metadataKey") == KEY_METADATA:
                return tuple(json.loads(meta.get("metadataValue") or "[]"))
        return ()

    def _scan(self) -> Tab | None:
        """The tab's header and column types, or None when the tab is missing or empty; read once."""
        if not self._scanned:
            self._scanned = True
            properties = self._properties()
            if properties is None:
                return None
            tab = Tab(self.api, properties, Area(), TYPE_SAMPLE)
            if tab.scan(empty_ok=True):
                self._tab, self.header = tab, list(tab.names)
        return self._tab

    def table_info(self) -> TableInfo | None:
        tab = self._scan()
        if tab is None:
            return None
        columns = [ColumnInfo(f.name, f.type, declared=str(logical_of(f))) for f in tab.schema]
        return TableInfo(self.title, columns, primary_key=list(self._declared_key()))

    def table_names(self) -> list[str]:
        return [s["properties"]["title"] for s in self._meta() if not s["properties"]["title"].startswith("_portl_")]

    # -- planning ----------------------------------------------------------------------------------

    def _check_header(self, schema: pa.Schema, spec: WriteSpec) -> None:
        if spec.mode == WriteMode.REPLACE or self._scan() is None:
            return
        missing = [name for name in schema.names if name not in self.header]
        if missing:
            raise ConfigError(
                f"tab {self.title!r} of {self.api.where} has the header {', '.join(self.header)}, which lacks "
                f"{', '.join(missing)}; add {'that column' if len(missing) == 1 else 'those columns'} to the sheet's "
                "first row, map the columns to the sheet's names, or use mode: replace")

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_header(schema, spec)
        per_row = 20 + sum(CELL_BYTES.get(logical_of(f).name, 50) for f in schema)
        self.max_batch_rows = max(1, int(REQUEST_BYTES * 0.8) // per_row)
        where = f"tab {quote_sheet(self.title)}"
        plan = TargetPlan(target=f"Google Sheets {self.api.where} {where}")
        if self._properties() is None:
            plan.ddl.append(f"addSheet {where} with the header {', '.join(schema.names)}")
        elif self._scan() is None:
            plan.ddl.append(f"updateCells: the header {', '.join(schema.names)} in row 1 of the empty {where}")
        if self._sheet(CONTROL) is None:
            plan.ddl.append(f"addSheet {CONTROL} (hidden): the checkpoints of runs")
        if spec.mode == WriteMode.UPSERT:
            plan.ddl.append(f"values.batchGet of the key column{'s' if len(spec.key) > 1 else ''} "
                            f"{', '.join(spec.key)}, once: which keys the tab holds")
        elif self._declared_key():
            plan.notes.append(f"{where} was created by an upsert on ({', '.join(self._declared_key())}): rows whose key "
                              "is already there are rejected")
        steps = []
        if spec.mode == WriteMode.REPLACE:
            steps.append("updateCells clearing the tab and writing the header (with the first batch)")
        if spec.mode == WriteMode.UPSERT:
            steps.append({ConflictStrategy.SKIP: "rows whose key exists are skipped",
                          ConflictStrategy.OVERWRITE: "updateCells on rows whose key exists",
                          ConflictStrategy.MERGE: "updateCells of the non-null values on rows whose key exists",
                          ConflictStrategy.FAIL: "a key that exists fails the batch"}[spec.strategy])
        steps.append("appendCells of the new rows")
        steps.append(f"the checkpoint row in {CONTROL}")
        plan.per_batch.append(f"spreadsheets.batchUpdate, one atomic request of at most {self.max_batch_rows:,} rows "
                              "(Google takes requests up to 10 MB): " + "; ".join(steps))
        for f in schema:
            logical = logical_of(f).name
            if logical == "decimal":
                plan.notes.append(f"column {f.name}: a spreadsheet keeps numbers as doubles (15 significant digits)")
            elif logical == "timestamptz":
                plan.notes.append(f"column {f.name}: written as UTC date-times (a sheet's dates have no time zone)")
            elif logical == "bytes":
                plan.notes.append(f"column {f.name}: written as base64 text")
        return plan

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_header(schema, spec)
        width = len(schema.names)
        requests: list[dict] = []
        properties = self._properties()
        created = properties is None
        if created:
            requests.append({"addSheet": {"properties": {"title": self.title, "gridProperties": {
                "rowCount": 1, "columnCount": max(1, width)}}}})
        if self._sheet(CONTROL) is None:
            requests.append(CheckpointTab.add_request())
        self._run_prepare(requests, created, control=self._sheet(CONTROL) is None)
        properties = self._properties()
        sheet_id = properties["sheetId"]
        requests = []
        empty = self._scan() is None
        if empty or spec.mode == WriteMode.REPLACE:
            self.header = list(schema.names)
        columns = properties.get("gridProperties", {}).get("columnCount", 0)
        if columns < len(self.header):
            requests.append({"updateSheetProperties": {"properties": {"sheetId": sheet_id, "gridProperties": {
                "columnCount": len(self.header)}}, "fields": "gridProperties.columnCount"}})
        if empty and spec.mode != WriteMode.REPLACE:
            requests.append(self._header_request(sheet_id))
        if spec.mode == WriteMode.UPSERT and (created or empty) and not self._declared_key():
            requests.append({"createDeveloperMetadata": {"developerMetadata": {
                "metadataKey": KEY_METADATA, "metadataValue": json.dumps(list(spec.key)),
                "location": {"sheetId": sheet_id}, "visibility": "DOCUMENT"}}})
        header = self.checkpoints.header_request()
        if header is not None:
            requests.append(header)
        if requests:
            self._run_prepare(requests)
        self._meta(fresh=True)
        self._grid_cells = sum(s["properties"].get("gridProperties", {}).get("rowCount", 0) *
                               s["properties"].get("gridProperties", {}).get("columnCount", 0) for s in self._meta())
        self._truncate_pending = spec.mode == WriteMode.REPLACE and not resuming
        self._key = tuple(spec.key) if spec.mode == WriteMode.UPSERT else self._declared_key()
        if spec.mode == WriteMode.REPLACE and not resuming or not set(self._key) <= set(schema.names):
            self._key = ()  # the tab starts empty, or the load writes no key: none to keep unique
        if any(pa.types.is_date(f.type) or pa.types.is_timestamp(f.type) for f in schema):
            self._fields = "userEnteredValue,userEnteredFormat.numberFormat"
        self._keys = None
        if self._key:
            missing = [k for k in self._key if k not in self.header]
            if missing:
                raise TerminalError(f"tab {self.title!r} of {self.api.where} has no column {', '.join(missing)} "
                                    "for the key; the header is " + ", ".join(self.header))
            if not self._truncate_pending:
                self._load_keys()
            else:
                self._keys = {}

    def _run_prepare(self, requests: list[dict], created: bool = False, control: bool = False) -> None:
        """Send set-up requests; after a lost answer, the tabs being there means they landed."""
        if not requests:
            return

        def landed() -> bool:
            self._meta(fresh=True)
            return (not created or self._properties() is not None) and (not control or self._sheet(CONTROL) is not None)

        self.api.batch_update(requests, "preparing", landed=landed if (created or control) else None)
        self._meta(fresh=True)

    def _header_request(self, sheet_id: int) -> dict:
        return {"updateCells": {"start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": 0},
                                "rows": [text_row(self.header)], "fields": "userEnteredValue"}}

    def _load_keys(self) -> None:
        """Every key the tab holds, with its row: one values.batchGet of the key columns."""
        api = self.api
        ranges = [f"{quote_sheet(self.title)}!{column_letters(self.header.index(k))}2:{column_letters(self.header.index(k))}"
                  for k in self._key]
        answer = api.call(lambda: api.values.batchGet(
            spreadsheetId=api.spreadsheet, ranges=ranges, majorDimension="COLUMNS", valueRenderOption="UNFORMATTED_VALUE",
            dateTimeRenderOption="SERIAL_NUMBER"), "reading the keys of")
        columns = [(r.get("values") or [[]])[0] for r in answer.get("valueRanges", [])]
        keys: dict[str, int | None] = {}
        for i in range(max((len(c) for c in columns), default=0)):
            parts = [key_text(c[i]) if i < len(c) else None for c in columns]
            if all(p is None for p in parts):
                continue
            keys.setdefault(_joined(parts), i + 2)
        self._keys = keys

    # -- writing -----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SheetTx]:
        tx = SheetTx()
        try:
            yield tx
        except BaseException:
            if tx.cleared:
                self._truncate_pending = True
            raise
        try:
            self._commit(tx)
        except BaseException:
            if tx.cleared:
                self._truncate_pending = True
            raise

    @contextmanager
    def savepoint(self, tx: SheetTx) -> Iterator[None]:
        """A mark in the transaction's requests; work after it that raises is taken back out."""
        marks = (len(tx.requests), len(tx.appended), len(tx.key_order), len(tx.undo), tx.cells, tx.rows, tx.cleared,
                 dict(tx.checkpoints))
        try:
            yield
        except BaseException:
            requests, appended, keys, undo, cells, rows, cleared, checkpoints = marks
            for index, before in reversed(tx.undo[undo:]):
                tx.appended[index] = before
            for key in tx.key_order[keys:]:
                tx.new_keys.pop(key, None)
            del tx.requests[requests:], tx.appended[appended:], tx.key_order[keys:], tx.undo[undo:]
            tx.cells, tx.rows, tx.checkpoints = cells, rows, checkpoints
            if tx.cleared and not cleared:
                tx.cleared, self._truncate_pending = False, True
            raise

    def _clear_if_pending(self, tx: SheetTx) -> None:
        """``replace``: the tab is emptied and given its header in the first batch's request."""
        if not self._truncate_pending:
            return
        sheet_id = self._properties()["sheetId"]
        tx.requests.append({"updateCells": {"range": {"sheetId": sheet_id},
                                            "fields": "userEnteredValue,userEnteredFormat.numberFormat"}})
        tx.requests.append(self._header_request(sheet_id))
        tx.cleared, self._truncate_pending = True, False

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: SheetTx) -> WriteResult:
        rows = batch.num_rows
        try:
            changed: list[str] = []
            columns = {name: column_cells(name, batch.column(i), changed) for i, name in enumerate(batch.schema.names)}
        except Refusal as refused:
            raise RowRefused(refused.reason, row=refused.row, column=refused.column, value=refused.value,
                             doing=f"writing to {self.description}") from None
        self._warnings += [w for w in changed if w not in self._warnings]
        positions = [self.header.index(name) for name in batch.schema.names]
        keys = [_joined([cell_key_text(columns[k][r]) for k in self._key]) for r in range(rows)] if self._key else []
        if tx.cleared or self._truncate_pending:
            existing: list[tuple[int, int | None] | None] = [None] * rows  # the tab is being emptied
            known = tx.new_keys
        else:
            existing, known = self._existing(keys, tx), tx.new_keys
        if self._key and spec.mode != WriteMode.UPSERT:
            self._refuse_duplicates(keys, existing, known, spec, batch)
        if spec.mode == WriteMode.UPSERT and spec.strategy == ConflictStrategy.FAIL:
            taken = [r for r in range(rows) if existing[r] is not None]
            if taken:
                values = [batch.column(k).to_pylist() for k in spec.key]
                raise ConflictError(f"tab {self.title}", list(spec.key), [tuple(v[r] for v in values) for r in taken])
        new = [r for r in range(rows) if spec.mode != WriteMode.UPSERT or existing[r] is None]
        width = max(len(self.header), 1)
        # Checkpoint rows take cells too: this batch's, and the run's end marker, may each be new.
        room = (MAX_CELLS - self._grid_cells - tx.cells - 2 * CONTROL_WIDTH) // width
        if len(new) > room:
            row = new[max(room, 0)]
            raise RowRefused(f"the spreadsheet would hold more than {MAX_CELLS:,} cells, the most Google Sheets "
                             "allows; write to another spreadsheet or delete unused tabs, rows or columns", row=row,
                             doing=f"writing to {self.description}")
        self._clear_if_pending(tx)
        result = WriteResult()
        updates: list[tuple[int, list[dict]]] = []
        for r in range(rows):
            cells = [columns[name][r] for name in batch.schema.names]
            place = existing[r] if spec.mode == WriteMode.UPSERT else None
            if place is None:
                row = [{} for _ in range(width)]
                for position, cell in zip(positions, cells):
                    row[position] = cell
                if keys:
                    tx.new_keys[keys[r]] = len(tx.appended)
                    tx.key_order.append(keys[r])
                tx.appended.append(row)
                tx.cells += width
                result.inserted += 1
                continue
            if spec.strategy == ConflictStrategy.SKIP:
                result.skipped += 1
                continue
            result.updated += 1
            merge = spec.strategy == ConflictStrategy.MERGE
            where, index = place
            if where == 0:  # a row appended earlier in this transaction: changed where it waits
                before = tx.appended[index]
                after = list(before)
                for position, cell in zip(positions, cells):
                    if cell or not merge:
                        after[position] = cell
                tx.undo.append((index, before))
                tx.appended[index] = after
            else:
                updates.append((index, cells))
        tx.requests.extend(self._updates(updates, positions, spec.strategy == ConflictStrategy.MERGE))
        tx.rows += rows
        return result

    def _existing(self, keys: list[str], tx: SheetTx) -> list[tuple[int, int | None] | None]:
        """Per row: None for a new key, (0, index) for a key appended in this transaction, (1, sheet
        row) for a key in the tab. A key appended by an earlier batch, whose row Google does not
        say, has the key columns read again."""
        if not keys:
            return [None] * len(keys)
        if self._keys is None:
            self._load_keys()
        if any(k not in tx.new_keys and k in self._keys and self._keys[k] is None for k in keys):
            self._load_keys()
        out: list[tuple[int, int | None] | None] = []
        for key in keys:
            if key in tx.new_keys:
                out.append((0, tx.new_keys[key]))
            elif key in self._keys:
                out.append((1, self._keys[key]))
            else:
                out.append(None)
        return out

    def _refuse_duplicates(self, keys: list[str], existing: list, known: dict[str, int], spec: WriteSpec,
                           batch: pa.RecordBatch) -> None:
        """An append to a tab with a declared key: the first row whose key is already there (or
        earlier in the batch) is refused, as a table's primary key would refuse it."""
        seen: set[str] = set()
        for r, key in enumerate(keys):
            if existing[r] is not None or key in seen:
                name = self._key[0]
                value = batch.column(name).to_pylist()[r] if name in batch.schema.names else None
                shown = ", ".join(f"{k}={batch.column(k)[r].as_py()!r}" for k in self._key if k in batch.schema.names)
                raise RowRefused(f"duplicate key ({shown}): the tab's key ({', '.join(self._key)}) is already there",
                                 row=r, column=name, value=value, doing=f"writing to {self.description}")
            seen.add(key)

    def _updates(self, updates: list[tuple[int, list[dict]]], positions: list[int], merge: bool) -> list[dict]:
        """updateCells requests for rows whose key is in the tab: runs of neighbouring columns (and,
        for merge, of non-null values) in one request per row, rows in sheet order."""
        sheet_id = self._properties()["sheetId"]
        requests = []
        for row, cells in sorted(updates, key=lambda u: u[0]):
            run: list[tuple[int, dict]] = []
            for position, cell in sorted(zip(positions, cells), key=lambda pc: pc[0]):
                if merge and not cell:
                    requests += self._run(sheet_id, row, run)
                    run = []
                    continue
                if run and position != run[-1][0] + 1:
                    requests += self._run(sheet_id, row, run)
                    run = []
                run.append((position, cell))
            requests += self._run(sheet_id, row, run)
        return requests

    def _run(self, sheet_id: int, row: int, run: list[tuple[int, dict]]) -> list[dict]:
        if not run:
            return []
        return [{"updateCells": {"start": {"sheetId": sheet_id, "rowIndex": row - 1, "columnIndex": run[0][0]},
                                 "rows": [{"values": [cell for _, cell in run]}], "fields": self._fields}}]

    # -- commit and checkpoints ----------------------------------------------------------------------

    def _commit(self, tx: SheetTx) -> None:
        requests = list(tx.requests)
        if tx.appended:
            requests.append({"appendCells": {"sheetId": self._properties()["sheetId"],
                                             "rows": [{"values": row} for row in tx.appended], "fields": self._fields}})
        written, placed = self.checkpoints.requests(tx.checkpoints)
        requests += written
        if not requests:
            return

        landed = (lambda: self.checkpoints.landed(tx.checkpoints)) if tx.checkpoints else None
        self.api.batch_update(requests, "writing to", landed=landed, rows=tx.rows)
        self._grid_cells += tx.cells + len(placed) * CONTROL_WIDTH
        if self._keys is not None:
            if tx.cleared:
                self._keys = {}
            for key in tx.key_order:
                self._keys.setdefault(key, None)
        self.checkpoints.committed(placed)

    def save_checkpoint(self, tx: SheetTx, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        self._clear_if_pending(tx)
        tx.checkpoints[(run_id, checkpoint.partition)] = self.checkpoints.row(run_id, checkpoint, state)

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        return self.checkpoints.load(run_id)

    def job_checkpoints(self, job: str) -> dict[str, RunCheckpoints]:
        return self.checkpoints.of_job(job)

    def forget_run(self, run_id: str) -> None:
        self.checkpoints.forget(run_id)

    def finish(self, run_id: str) -> None:
        pass

    def warnings(self) -> list[str]:
        """Values written changed, as the type map of the docs says (empty texts, microseconds)."""
        return list(self._warnings)

    def count_rows(self) -> int | None:
        return None  # counting a sheet's rows means reading it whole

    def close(self) -> None:
        pass


def _joined(parts: list[str | None]) -> str:
    return "\x1f".join("\x00" if p is None else p for p in parts)
