"""Writing a tab through the real Google client, against the local Sheets API: modes, conflict
strategies, refused cells, retries, resume and the errors a user meets."""

from __future__ import annotations

import csv

import pytest

import portl
from portl.errors import ConfigError, TerminalError, TransientError
from tests.integration.gsheet.helpers import DATE, job, run, write_csv

COLUMNS = "mapping: {columns: {id: {type: int}, name: {}, born: {type: date}}}\n"


def sheet_job(local_sheets, tmp_path, body="", **extra):
    destination = local_sheets.destination("book", "people", **extra)
    return job(tmp_path, f"source: {{type: csv, path: in.csv}}\ndestination: {destination}\n" + body)


@pytest.fixture
def book(local_sheets):
    return local_sheets.server.create("book", sheets={"Sheet1": []})


def cell(server, row, column):
    return server.books["book"].sheet("people").cell(row, column)


def test_append_creates_the_tab_with_a_header_typed_cells_and_one_request_per_batch(local_sheets, tmp_path, book):
    server = local_sheets.server
    write_csv(tmp_path, "id,name,born\n1,ann,1990-01-01\n2,,2000-01-01\n3,cy,\n")
    before = server.writes()
    report = run(sheet_job(local_sheets, tmp_path, "batch: {size: 2}\n" + COLUMNS), tmp_path)
    assert (report.counts.read, report.counts.inserted) == (3, 3)
    assert server.values("book", "people") == [["id", "name", "born"], [1, "ann", 32874], [2, None, 36526], [3, "cy"]]
    assert cell(server, 1, 2)["fmt"] == DATE
    # set-up (tabs, header), one batchUpdate per batch of 2 rows (with its checkpoint), then the
    # partition's last checkpoint and the run's end marker
    assert server.updates == [["addSheet", "addSheet"], ["updateCells", "updateCells"],
                              ["appendCells", "appendCells"], ["appendCells", "updateCells"], ["updateCells"],
                              ["appendCells"]]
    assert server.writes() - before == 6
    assert server.books["book"].sheet("_portl_checkpoints").hidden


def test_append_to_a_tab_whose_header_lacks_a_column_is_refused_at_plan_time(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id", "name"], [1, "a"]]})
    write_csv(tmp_path, "id,name,born\n2,b,2000-01-01\n")
    with pytest.raises(ConfigError, match="has the header id, name, which lacks born"):
        portl.plan(portl.load_job(sheet_job(local_sheets, tmp_path, "mode: append\n" + COLUMNS)))


def test_append_writes_into_the_columns_of_an_existing_header_whatever_their_order(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["name", "extra", "id"], ["a", "x", 1]]})
    write_csv(tmp_path, "id,name\n2,b\n")
    body = "mode: append\nmapping: {columns: {id: {type: int}, name: {}}, extra_destination_columns: ignore}\n"
    run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    assert local_sheets.server.values("book", "people") == [["name", "extra", "id"], ["a", "x", 1], ["b", None, 2]]


def test_replace_leaves_only_the_new_rows(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["old"], ["x"], ["y"], ["z"]]})
    write_csv(tmp_path, "id,name,born\n5,eve,\n")
    report = run(sheet_job(local_sheets, tmp_path, "mode: replace\n" + COLUMNS), tmp_path)
    assert report.counts.inserted == 1
    assert local_sheets.server.values("book", "people") == [["id", "name", "born"], [5, "eve"]]


UPSERTS = {
    "skip": ([[1, "ann", 32874], [2, "bob"], [3, "cy"]], (1, 0, 2)),
    "overwrite": ([[1, "ANN"], [2, "BOB", 36526], [3, "cy"]], (1, 2, 0)),
    "merge": ([[1, "ANN", 32874], [2, "BOB", 36526], [3, "cy"]], (1, 2, 0)),
}


