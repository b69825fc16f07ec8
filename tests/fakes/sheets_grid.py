"""The spreadsheets of the local Sheets API (:mod:`tests.fakes.sheets_server`): grids of cells,
A1 ranges, CellData, and the batchUpdate requests applied to a copy of a spreadsheet."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CELL_CHARACTERS = 50_000
CELL_LIMIT = 10_000_000
class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Sheet:
    sheet_id: int
    title: str
    rows: list[list[dict | None]] = field(default_factory=list)
    row_count: int = 1000
    column_count: int = 26
    hidden: bool = False
    metadata: list[dict] = field(default_factory=list)
    owned: set[int] = field(default_factory=set)
    """Rows this copy may change in place; the others are shared with the copy it was made from."""

    def snapshot(self) -> Sheet:
        """A copy that shares the rows until it changes them (a batchUpdate works on one)."""
        return Sheet(self.sheet_id, self.title, list(self.rows), self.row_count, self.column_count, self.hidden,
                     [dict(m) for m in self.metadata])

    def own(self, r: int) -> list[dict | None]:
        while len(self.rows) <= r:
            self.rows.append([])
            self.owned.add(len(self.rows) - 1)
        if r not in self.owned:
            self.rows[r] = list(self.rows[r])
            self.owned.add(r)
        return self.rows[r]

    def cell(self, r: int, c: int) -> dict | None:
        if r < len(self.rows) and c < len(self.rows[r]):
            return self.rows[r][c]
        return None

    def put(self, r: int, c: int, value: dict | None) -> None:
        if r >= self.row_count or c >= self.column_count:
            raise ApiError(400, f"Invalid requests: range ({self.title}!R{r + 1}C{c + 1}) exceeds grid limits. "
                                f"Max rows: {self.row_count}, max columns: {self.column_count}")
        row = self.own(r)
        while len(row) <= c:
            row.append(None)
        row[c] = value

    def last_row(self) -> int:
        """The number of rows down to the last one holding a value."""
        for r in range(len(self.rows) - 1, -1, -1):
            if any(cell and "v" in cell for cell in self.rows[r]):
                return r + 1
        return 0

    def properties(self, index: int) -> dict:
        return {"sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID", "hidden": self.hidden,
                "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count}}


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    sheets: list[Sheet] = field(default_factory=list)
    next_id: int = 1

    def add_sheet(self, title: str, rows: int = 1000, columns: int = 26, hidden: bool = False) -> Sheet:
        if any(s.title == title for s in self.sheets):
            raise ApiError(400, f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists. '
                                "Please enter another name.")
        sheet = Sheet(self.next_id, title, row_count=rows, column_count=columns, hidden=hidden)
        self.next_id += 1
        self.sheets.append(sheet)
        return sheet

    def snapshot(self) -> Spreadsheet:
        return Spreadsheet(self.spreadsheet_id, self.title, [s.snapshot() for s in self.sheets], self.next_id)

    def sheet(self, title: str) -> Sheet:
        for s in self.sheets:
            if s.title == title:
                return s
        raise ApiError(400, f"Unable to parse range: {title}")

    def by_id(self, sheet_id: int) -> Sheet:
        for s in self.sheets:
            if s.sheet_id == sheet_id:
                return s
        raise ApiError(400, f"Invalid requests: No grid with id: {sheet_id}")


# --- A1 notation ------------------------------------------------------------------------------

_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


def column_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def column_letters(index: int) -> str:
    out, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def parse_range(book: Spreadsheet, text: str) -> tuple[Sheet, int, int, int | None, int | None]:
    """``(sheet, first row, first column, end row, end column)``, 0-based, ends excluded (None: open)."""
    if "!" in text:
        name, _, cells = text.rpartition("!")
    elif any(s.title == text for s in book.sheets) or not _CELL.match(text.split(":")[0]):
        name, cells = text, ""
    else:
        name, cells = book.sheets[0].title, text
    if name.startswith("'") and name.endswith("'"):
        name = name[1:-1].replace("''", "'")
    sheet = book.sheet(name)
    if not cells:
        return sheet, 0, 0, None, None
    start, _, end = cells.partition(":")
    a, b = _CELL.match(start), _CELL.match(end or start)
    if a is None or b is None:
        raise ApiError(400, f"Unable to parse range: {text}")
    r0 = int(a.group(2)) - 1 if a.group(2) else 0
    c0 = column_number(a.group(1)) if a.group(1) else 0
    r1 = int(b.group(2)) if b.group(2) else None
    c1 = column_number(b.group(1)) + 1 if b.group(1) else None
    return sheet, r0, c0, r1, c1


# --- cells --------------------------------------------------------------------------------------

def extended_value(value: Any) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, (int, float)):
        return {"numberValue": value}
    return {"stringValue": str(value)}


def plain(cell: dict | None) -> Any:
    if not cell or "v" not in cell:
        return None
    value = cell["v"]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def field_mask(fields: str) -> tuple[bool, bool]:
    """What a ``fields`` mask of updateCells / appendCells writes: (values, number formats)."""
    masks = [f.strip() for f in fields.split(",")]
    every = "*" in masks
    return every or "userEnteredValue" in masks, every or any(m.startswith("userEnteredFormat") for m in masks)


def from_cell_data(data: dict, mask: tuple[bool, bool], old: dict | None) -> dict | None:
    """A stored cell from a CellData of a request, under its ``fields`` mask."""
    if not data and not old:
        return None
    out = dict(old) if old else {}
    if mask[0]:
        out.pop("v", None)
        entered = data.get("userEnteredValue")
        if entered:
            (kind, value), = entered.items()
            if kind == "formulaValue":
                raise ApiError(400, "formulas are not served by this fake")
            if isinstance(value, str) and len(value) > CELL_CHARACTERS:
                raise ApiError(400, f"Your input contains more than the maximum of {CELL_CHARACTERS} characters in a single cell.")
            out["v"] = value
    if mask[1]:
        number_format = data.get("userEnteredFormat", {}).get("numberFormat")
        if number_format:
            out["fmt"] = number_format
        else:
            out.pop("fmt", None)
    return out or None


def cell_data(cell: dict | None) -> dict:
    if not cell:
        return {}
    out: dict = {}
    if "v" in cell:
        out["effectiveValue"] = extended_value(cell["v"])
        out["userEnteredValue"] = extended_value(cell["v"])
    if "fmt" in cell:
        out["userEnteredFormat"] = {"numberFormat": cell["fmt"]}
        out["effectiveFormat"] = {"numberFormat": cell["fmt"]}
    return out


# --- batchUpdate requests -----------------------------------------------------------------------

def apply_request(book: Spreadsheet, name: str, body: dict) -> dict:
    """Apply one request of a batchUpdate to ``book`` (a copy); ApiError when it cannot apply."""
    if name == "addSheet":
        props = body.get("properties", {})
        grid = props.get("gridProperties", {})
        sheet = book.add_sheet(props["title"], grid.get("rowCount", 1000), grid.get("columnCount", 26),
                               props.get("hidden", False))
        return {"addSheet": {"properties": sheet.properties(len(book.sheets) - 1)}}
    if name == "deleteSheet":
        sheet = book.by_id(body["sheetId"])
        book.sheets.remove(sheet)
        return {}
    if name == "updateSheetProperties":
        props, fields = body["properties"], body.get("fields", "*")
        sheet = book.by_id(props["sheetId"])
        grid = props.get("gridProperties", {})
        if "gridProperties.rowCount" in fields or fields == "*":
            sheet.row_count = grid.get("rowCount", sheet.row_count)
        if "gridProperties.columnCount" in fields or fields == "*":
            sheet.column_count = grid.get("columnCount", sheet.column_count)
        if "hidden" in fields or fields == "*":
            sheet.hidden = props.get("hidden", False)
        if "title" in fields or fields == "*":
            sheet.title = props.get("title", sheet.title)
        return {}
    if name == "appendDimension":
        sheet = book.by_id(body["sheetId"])
        if body["dimension"] == "ROWS":
            sheet.row_count += body["length"]
        else:
            sheet.column_count += body["length"]
        return {}
    if name == "deleteDimension":
        rng = body["range"]
        sheet = book.by_id(rng["sheetId"])
        start, end = rng["startIndex"], rng["endIndex"]
        if rng["dimension"] == "ROWS":
            del sheet.rows[start:end]
            sheet.owned = {r if r < start else r - (end - start) for r in sheet.owned if not start <= r < end}
            sheet.row_count -= max(0, min(end, sheet.row_count) - start)
        else:
            for r in range(len(sheet.rows)):
                del sheet.own(r)[start:end]
            sheet.column_count -= max(0, min(end, sheet.column_count) - start)
        return {}
    if name == "appendCells":
        sheet = book.by_id(body["sheetId"])
        start = sheet.last_row()
        rows = body.get("rows", [])
        sheet.row_count = max(sheet.row_count, start + len(rows))
        mask = field_mask(body["fields"])
        fast = len(sheet.rows) == start  # nothing below the data: whole rows are added as they are
        for i, row in enumerate(rows):
            values = row.get("values", [])
            if fast:
                if len(values) > sheet.column_count:
                    raise ApiError(400, f"Invalid requests: range ({sheet.title}!R{start + i + 1}C{len(values)}) "
                                        f"exceeds grid limits. Max columns: {sheet.column_count}")
                sheet.rows.append([from_cell_data(data, mask, None) if data else None for data in values])
                sheet.owned.add(len(sheet.rows) - 1)
                continue
            for j, data in enumerate(values):
                if data:
                    sheet.put(start + i, j, from_cell_data(data, mask, None))
        return {}
    if name == "updateCells":
        fields = field_mask(body["fields"])
        if "start" in body:
            sheet = book.by_id(body["start"]["sheetId"])
            r0, c0 = body["start"].get("rowIndex", 0), body["start"].get("columnIndex", 0)
            for i, row in enumerate(body.get("rows", [])):
                for j, data in enumerate(row.get("values", [])):
                    sheet.put(r0 + i, c0 + j, from_cell_data(data, fields, sheet.cell(r0 + i, c0 + j)))
            return {}
        rng = body["range"]
        sheet = book.by_id(rng["sheetId"])
        r0, c0 = rng.get("startRowIndex", 0), rng.get("startColumnIndex", 0)
        r1, c1 = rng.get("endRowIndex", sheet.row_count), rng.get("endColumnIndex", sheet.column_count)
        rows = body.get("rows", [])
        for r in range(r0, min(r1, max(len(sheet.rows), r0 + len(rows)))):
            for c in range(c0, c1):
                i, j = r - r0, c - c0
                data = rows[i]["values"][j] if i < len(rows) and j < len(rows[i].get("values", [])) else {}
                old = sheet.cell(r, c)
                if old is None and not data:
                    continue
                sheet.put(r, c, from_cell_data(data, fields, old))
        return {}
    if name == "createDeveloperMetadata":
        meta = dict(body["developerMetadata"])
        location = meta.get("location", {})
        sheet = book.by_id(location["sheetId"])
        meta["metadataId"] = sum(len(s.metadata) for s in book.sheets) + 1
        meta["location"] = {"locationType": "SHEET", "sheetId": sheet.sheet_id}
        sheet.metadata.append(meta)
        return {"createDeveloperMetadata": {"developerMetadata": meta}}
    raise ApiError(400, f"request kind {name!r} is not served by this fake")
