"""portl init with Google Sheets: the spreadsheet (ID or URL) and the tab are asked like a file's
path, and looked at through the connector, against the local Sheets API."""

from __future__ import annotations

import pytest

from portl.errors import ConfigError

from .test_interactive import AUTO, NO_KEY, REST, SAVE, SOURCE

URL = "https://docs.google.com/spreadsheets/d/book/edit#gid=0"


@pytest.fixture
def sheets(local_sheets, folder):
    credentials = folder / "google-user.json"
    credentials.write_text(local_sheets.credentials.read_text())
    local_sheets.server.create("book", sheets={"people": [["id", "name"], [1, "ann"], [2, "bob"]]})
    return local_sheets


def test_a_csv_into_a_tab_takes_the_spreadsheet_from_its_url_and_names_the_tab_after_the_source(init, sheets):
    written = init(source_path="customers.csv", destination_spreadsheet=URL, destination_credentials="google-user.json",
                   destination_endpoint=sheets.server.url)

    destination = written.job().job.destination
    assert (destination.type, destination.spreadsheet, destination.sheet) == ("gsheet", "book", "customers")
    assert destination.credentials == "google-user.json"
    assert sheets.server.writes() == 0  # looked at, not written


def test_a_tab_as_the_source_is_read_for_its_columns(init, sheets):
    written = init(source_type="gsheet", source_spreadsheet="book", source_sheet="people",
                   source_credentials="google-user.json", source_endpoint=sheets.server.url, destination_type="sqlite")

    job = written.job().job
    assert (job.source.spreadsheet, job.source.sheet) == ("book", "people")
    assert (job.destination.path, job.destination.table) == ("people.db", "people")


def test_a_missing_tab_is_reported_with_the_tabs_there_are(init, sheets):
    with pytest.raises(ConfigError) as caught:
        init(source_type="gsheet", source_spreadsheet="book", source_sheet="peple",
             source_credentials="google-user.json", source_endpoint=sheets.server.url, destination_type="sqlite")
    assert "tab 'peple' not found in spreadsheet book; did you mean 'people'?" in str(caught.value)


def test_without_a_spreadsheet_the_missing_answers_are_listed(init):
    with pytest.raises(ConfigError) as caught:
        init(source_path="customers.csv", destination_type="gsheet")
    assert "--destination-spreadsheet (destination_spreadsheet) (for Google Sheets destinations): missing" in str(caught.value)
    assert "destination_sheet" not in str(caught.value)  # it waits for the spreadsheet


def test_on_a_terminal_the_spreadsheet_and_the_tab_are_asked_and_a_wrong_tab_asked_again(scripted, sheets):
    sheets.server.create("empty", sheets={"Sheet1": []})
    steps = SOURCE + [
        ("Destination type", "gsheet"),
        ("Spreadsheet ID or URL", "not a url!"),
        ("Spreadsheet ID or URL", URL.replace("book", "empty")),
        ("Credentials file", "nowhere.json"),
        ("Credentials file", "google-user.json"),
        ("Tab name (created when missing)", ""),
    ] + AUTO + NO_KEY + REST + SAVE
    written = scripted(steps, destination_endpoint=sheets.server.url)

    destination = written.job().job.destination
    assert (destination.spreadsheet, destination.sheet) == ("empty", "customers")
    assert "is neither a spreadsheet ID nor a Google Sheets URL" in written.transcript
    assert "no such file: nowhere.json" in written.transcript
