"""Reading a tab of a spreadsheet: the header row names the columns, the rows below are read a
page (an A1 range of ``batch.size`` rows) at a time, so memory stays bounded whatever the sheet.

Values come unformatted, dates as serial numbers (``UNFORMATTED_VALUE``, ``SERIAL_NUMBER``), so a
number is a number and a date converts exactly. A checkpoint is the sheet row the next page starts
at: ``--resume`` continues at exactly that row. A wholly empty row is no row (spreadsheets are
full of them); an empty cell is NULL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from portl.connectors.base import Checkpoint, Chunk, Estimate, Reject
from portl.connectors.closest import table_hint
from portl.connectors.gsheet.cells import FORMATTED_KINDS, column_array, infer_type
from portl.connectors.gsheet.client import SheetsApi, column_index, column_letters, quote_sheet
from portl.connectors.gsheet.config import Config
from portl.errors import SourceError

FORMAT_ROWS = 5
"""Data rows whose number formats are read to tell dates from numbers: a column's first cells
say what it holds, and reading formats is the costly part of a spreadsheets.get."""
EMPTY_STRETCH = 16
"""At most this many pages are asked for at once past the data (a chunk holds at most as many)."""
_A1 = re.compile(r"^([A-Za-z]*)(\d*)$")


@dataclass(frozen=True)
class Area:
    """The cells read, 0-based: columns ``first_column..end_column`` (excluded; None: to the
    header's end), rows from ``header_row`` to ``end_row`` (excluded; None: the tab's end)."""

    header_row: int = 0
    first_column: int = 0
    end_row: int | None = None
    end_column: int | None = None


def parse_area(text: str | None) -> Area:
    """An A1 range within a tab (``B3:F``, ``A1:D500``, ``C:E``) as an :class:`Area`."""
    if not text:
        return Area()
    start, _, end = text.strip().partition(":")
    a, b = _A1.match(start), _A1.match(end or start)
    if a is None or b is None or not (a.group(1) or a.group(2)):
        raise SourceError(f"range {text!r} is not A1 notation (B3:F, A1:D500, C:E)")
    return Area(int(a.group(2)) - 1 if a.group(2) else 0, column_index(a.group(1)) if a.group(1) else 0,
                int(b.group(2)) if end and b.group(2) else None, column_index(b.group(1)) + 1 if end and b.group(1) else None)


def find_tab(api: SheetsApi, wanted: str | None, doing: str) -> tuple[dict, list[dict]]:
    """The properties of tab ``wanted`` (the first one when None) and of every tab. Raises a
    SourceError naming the tab and the tabs there are when it is missing."""
    meta = api.call(lambda: api.spreadsheets.get(spreadsheetId=api.spreadsheet,
                                                 fields="properties.title,sheets(properties,developerMetadata)"), doing)
    sheets = meta.get("sheets", [])
    tabs = [s["properties"] for s in sheets]
    if wanted is None:
        visible = [t for t in tabs if not t.get("hidden")]
        if not visible:
            raise SourceError(f"{api.where} has no tab to read")
        return visible[0], sheets
    for sheet in sheets:
        if sheet["properties"]["title"] == wanted:
            return sheet["properties"], sheets
    names = [t["title"] for t in tabs if not t["title"].startswith("_portl_")]
    raise SourceError(f"tab {wanted!r} not found in {api.where}" + table_hint(wanted, names, "the spreadsheet"))


class Tab:
    """The layout of a tab being read: its header and each column's type, and A1 ranges of it."""

    def __init__(self, api: SheetsApi, properties: dict, area: Area, sample_rows: int):
        self.api, self.area, self.sample_rows = api, area, sample_rows
        self.title = properties["title"]
        grid = properties.get("gridProperties", {})
        self.rows_in_grid = int(grid.get("rowCount", 0))
        self.columns_in_grid = int(grid.get("columnCount", 26))
        self.names: list[str] = []
        self.formats: list[str | None] = []
        self.schema = pa.schema([])

    def range(self, first_row: int, rows: int | None) -> str:
        """A1 text of ``rows`` rows from 0-based ``first_row``, over the read columns."""
        a = self.area
        if a.end_column is not None:
            end_column = a.end_column
        elif self.names:
            end_column = a.first_column + len(self.names)
        else:  # the header is not read yet: every column of the grid
            end_column = max(self.columns_in_grid, a.first_column + 1)
        end_row = "" if rows is None else str(first_row + rows)
        return f"{quote_sheet(self.title)}!{column_letters(a.first_column)}{first_row + 1}:{column_letters(end_column - 1)}{end_row}"

    def values(self, text: str, doing: str) -> list[list[Any]]:
        api = self.api
        answer = api.call(lambda: api.values.get(
            spreadsheetId=api.spreadsheet, range=text, majorDimension="ROWS", valueRenderOption="UNFORMATTED_VALUE",
            dateTimeRenderOption="SERIAL_NUMBER"), doing)
        return answer.get("values", [])

    def scan(self, empty_ok: bool = False) -> bool:
        """Read the header, the number format of each column's first data cells, and the types a
        sample of rows gives (one values.get and one spreadsheets.get). False for an empty tab
        when ``empty_ok``."""
        a = self.area
        head = self.values(self.range(a.header_row, 1 + self.sample_rows), "reading the header of")
        if not head or not any(v not in ("", None) for v in head[0]):
            if empty_ok:
                return False
            raise SourceError(f"tab {self.title!r} of {self.api.where} has no header row at row {a.header_row + 1}: "
                              "its first row must name the columns")
        header = list(head[0])
        if a.end_column is not None:
            header += [""] * (a.end_column - a.first_column - len(header))
        while header and header[-1] in ("", None) and a.end_column is None:
            header.pop()
        names: list[str] = []
        for i, cell in enumerate(header):
            where = f"{column_letters(a.first_column + i)}{a.header_row + 1}"
            name = "" if cell is None else str(cell).strip()
            if not name:
                raise SourceError(f"tab {self.title!r} of {self.api.where}: header cell {where} is empty; every column "
                                  "read needs a name (or narrow 'range')")
            if name in names:
                raise SourceError(f"tab {self.title!r} of {self.api.where}: column name {name!r} appears twice in the "
                                  f"header (again at {where})")
            names.append(name)
        self.names = names
        self.formats = self._number_formats(len(names)) if len(head) > 1 else [None] * len(names)
        sample = [[None if v == "" else v for v in row] for row in head[1:]]
        fields = []
        for i, name in enumerate(names):
            values = [row[i] if i < len(row) else None for row in sample]
            fields.append(pa.field(name, infer_type(values, self.formats[i])))
        self.schema = pa.schema(fields)
        return True

    def _number_formats(self, width: int) -> list[str | None]:
        """Per column, DATE / DATE_TIME / TIME when the first data cells carry such a format."""
        a, api = self.area, self.api
        text = self.range(a.header_row + 1, FORMAT_ROWS)
        answer = api.call(lambda: api.spreadsheets.get(
            spreadsheetId=api.spreadsheet, ranges=[text], includeGridData=True,
            fields="sheets(data(rowData(values(effectiveFormat(numberFormat(type))))))"), "reading the formats of")
        out: list[str | None] = [None] * width
        for sheet in answer.get("sheets", []):
            for data in sheet.get("data", []):
                for row in data.get("rowData", []):
                    for i, cell in enumerate(row.get("values", [])[:width]):
                        kind = cell.get("effectiveFormat", {}).get("numberFormat", {}).get("type")
                        if out[i] is None and kind in FORMATTED_KINDS:
                            out[i] = kind
        return out