@pytest.mark.parametrize("strategy", UPSERTS)
def test_upsert_reads_the_keys_once_and_settles_existing_rows(local_sheets, tmp_path, book, strategy):
    server = local_sheets.server
    body = f"conflict: {{key: [id], strategy: {strategy}}}\n" + COLUMNS
    write_csv(tmp_path, "id,name,born\n1,ann,1990-01-01\n2,bob,\n")
    run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    write_csv(tmp_path, "id,name,born\n1,ANN,\n2,BOB,2000-01-01\n3,cy,\n")
    reads, writes = server.requests["values.batchGet"], server.requests["batchUpdate"]
    report = run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    expected, (inserted, updated, skipped) = UPSERTS[strategy]
    assert (report.counts.inserted, report.counts.updated, report.counts.skipped_total) == (inserted, updated, skipped)
    assert server.values("book", "people")[1:] == expected
    assert server.requests["values.batchGet"] - reads == 1
    assert server.requests["batchUpdate"] - writes == 3  # the batch with its checkpoint, the last one, the end


def test_upsert_fail_names_every_existing_key_and_writes_nothing(local_sheets, tmp_path, book):
    body = "conflict: {key: [id], strategy: fail}\n" + COLUMNS
    write_csv(tmp_path, "id,name,born\n1,ann,\n2,bob,\n")
    run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    write_csv(tmp_path, "id,name,born\n3,cy,\n1,x,\n2,y,\n")
    with pytest.raises(portl.ConflictError) as caught:
        run(sheet_job(local_sheets, tmp_path, body), tmp_path, restart=True)
    assert sorted(caught.value.keys) == [(1,), (2,)] and "tab people" in str(caught.value)
    assert [r[0] for r in local_sheets.server.values("book", "people")[1:]] == [1, 2]


def test_a_key_appended_by_one_batch_is_updated_by_a_later_one(local_sheets, tmp_path, book):
    write_csv(tmp_path, "id,name,born\n1,a,\n2,b,\n1,c,\n")
    body = "batch: {size: 2}\nconflict: {key: [id], strategy: overwrite}\n" + COLUMNS
    report = run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    assert (report.counts.inserted, report.counts.updated) == (2, 1)
    assert local_sheets.server.values("book", "people")[1:] == [[1, "c"], [2, "b"]]


def test_a_cell_over_50000_characters_is_rejected_with_its_reason_and_the_others_load(local_sheets, tmp_path, book):
    long = "x" * 50_001
    write_csv(tmp_path, f"id,name,born\n1,ok,\n2,{long},\n3,fine,\n")
    report = run(sheet_job(local_sheets, tmp_path, COLUMNS), tmp_path)
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 2, 1)
    assert [r[:2] for r in local_sheets.server.values("book", "people")[1:]] == [[1, "ok"], [3, "fine"]]
    with open(tmp_path / "sheet_job.rejects.csv", newline="") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert (reject["line"], reject["column"]) == ("3", "name")
    assert "50,001 characters, more than the 50,000 a spreadsheet cell holds" in reject["error"]


def test_a_429_is_retried_then_the_batch_lands_once(local_sheets, tmp_path, book):
    server = local_sheets.server
    write_csv(tmp_path, "id,name,born\n1,a,\n2,b,\n")
    path = sheet_job(local_sheets, tmp_path, COLUMNS)
    portl.plan(portl.load_job(path)).close()
    server.fail_next(429, 2, "batchUpdate")
    report = run(path, tmp_path)
    assert report.counts.inserted == 2
    assert server.values("book", "people")[1:] == [[1, "a"], [2, "b"]]


def test_a_quota_that_never_clears_ends_with_a_message_naming_the_spreadsheet(local_sheets, tmp_path, book):
    write_csv(tmp_path, "id,name,born\n1,a,\n")
    path = sheet_job(local_sheets, tmp_path, "retry: {attempts: 1}\n" + COLUMNS, retries="3")
    local_sheets.server.fail_next(429, 1000, "batchUpdate")
    with pytest.raises(TransientError, match="spreadsheet book: Google's quota is still used up after 3 attempts"):
        run(path, tmp_path)


def test_a_crash_then_resume_loads_each_row_once(local_sheets, tmp_path, book, crash_hook):
    write_csv(tmp_path, "id,name,born\n" + "".join(f"{i},n{i},\n" for i in range(1, 101)))
    path = sheet_job(local_sheets, tmp_path, "batch: {size: 10}\n" + crash_hook.yaml + COLUMNS)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    assert len(local_sheets.server.values("book", "people")) == 1 + 20  # two batches committed
    crash_hook.disarm()
    report = run(path, tmp_path, resume=True)
    assert report.resumed and report.counts.read == 100
    assert [r[0] for r in local_sheets.server.values("book", "people")[1:]] == list(range(1, 101))


