"""A local server speaking the Google Sheets API v4 JSON endpoints Portl uses, so that the real
``google-api-python-client`` reaches it over HTTP (``client_options={"api_endpoint": url}``).

Spreadsheets live in memory as grids of cells, a value and a number format each
(:mod:`tests.fakes.sheets_grid`). Served:

- ``GET /v4/spreadsheets/{id}``: properties, sheets (``gridProperties``, ``hidden``,
  ``developerMetadata``) and, with ``ranges`` + ``includeGridData``, each cell's
  ``effectiveValue`` / ``userEnteredFormat`` / ``effectiveFormat.numberFormat``;
- ``GET …/values/{range}``, ``GET …/values:batchGet`` (``majorDimension`` ROWS or COLUMNS,
  trailing empty rows and cells trimmed as Google does; ``UNFORMATTED_VALUE`` answers);
- ``POST …/values/{range}:append``, ``PUT …/values/{range}``, ``POST …/values/{range}:clear``;
- ``POST /v4/spreadsheets/{id}:batchUpdate`` with ``addSheet``, ``deleteSheet``, ``updateCells``,
  ``appendCells``, ``appendDimension``, ``deleteDimension``, ``updateSheetProperties`` and
  ``createDeveloperMetadata``. Like the real API a batchUpdate is atomic: it works on a copy that
  replaces the spreadsheet only when every request applied.
- ``POST /token``: an OAuth token endpoint (refresh-token and JWT-bearer grants), so that
  credential files whose ``token_uri`` points here work.

What it is not: no formulas (a string starting with ``=`` stays a string), no formatting beyond
number formats, no ``fields`` masks on answers (it answers everything it has), no A1 ranges
without a sheet name other than the first sheet. Limits are the real ones: 50,000 characters per
cell, 10 million cells per spreadsheet (``cell_limit`` to lower it).

In its own process (``python -m tests.fakes.sheets_server --port 0 --refresh-token T``, which
accepts the refresh token ``T``), ``POST /_fake/create`` makes a spreadsheet (``{"spreadsheetId",
"sheets": {title: rows}}``), ``GET /_fake/requests`` answers the counts and ``POST /_fake/values``
a tab's values.

Faults: ``fail_next(status, count, kind)`` answers the next ``count`` requests of ``kind`` (or
any) with ``status`` (429 ``RESOURCE_EXHAUSTED``, 500, 503, 403, 404); ``after_applying=True``
applies a write first, as when Google's answer is lost after the change was made. ``requests`` counts every
request by kind (``get``, ``values.get``, ``values.batchGet``, ``values.append``,
``values.update``, ``values.clear``, ``batchUpdate``, ``token``). With ``tokens`` set, requests
must carry one of them as a Bearer token (else 401); ``api_keys`` may read only.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.serving import FakeServer, Handler, serve_main
from tests.fakes.sheets_grid import (
    CELL_CHARACTERS, CELL_LIMIT, ApiError, Spreadsheet, apply_request, cell_data, parse_range, plain,
)

PAYLOAD_BYTES = 10 * 1024 * 1024
WRITES = ("batchUpdate", "values.append", "values.update", "values.clear")
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MESSAGES = {429: "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'",
            500: "Internal error encountered.", 503: "The service is currently unavailable.",
            403: "The caller does not have permission", 404: "Requested entity was not found."}


class SheetsHandler(Handler):
    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _route(self, method: str) -> None:
        body = self.read_body()
        if len(body) > PAYLOAD_BYTES:
            self.answer_json(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                             f"Request payload size exceeds the limit: {PAYLOAD_BYTES} bytes."}})
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        try:
            status, answer = self.app.handle(method, unquote(parts.path), query, body, self.headers)
        except ApiError as exc:
            status, answer = exc.status, {"error": {"code": exc.status, "message": str(exc),
                                                    "status": STATUS.get(exc.status, "UNKNOWN")}}
        self.answer_json(status, answer)


class SheetsServer(FakeServer):
    """The fake Sheets API; ``url`` is the ``api_endpoint`` and ``token_uri`` the OAuth endpoint."""

    handler = SheetsHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.books: dict[str, Spreadsheet] = {}
        self.requests: Counter[str] = Counter()
        self.updates: list[list[str]] = []
        """The request kinds of every batchUpdate that applied, in order."""
        self.tokens: set[str] | None = None
        self.refresh_tokens: dict[str, str] = {}
        self.api_keys: set[str] = set()
        self.forbidden: set[str] = set()
        self.cell_limit = CELL_LIMIT
        self.token_uri = self.url + "/token"
        self._faults: list[list] = []
        self._lock = threading.Lock()

    # set-up and inspection, for tests

    def create(self, spreadsheet_id: str, title: str = "Book", sheets: dict[str, list[list[Any]]] | None = None) -> Spreadsheet:
        book = Spreadsheet(spreadsheet_id, title)
        for name, rows in (sheets or {"Sheet1": []}).items():
            book.add_sheet(name)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value is not None:
                        book.sheets[-1].put(r, c, value if isinstance(value, dict) else {"v": value})
        self.books[spreadsheet_id] = book
        return book

    def values(self, spreadsheet_id: str, title: str) -> list[list[Any]]:
        """A tab's values as plain Python rows, trailing empty rows and cells left out."""
        sheet = self.books[spreadsheet_id].sheet(title)
        rows = [[plain(c) for c in row] for row in sheet.rows[:sheet.last_row()]]
        for row in rows:
            while row and row[-1] is None:
                row.pop()
        return rows

    def writes(self) -> int:
        return sum(self.requests[k] for k in WRITES)

    def fail_next(self, status: int, count: int = 1, kind: str | None = None, *, after_applying: bool = False) -> None:
        """Answer the next ``count`` requests of ``kind`` (any when None) with ``status``; with
        ``after_applying``, a write is applied first (the answer is lost, the change is not)."""
        with self._lock:
            self._faults.append([status, count, kind, after_applying])

    # requests

    def handle(self, method: str, path: str, query: dict, body: bytes, headers: Any) -> tuple[int, Any]:
        if path == "/token":
            self._count("token")
            return self._token(body)
        if path.startswith("/_fake/"):  # for a server in its own process: set-up and counts
            return self._control(method, path, json.loads(body) if body else {})
        match = re.match(r"^/v4/spreadsheets/([^/:]+)(?::batchUpdate|/values(?::batchGet|/(.+?)(?::(append|clear))?)?)?$", path)
        if not match:
            raise ApiError(404, f"no such endpoint: {method} {path}")
        spreadsheet_id, value_range, verb = match.group(1), match.group(2), match.group(3)
        if path.endswith(":batchUpdate"):
            kind = "batchUpdate"
        elif path.endswith("values:batchGet"):
            kind = "values.batchGet"
        elif value_range is not None:
            kind = {"append": "values.append", "clear": "values.clear"}.get(verb or "", "values.update" if method == "PUT" else "values.get")
        else:
            kind = "get"
        self._count(kind)
        late = self._check_fault(kind)
        self._check_auth(headers, query, kind)
        if spreadsheet_id in self.forbidden:
            raise ApiError(403, MESSAGES[403])
        with self._lock:
            book = self.books.get(spreadsheet_id)
            if book is None:
                raise ApiError(404, MESSAGES[404])
            payload = json.loads(body) if body else {}
            if kind == "get":
                return 200, self._get(book, query)
            if kind == "values.get":
                return 200, self._read(book, value_range, query)
            if kind == "values.batchGet":
                return 200, {"spreadsheetId": book.spreadsheet_id,
                             "valueRanges": [self._read(book, r, query) for r in query.get("ranges", [])]}
            if kind == "batchUpdate":
                answer = self._batch_update(book, payload)
            else:
                answer = self._values_write(book, kind, value_range, payload)
        if late:
            raise ApiError(late, MESSAGES.get(late, "fault injected"))
        return 200, answer

    def _control(self, method: str, path: str, payload: dict) -> tuple[int, Any]:
        if path == "/_fake/requests":
            with self._lock:
                return 200, dict(self.requests)
        if path == "/_fake/create" and method == "POST":
            with self._lock:
                self.create(payload["spreadsheetId"], sheets=payload.get("sheets"))
            return 200, {}
        if path == "/_fake/values" and method == "POST":
            with self._lock:
                return 200, {"values": self.values(payload["spreadsheetId"], payload["sheet"])}
        raise ApiError(404, f"no such endpoint: {method} {path}")

    def _count(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def _check_fault(self, kind: str) -> int:
        """Raise the fault due for a request of ``kind``, or return the status to answer after
        applying it (0: none)."""
        with self._lock:
            for fault in self._faults:
                status, count, wanted, after_applying = fault
                if count > 0 and wanted in (None, kind):
                    fault[1] -= 1
                    if after_applying and kind in WRITES:
                        return status
                    raise ApiError(status, MESSAGES.get(status, "fault injected"))
        return 0

    def _check_auth(self, headers: Any, query: dict, kind: str) -> None:
        key = query.get("key", [None])[0]
        if key is not None:
            if key not in self.api_keys:
                raise ApiError(400, "API key not valid. Please pass a valid API key.")
            if kind in WRITES:
                raise ApiError(401, "API keys are not supported by this API. Expected OAuth2 access token or other "
                                    "authentication credentials that assert a principal.")
            return
        if self.tokens is None:
            return
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                                "cookie or other valid authentication credential.")

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            token = self.refresh_tokens.get(form.get("refresh_token", ""))
            if token is None:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            token = self.refresh_tokens.get("service-account")
            if token is None:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        else:
            return 400, {"error": "unsupported_grant_type"}
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _get(self, book: Spreadsheet, query: dict) -> dict:
        grid = query.get("includeGridData", ["false"])[0] == "true"
        ranges = query.get("ranges", [])
        sheets = []
        for index, sheet in enumerate(book.sheets):
            entry: dict = {"properties": sheet.properties(index)}
            if sheet.metadata:
                entry["developerMetadata"] = sheet.metadata
            wanted = [r for r in ranges if parse_range(book, r)[0] is sheet]
            if grid and wanted:
                entry["data"] = []
                for text in wanted:
                    _, r0, c0, r1, c1 = parse_range(book, text)
                    r1 = min(r1 if r1 is not None else sheet.last_row(), sheet.last_row())
                    c1 = c1 if c1 is not None else sheet.column_count
                    rows = [{"values": [cell_data(sheet.cell(r, c)) for c in range(c0, c1)]} for r in range(r0, r1)]
                    entry["data"].append({"startRow": r0, "startColumn": c0, "rowData": rows})
            sheets.append(entry)
        for text in ranges:
            parse_range(book, text)  # an unknown sheet is an error
        return {"spreadsheetId": book.spreadsheet_id, "properties": {"title": book.title}, "sheets": sheets}

    def _read(self, book: Spreadsheet, text: str, query: dict) -> dict:
        sheet, r0, c0, r1, c1 = parse_range(book, text)
        last = sheet.last_row()
        r1 = min(last, r1) if r1 is not None else last
        c1 = c1 if c1 is not None else sheet.column_count
        formatted = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0] == "FORMATTED_VALUE"
        rows = []
        for r in range(r0, r1):
            row = [plain(sheet.cell(r, c)) for c in range(c0, c1)]
            if formatted:
                row = [None if v is None else ("TRUE" if v is True else "FALSE" if v is False else str(v)) for v in row]
            while row and row[-1] is None:
                row.pop()
            rows.append(["" if v is None else v for v in row])
        while rows and not rows[-1]:
            rows.pop()
        answer: dict = {"range": text, "majorDimension": query.get("majorDimension", ["ROWS"])[0]}
        if answer["majorDimension"] == "COLUMNS" and rows:
            width = max(len(r) for r in rows)
            columns = [[r[c] if c < len(r) else "" for r in rows] for c in range(width)]
            for column in columns:
                while column and column[-1] == "":
                    column.pop()
            rows = columns
        if rows:
            answer["values"] = rows
        return answer

    def _values_write(self, book: Spreadsheet, kind: str, text: str, payload: dict) -> dict:
        work = book.snapshot()
        sheet, r0, c0, r1, c1 = parse_range(work, text)
        if kind == "values.clear":
            for r in range(r0, min(len(sheet.rows), r1 if r1 is not None else len(sheet.rows))):
                row = sheet.own(r)
                for c in range(c0, min(len(row), c1 if c1 is not None else len(row))):
                    row[c] = None
        else:
            rows = payload.get("values", [])
            if kind == "values.append":
                r0 = max(r0, sheet.last_row())
                sheet.row_count = max(sheet.row_count, r0 + len(rows))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    if isinstance(value, str) and len(value) > CELL_CHARACTERS:
                        raise ApiError(400, f"Your input contains more than the maximum of {CELL_CHARACTERS} "
                                            "characters in a single cell.")
                    sheet.put(r0 + i, c0 + j, None if value is None or value == "" else {"v": value})
        self._check_cells(work)
        self.books[book.spreadsheet_id] = work
        return {"spreadsheetId": book.spreadsheet_id}

    def _batch_update(self, book: Spreadsheet, payload: dict) -> dict:
        work = book.snapshot()  # atomic: applied to a copy that replaces the book only at the end
        replies = []
        for i, request in enumerate(payload.get("requests", [])):
            (name, body), = request.items()
            try:
                replies.append(apply_request(work, name, body))
            except ApiError as exc:
                raise ApiError(exc.status, f"Invalid requests[{i}].{name}: {exc}") from None
        self._check_cells(work)
        self.books[book.spreadsheet_id] = work
        self.updates.append([next(iter(r)) for r in payload.get("requests", [])])
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    def _check_cells(self, book: Spreadsheet) -> None:
        cells = sum(s.row_count * s.column_count for s in book.sheets)
        if cells > self.cell_limit:
            raise ApiError(400, f"This action would increase the number of cells in the workbook above the limit of "
                                f"{self.cell_limit} cells.")


def main(argv: list[str] | None = None) -> None:
    def make(options: Any) -> SheetsServer:
        server = SheetsServer(options.host, options.port, background=False)
        if options.refresh_token:
            server.refresh_tokens = {options.refresh_token: "local-access-token", "service-account": "local-access-token"}
        return server

    def arguments(parser: Any) -> None:
        parser.add_argument("--refresh-token", help="A refresh token the token endpoint accepts.")

    serve_main("A local Google Sheets API v4 (in memory).", make, arguments, argv=argv)


if __name__ == "__main__":
    main()