class GsheetSource:
    """One tab (or a range of it) of a spreadsheet, read page by page."""

    def __init__(self, config: Config, base_dir: str):
        self.config = config
        self.api = SheetsApi(config, base_dir, write=False)
        self.area = parse_area(config.range)
        properties, _ = find_tab(self.api, config.sheet, "reading")
        self.tab = Tab(self.api, properties, self.area, config.sample_rows)
        self.name = f"{config.spreadsheet}!{self.tab.title}"
        self.description = f"Google Sheets {config.describe() if config.sheet else self.name}"
        self.tab.scan()
        self._schema, self._formats = self.tab.schema, self.tab.formats

    # -- the Source seam ---------------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        end = self.area.end_row if self.area.end_row is not None else self.tab.rows_in_grid
        return Estimate(rows=max(0, end - self.area.header_row - 1))

    def partitions(self, count: int) -> list[Checkpoint]:
        return [Checkpoint("0", {"row": self.area.header_row + 2})]

    def read(self, batch_rows: int, start: Checkpoint | None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        row, done = int(start.position["row"]), start.rows  # row: 1-based sheet row of the next page
        end = self.area.end_row if self.area.end_row is not None else self._grid_rows()
        pages = 1
        while row <= end:
            size = min(batch_rows * pages, end - row + 1)
            page = self.tab.values(self.tab.range(row - 1, size), "reading")
            # Grids are often far longer than their data: past the data, empty pages double in
            # length (up to EMPTY_STRETCH pages), so the rest costs a few requests, not hundreds.
            pages = 1 if any(page) and len(page) == size else min(pages * 2, EMPTY_STRETCH)
            kept, lines = [], []
            for offset, values in enumerate(page):
                if any(v not in ("", None) for v in values):
                    kept.append([None if v == "" else v for v in values])
                    lines.append(row + offset)
            first = done + 1
            batch, rejects = self._batch(kept, lines, first)
            done += len(kept)
            row += size
            yield Chunk(batch, Checkpoint(start.partition, {"row": row}, done), first_record=first, lines=lines,
                        rejects=rejects)

    def _grid_rows(self) -> int:
        """The tab's row count now (it may have grown since the plan)."""
        tab, _ = find_tab(self.api, self.tab.title, "reading")
        return int(tab.get("gridProperties", {}).get("rowCount", 0))

    def _batch(self, rows: list[list[Any]], lines: list[int], first: int) -> tuple[pa.RecordBatch, list[Reject]]:
        arrays, bad = [], {}
        for i, field in enumerate(self._schema):
            column = [r[i] if i < len(r) else None for r in rows]
            array, wrong = column_array(column, field.type, self._formats[i])
            arrays.append(array)
            for index, why in wrong.items():
                bad.setdefault(index, (field.name, column[index], why))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        if not bad:
            return batch, []
        rejects = [Reject(self.name, f"column {name}: {why} (the column is {batch.schema.field(name).type})",
                          line=lines[i], record=first + i, column=name, value=value,
                          original=json.dumps(rows[i], default=str, ensure_ascii=False))
                   for i, (name, value, why) in sorted(bad.items())]
        keep = [i not in bad for i in range(batch.num_rows)]
        lines[:] = [line for line, kept in zip(lines, keep) if kept]
        return batch.filter(pa.array(keep)), rejects

    def close(self) -> None:
        pass
