"""Reading a tab through the real Google client, against the local Sheets API."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

import portl
from portl.connectors import registry
from portl.errors import ConfigError, SourceError, TerminalError
from tests.integration.gsheet.helpers import DATE, DATE_TIME, job, rows_of, run

PEOPLE = [
    ["id", "name", "score", "born", "seen", "active", "note"],
    [1, "ann", 3.5, {"v": 32874, "fmt": DATE}, {"v": 45352.5, "fmt": DATE_TIME}, True, "first"],
    [2, "bob", 4, {"v": 36526, "fmt": DATE}, {"v": 45353.25, "fmt": DATE_TIME}, False, None],
    [3, "", None, None, None, None, "no name"],
]


def source(local_sheets, tmp_path, spreadsheet="book", sheet="people", **extra):
    text = local_sheets.destination(spreadsheet, sheet, **extra)
    config = portl.load_job(job(tmp_path, f"source: {text}\ndestination: {{type: sqlite, path: out.db, table: t}}\n")).job.source
    return registry.open_source(config, str(tmp_path))


def read_all(src, batch_rows=1000):
    chunks = list(src.read(batch_rows, None))
    return chunks, [row for chunk in chunks for row in chunk.data.to_pylist()]


def test_values_arrive_typed_dates_from_their_number_format_and_empty_cells_as_null(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": PEOPLE})
    src = source(local_sheets, tmp_path)
    assert src.schema() == pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64()),
                                      ("born", pa.date32()), ("seen", pa.timestamp("us")), ("active", pa.bool_()),
                                      ("note", pa.string())])
    _, rows = read_all(src)
    assert rows[0] == {"id": 1, "name": "ann", "score": 3.5, "born": dt.date(1990, 1, 1),
                       "seen": dt.datetime(2024, 3, 1, 12, 0), "active": True, "note": "first"}
    assert rows[1]["born"] == dt.date(2000, 1, 1) and rows[1]["seen"] == dt.datetime(2024, 3, 2, 6, 0)
    assert rows[2] == {"id": 3, "name": None, "score": None, "born": None, "seen": None, "active": None, "note": "no name"}


def test_rows_are_read_a_page_at_a_time_and_a_checkpoint_resumes_at_the_next_row(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id", "name"]] + [[i, f"n{i}"] for i in range(1, 8)]})
    src = source(local_sheets, tmp_path)
    before = local_sheets.server.requests["values.get"]
    chunks, rows = read_all(src, batch_rows=3)
    assert [c.data.num_rows for c in chunks if c.data.num_rows] == [3, 3, 1]
    assert local_sheets.server.requests["values.get"] - before >= 3
    assert chunks[0].lines == [2, 3, 4] and chunks[0].checkpoint.position == {"row": 5}
    rest = [r["id"] for c in src.read(3, chunks[0].checkpoint) for r in c.data.to_pylist()]
    assert rest == [4, 5, 6, 7]


def test_a_wholly_empty_row_is_no_row(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"], [1], [None], [3]]})
    chunks, rows = read_all(source(local_sheets, tmp_path))
    assert [r["id"] for r in rows] == [1, 3]
    assert chunks[0].lines == [2, 4] and chunks[-1].checkpoint.rows == 2


def test_a_value_unlike_the_sample_is_rejected_with_its_row(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id", "name"], [1, "a"], [2, "b"], ["three", "c"], [4, "d"]]})
    chunks, rows = read_all(source(local_sheets, tmp_path, sample_rows=2))
    assert [r["id"] for r in rows] == [1, 2, 4]
    (reject,) = [r for c in chunks for r in c.rejects]
    assert (reject.line, reject.column, reject.value) == (4, "id", "three")
    assert "not a number" in reject.error and json.loads(reject.original) == ["three", "c"]


def test_a_job_loads_the_tab_and_the_mapping_overrides_a_type(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": PEOPLE})
    text = local_sheets.destination("book", "people")
    path = job(tmp_path, f"""\
        source: {text}
        destination: {{type: sqlite, path: out.db, table: people}}
        mapping: {{columns: {{id: {{type: text}}, name: {{}}, born: {{}}}}}}
        """)
    report = run(path, tmp_path)
    assert (report.counts.read, report.counts.inserted) == (3, 3)
    assert rows_of(tmp_path / "out.db", "SELECT id, name, born FROM people ORDER BY id") == [
        ("1", "ann", "1990-01-01"), ("2", "bob", "2000-01-01"), ("3", None, None)]


def test_range_reads_part_of_the_tab_and_the_spreadsheet_may_be_given_as_its_url(local_sheets, tmp_path):
    grid = [["title", None, None], [None, "id", "name"], [None, 1, "ann"], [None, 2, "bob"], [None, 3, "cy"]]
    local_sheets.server.create("book-1_x", sheets={"people": grid})
    url = "'https://docs.google.com/spreadsheets/d/book-1_x/edit#gid=0'"
    _, rows = read_all(source(local_sheets, tmp_path, spreadsheet=url, range="B2:C4"))
    assert rows == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]


def test_a_public_sheet_reads_with_an_api_key(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"], [7]]})
    local_sheets.server.api_keys = {"the-key"}
    text = (f"{{type: gsheet, spreadsheet: book, sheet: people, endpoint: '{local_sheets.server.url}', "
            "api_key: the-key}")
    config = portl.load_job(job(tmp_path, f"source: {text}\ndestination: {{type: sqlite, path: o.db, table: t}}\n")).job.source
    assert "the-key" not in repr(config)
    _, rows = read_all(registry.open_source(config, str(tmp_path)))
    assert rows == [{"id": 7}]


def test_a_missing_spreadsheet_is_named(local_sheets, tmp_path):
    with pytest.raises(TerminalError, match="spreadsheet nope not found"):
        source(local_sheets, tmp_path, spreadsheet="nope")


def test_a_missing_tab_is_named_with_the_closest_tabs(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"]], "orders": [["id"]]})
    with pytest.raises(SourceError, match=r"tab 'peoples' not found in spreadsheet book; did you mean 'people'\?"):
        source(local_sheets, tmp_path, sheet="peoples")


def test_no_permission_says_whom_to_share_with(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"]]})
    local_sheets.server.forbidden = {"book"}
    with pytest.raises(TerminalError, match="no permission .*share the spreadsheet"):
        source(local_sheets, tmp_path)


def test_credentials_the_api_does_not_accept_are_a_clear_error(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"]]})
    local_sheets.server.tokens = {"another-token"}
    with pytest.raises(TerminalError, match="Google did not accept the credentials"):
        source(local_sheets, tmp_path)


def test_a_refresh_token_google_refuses_is_a_clear_error(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"]]})
    local_sheets.server.refresh_tokens = {}
    with pytest.raises(TerminalError, match="Google refused the credentials .*invalid_grant"):
        source(local_sheets, tmp_path)


def test_a_credentials_file_of_another_kind_is_refused(local_sheets, tmp_path):
    local_sheets.credentials.write_text(json.dumps({"type": "external_account"}))
    with pytest.raises(ConfigError, match="has type 'external_account'; expected 'service_account'"):
        source(local_sheets, tmp_path)


def test_reads_are_retried_through_server_errors(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"], [1], [2]]})
    src = source(local_sheets, tmp_path)
    local_sheets.server.fail_next(503, 2, "values.get")
    _, rows = read_all(src)
    assert [r["id"] for r in rows] == [1, 2]


def test_a_crash_while_reading_a_tab_then_resume_loads_each_row_once(local_sheets, tmp_path, crash_hook):
    local_sheets.server.create("book", sheets={"people": [["id", "name"]] + [[i, f"n{i}"] for i in range(1, 51)]})
    text = local_sheets.destination("book", "people")
    path = job(tmp_path, f"source: {text}\ndestination: {{type: sqlite, path: out.db, table: people}}\n"
                         "batch: {size: 10}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    crash_hook.disarm()
    report = run(path, tmp_path, resume=True)
    assert report.resumed and report.counts.read == 50
    assert rows_of(tmp_path / "out.db", "SELECT id FROM people ORDER BY id") == [(i,) for i in range(1, 51)]


def _service_account(local_sheets, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "k1",
                                "private_key": pem, "client_email": "loader@p.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": local_sheets.server.token_uri}))
    return path


def test_a_service_account_key_reads_and_a_403_names_its_email(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"], [1]]})
    local_sheets.credentials = _service_account(local_sheets, tmp_path)
    _, rows = read_all(source(local_sheets, tmp_path))
    assert rows == [{"id": 1}]
    local_sheets.server.forbidden = {"book"}
    with pytest.raises(TerminalError, match="share the spreadsheet with loader@p.iam.gserviceaccount.com"):
        source(local_sheets, tmp_path)


def test_an_api_key_google_refuses_is_never_printed(local_sheets, tmp_path):
    local_sheets.server.create("book", sheets={"people": [["id"], [7]]})
    text = (f"{{type: gsheet, spreadsheet: book, sheet: people, endpoint: '{local_sheets.server.url}', "
            "api_key: not-the-key-123}")
    config = portl.load_job(job(tmp_path, f"source: {text}\ndestination: {{type: sqlite, path: o.db, table: t}}\n")).job.source
    with pytest.raises(TerminalError) as caught:
        registry.open_source(config, str(tmp_path))
    assert "API key not valid" in str(caught.value)
    assert "not-the-key-123" not in str(caught.value) and caught.value.__cause__ is None