def test_writing_with_an_api_key_is_refused_at_plan_time(local_sheets, tmp_path, book):
    write_csv(tmp_path, "id,name,born\n1,a,\n")
    destination = f"{{type: gsheet, spreadsheet: book, sheet: people, endpoint: '{local_sheets.server.url}', api_key: k}}"
    path = job(tmp_path, f"source: {{type: csv, path: in.csv}}\ndestination: {destination}\n")
    with pytest.raises(ConfigError, match="Google refuses writes made with an API key"):
        portl.plan(portl.load_job(path))


def test_a_batch_update_is_atomic_in_the_local_server(local_sheets, book):
    from googleapiclient.discovery import build
    from googleapiclient.errors import HttpError
    from google.auth.credentials import AnonymousCredentials

    local_sheets.server.tokens = None
    service = build("sheets", "v4", credentials=AnonymousCredentials(), static_discovery=True,
                    client_options={"api_endpoint": local_sheets.server.url})
    sheet_id = book.sheet("Sheet1").sheet_id
    good = {"appendCells": {"sheetId": sheet_id, "rows": [{"values": [{"userEnteredValue": {"numberValue": 1}}]}],
                            "fields": "userEnteredValue"}}
    bad = {"updateCells": {"start": {"sheetId": sheet_id, "rowIndex": 5000, "columnIndex": 0},
                           "rows": [{"values": [{}]}], "fields": "userEnteredValue"}}
    with pytest.raises(HttpError, match="exceeds grid limits"):
        service.spreadsheets().batchUpdate(spreadsheetId="book", body={"requests": [good, bad]}).execute()
    assert local_sheets.server.values("book", "Sheet1") == []


def test_a_write_applied_but_answered_500_is_not_sent_again(local_sheets, tmp_path, book):
    server = local_sheets.server
    write_csv(tmp_path, "id,name,born\n" + "".join(f"{i},n{i},\n" for i in range(1, 21)))
    path = sheet_job(local_sheets, tmp_path, "batch: {size: 10}\n" + COLUMNS)
    portl.plan(portl.load_job(path)).close()
    server.fail_next(500, 1, "batchUpdate", after_applying=True)
    report = run(path, tmp_path)
    assert (report.counts.read, report.counts.inserted) == (20, 20)
    assert [r[0] for r in server.values("book", "people")[1:]] == list(range(1, 21))


def test_a_write_whose_outcome_cannot_be_told_is_not_sent_again():
    import httplib2
    from googleapiclient.errors import HttpError

    from portl.connectors.gsheet.client import SheetsApi
    from portl.connectors.gsheet.config import Config
    from portl.errors import TerminalError, TransientError

    api = SheetsApi(Config(type="gsheet", spreadsheet="book", sheet="people", api_key="k",
                           endpoint="http://127.0.0.1:9"), ".", write=False)
    api.sleep = lambda seconds: None
    sent = []

    class Lost:  # a write whose answer is lost: a 500 after Google may have applied it
        def execute(self, num_retries):
            sent.append(1)
            raise HttpError(httplib2.Response({"status": 500}), b'{"error": {"message": "backend error"}}')

    def landed():
        raise TransientError("reading the checkpoints of spreadsheet book failed: connection refused")

    with pytest.raises(TerminalError, match=r"writing to spreadsheet book failed \(500 .*\) and whether it was "
                                            r"applied cannot be told .*; nothing is sent again: run again with --resume"):
        api.call(Lost, "writing to", write=True, landed=landed)
    assert sent == [1]


def test_rows_past_the_spreadsheets_10_million_cells_are_rejected(local_sheets, tmp_path):
    server = local_sheets.server
    book = server.create("book", sheets={"Sheet1": []})
    # Room for the new tab (3 cells), the checkpoints tab (6), 2 rows of 3 cells and 2 checkpoint rows of 6
    book.sheets[0].row_count, book.sheets[0].column_count = 10_000_000 - 3 - 6 - 2 * 3 - 2 * 6, 1
    write_csv(tmp_path, "id,name,born\n1,a,\n2,b,\n3,c,\n4,d,\n")
    report = run(sheet_job(local_sheets, tmp_path, COLUMNS), tmp_path)
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (4, 2, 2)
    assert [r[0] for r in server.values("book", "people")[1:]] == [1, 2]
    with open(tmp_path / "sheet_job.rejects.csv", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["line"] for r in rejects] == ["4", "5"]
    assert "more than 10,000,000 cells, the most Google Sheets allows" in rejects[0]["error"]


