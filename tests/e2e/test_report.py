"""``portl report RUN`` as a user runs it, against a ledger filled through the Ledger API: a run that
kept a quality report, a run without one, an unknown run, and HTML asked for on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from portl.state.ledger import Ledger
from tests.e2e.conftest import PORTL, assert_clean_failure
from tests.quality_samples import sample_report


@pytest.fixture
def runs(portl) -> dict[str, str]:
    """Two finished runs in the test's ledger: ``checked`` kept the sample report, ``plain`` has
    none but rejected two rows (its reject file beside it)."""
    rejects = portl.cwd / "plain.rejects.csv"
    rejects.write_text("source,line,record,column,value,error,original\n"
                       "in.csv,3,2,qty,ten,\"value 'ten' does not fit column qty (int64)\",\"2,ten\"\n"
                       "in.csv,5,4,qty,,required value is missing,\"4,\"\n", encoding="utf-8")
    ledger = Ledger(str(portl.state_dir))
    try:
        checked = ledger.start_run("orders", str(portl.cwd / "orders.yaml"), "h1", {"destination": "postgres orders"})
        ledger.finish_run(checked.id, "failed_checks", {"read": 20950, "inserted": 20934, "rejected": 16})
        ledger.save_report(checked.id, sample_report().to_json())
        plain = ledger.start_run("plain", str(portl.cwd / "plain.yaml"), "h2",
                                 {"rejects_file": str(rejects), "destination": "sqlite out.db"})
        ledger.finish_run(plain.id, "succeeded", {"read": 5, "inserted": 3, "updated": 0, "skipped": 0,
                                                  "skipped_by_reason": {}, "rejected": 2})
    finally:
        ledger.close()
    return {"checked": checked.id, "plain": plain.id}


def test_a_run_that_kept_its_report_prints_it_as_junit(portl, runs):
    result = portl("report", runs["checked"], "--format", "junit")

    assert result.code == 0, result.log
    suite = ET.fromstring(result.stdout.encode()).find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("orders", "10", "5", "1")


def test_a_run_is_found_by_a_prefix_of_its_id_and_printed_as_json(portl, runs):
    result = portl("report", runs["checked"][:-2])

    assert result.code == 0, result.log
    document = json.loads(result.stdout)
    assert document["format_version"] == 1 and document["run_id"] == "20240322-060000-a1b2c3"
    assert document["results"][0]["details"]["missing"] == ["2024-03-05", "2024-03-12"]


def test_a_run_without_a_kept_report_gets_one_from_the_ledger(portl, runs):
    result = portl("report", runs["plain"], "--format", "json")

    assert result.code == 0, result.log
    document = json.loads(result.stdout)
    assert (document["job"], document["rows"], document["run_status"], document["results"]) == ("plain", 5, "succeeded", [])
    assert document["rejects_by_reason"] == {"value '…' does not fit column qty (int64)": 1, "qty: required value is missing": 1}
    assert document["gate"] == "No quality checks ran for this run; it succeeded: 3 rows loaded."


def test_html_goes_to_the_file_given_and_the_format_follows_its_extension(portl, runs):
    result = portl("report", runs["plain"], "-o", "out/plain.html")

    assert result.code == 0, result.log
    assert result.stdout == ""
    assert f"wrote the html report of run {runs['plain']} to out/plain.html" in result.stderr
    page = (portl.cwd / "out" / "plain.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Quality report: plain" in page
    assert "Rejected rows by reason" in page and page.count("plotly.js v") == 1


def test_junit_goes_to_an_xml_file(portl, runs):
    result = portl("report", runs["checked"], "-o", "quality.xml")

    assert result.code == 0, result.log
    assert ET.parse(portl.cwd / "quality.xml").getroot().get("failures") == "5"


def test_an_unknown_run_lists_the_most_recent_ids_and_exits_2(portl, runs):
    result = portl("report", "nosuchrun")

    assert_clean_failure(result, 2)
    assert "no run 'nosuchrun' in" in result.stderr
    assert f"the most recent: {runs['plain']}, {runs['checked']}" in result.stderr


def test_html_is_refused_on_a_terminal_with_what_to_do_instead(portl, runs):
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([*PORTL, "report", runs["checked"], "--format", "html"], cwd=portl.cwd, stdout=terminal,
                              stderr=subprocess.PIPE, text=True, timeout=60, env=portl.env())
    finally:
        os.close(terminal)
        os.close(controller)

    assert done.returncode == 2, done.stderr
    assert "an HTML report is a page to open in a browser" in done.stderr and "-o report.html" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_ledger_it_says_where_it_looked(portl, tmp_path: Path):
    result = portl("report", "20240101", env={"PORTL_STATE_DIR": str(tmp_path / "nowhere")})

    assert_clean_failure(result, 1)
    assert "no run ledger in" in result.stderr