def test_batches_are_cut_to_stay_under_googles_10_mb_per_request(local_sheets, tmp_path, book):
    server = local_sheets.server
    write_csv(tmp_path, "id,name,born\n" + "".join(f"{i},n{i},2024-01-01\n" for i in range(1, 30_001)))
    path = sheet_job(local_sheets, tmp_path, "batch: {size: 25000}\n" + COLUMNS)
    the_plan = portl.plan(portl.load_job(path))
    rows = the_plan.sink.max_batch_rows
    the_plan.close()
    assert 20_000 < rows < 25_000  # about 360 bytes a row (a text, a date, a number), 8 MB a request
    before = server.requests["batchUpdate"]
    report = run(path, tmp_path)
    assert report.counts.inserted == 30_000 and report.counts.batches == 2
    assert server.requests["batchUpdate"] - before == 2 + 2 + 2  # set-up, two batches, the last checkpoints


def test_a_batch_whose_request_would_pass_10_mb_is_refused_before_it_is_sent(local_sheets, tmp_path, book):
    long = "x" * 1_000  # texts far longer than the batch size was cut for
    write_csv(tmp_path, "id,name,born\n" + "".join(f"{i},{long},\n" for i in range(1, 12_001)))
    path = sheet_job(local_sheets, tmp_path, COLUMNS)
    with pytest.raises(TerminalError, match=r"a batch of 12,000 rows makes a request of 1\d\.\d MB, more than the 10 MB "
                                            r"Google accepts; set batch.size to at most 7,\d{3}"):
        run(path, tmp_path)
    assert local_sheets.server.values("book", "people") == [["id", "name", "born"]]


def test_in_one_job_transaction_a_later_batch_updates_rows_still_waiting_and_a_refused_row_is_undone_alone(
        local_sheets, tmp_path, book):
    long = "x" * 50_001
    write_csv(tmp_path, f"id,name,born\n1,a,\n2,b,\n1,c,\n3,{long},\n2,,2000-01-01\n4,d,\n")
    body = "transaction: job\nbatch: {size: 2}\nconflict: {key: [id], strategy: merge}\n" + COLUMNS
    before = local_sheets.server.requests["batchUpdate"]
    report = run(sheet_job(local_sheets, tmp_path, body), tmp_path)
    assert (report.counts.inserted, report.counts.updated, report.counts.rejected) == (3, 2, 1)
    assert local_sheets.server.values("book", "people")[1:] == [[1, "c"], [2, "b", 36526], [4, "d"]]
    assert local_sheets.server.requests["batchUpdate"] - before == 2 + 1 + 1  # set-up, the whole load, the end marker


def test_the_local_servers_values_endpoints_append_update_and_clear(local_sheets, book):
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    local_sheets.server.tokens = None
    values = build("sheets", "v4", credentials=AnonymousCredentials(), static_discovery=True,
                   client_options={"api_endpoint": local_sheets.server.url}).spreadsheets().values()
    values.update(spreadsheetId="book", range="Sheet1!A1", valueInputOption="RAW", body={"values": [["id"], [1]]}).execute()
    values.append(spreadsheetId="book", range="Sheet1!A1", valueInputOption="RAW", body={"values": [[2], [3]]}).execute()
    assert local_sheets.server.values("book", "Sheet1") == [["id"], [1], [2], [3]]
    values.clear(spreadsheetId="book", range="Sheet1!A3:A4").execute()
    got = values.get(spreadsheetId="book", range="Sheet1!A1:A10", valueRenderOption="UNFORMATTED_VALUE").execute()
    assert got["values"] == [["id"], [1]]
    assert [local_sheets.server.requests[k] for k in ("values.update", "values.append", "values.clear")] == [1, 1, 1]
