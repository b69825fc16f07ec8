"""The report renderers: JSON reads back as the same report, JUnit counts and messages follow the
documented mapping, and the HTML page is one escaped, self-contained document, summary first."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from portl.errors import ConfigError, PortlError
from portl.quality.reports import FORMATS, render, render_html, render_json, render_junit, write_reports
from portl.quality.reports.html import plotly_js
from portl.quality.results import CheckResult, QualityReport
from tests.quality_samples import XSS_NAME, empty_report, sample_report


# --- JSON -----------------------------------------------------------------------------------------


def test_json_reads_back_as_the_same_report():
    report = sample_report()

    assert QualityReport.from_json(json.loads(render_json(report))) == report


def test_json_starts_with_its_format_version_and_ends_with_the_summary():
    document = json.loads(render_json(sample_report()))

    assert list(document)[0] == "format_version" and document["format_version"] == 1
    assert list(document)[-1] == "summary"
    assert document["summary"] == {"checks": 10, "passed": 2, "failed": 6, "error": 1, "skipped": 1,
                                   "critical_failed": 2, "warning_failed": 4, "info_failed": 1}


def test_json_is_the_same_text_each_time():
    assert render_json(sample_report()) == render_json(sample_report())


def test_json_writes_a_z_score_that_is_not_a_number_as_null():
    report = empty_report()
    report.results = [CheckResult("flat", "volume_anomaly", "warning", "passed", "flat history",
                                  details={"points": [{"key": "2024-01-01", "z": float("nan")},
                                                      {"key": "2024-01-02", "z": float("inf")}]})]

    text = render_json(report)

    assert "NaN" not in text and "Infinity" not in text
    assert [p["z"] for p in json.loads(text)["results"][0]["details"]["points"]] == [None, None]


# --- JUnit ----------------------------------------------------------------------------------------


def junit_of(report: QualityReport) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(render_junit(report).encode("utf-8"))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root, suites[0]


def test_junit_counts_failures_errors_and_skips_on_the_root_and_the_suite():
    root, suite = junit_of(sample_report())

    for element in (root, suite):
        assert {k: element.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
            "tests": "10", "failures": "5", "errors": "1", "skipped": "1", "time": "3.000"}
    assert suite.get("name") == "orders"
    assert len(suite.findall("testcase")) == 10 == len(suite.findall("testcase/failure")) + 5
    assert len(suite.findall("testcase/error")) == 1 and len(suite.findall("testcase/skipped")) == 1


def test_junit_names_each_case_after_its_check_and_its_type():
    _, suite = junit_of(sample_report())
    cases = {c.get("name"): c for c in suite.findall("testcase")}

    assert cases["order dates complete"].get("classname") == "portl.quality.date_completeness"
    assert cases["refunds match"].get("classname") == "portl.quality.sql"
    assert all(c.get("time") == "0" for c in cases.values())


def test_junit_failure_carries_the_message_severity_and_missing_dates():
    _, suite = junit_of(sample_report())
    cases = {c.get("name"): c for c in suite.findall("testcase")}

    failure = cases["order dates complete"].find("failure")
    assert failure.get("message") == "2 of 21 business days have no rows"
    assert failure.get("type") == "critical"
    assert "missing: 2024-03-05, 2024-03-12" in failure.text
    assert "observed: 19 of 21 dates; expected: 21 of 21" in failure.text
    assert cases["daily volume"].find("failure").get("type") == "warning"
    error = cases["customers exist"].find("error")
    assert error.get("message") == 'the destination query failed: relation "customers" does not exist'
    assert cases["fresh enough"].find("skipped").get("message") == "no timestamp column was read"
    assert list(cases["row count"]) == []


def test_junit_shows_a_failed_info_check_without_failing_the_build():
    _, suite = junit_of(sample_report())
    case = next(c for c in suite.findall("testcase") if c.get("name") == XSS_NAME)

    assert case.find("failure") is None and case.find("error") is None
    assert case.find("system-out").text.startswith("INFO (failed, does not fail the build): amount above 10,000")
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert properties["info_failed"] == "1"
    assert properties[f"info_failed.{XSS_NAME}"] == "failed: amount above 10,000 in 1 row"
    assert properties["outcome"] == "Failed checks" and properties["run_id"] == "20240322-060000-a1b2c3"


def test_junit_of_a_report_without_checks_is_an_empty_passing_suite():
    root, suite = junit_of(empty_report())

    assert (root.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("time")) == ("0", "0", "0", "1.500")
    assert suite.findall("testcase") == []


def test_junit_replaces_characters_xml_cannot_carry():
    report = empty_report()
    report.results = [CheckResult("bell\x07", "pattern", "critical", "failed", "value 'a\x00b' does not match")]

    _, suite = junit_of(report)

    case = suite.find("testcase")
    assert case.get("name") == "bell\ufffd"
    assert case.find("failure").get("message") == "value 'a\ufffdb' does not match"


# --- HTML -----------------------------------------------------------------------------------------


class Structure(HTMLParser):
    """Section ids in order, open/close balance of non-void elements, and script bodies."""

    VOID = {"meta", "br", "link", "img", "hr", "input", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.stack: list[str] = []
        self.mismatches: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append(dict(attrs).get("id"))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if not self.stack or self.stack.pop() != tag:
            self.mismatches.append(tag)

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def structure_of(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    return parser


def test_html_shows_the_summary_first_then_details_then_charts_and_the_audit_trail():
    page = render_html(sample_report())

    assert structure_of(page).sections == ["summary", "checks", "details", "columns", "charts", "audit"]
    summary = page[page.index('id="summary"'):page.index('id="checks"')]
    assert "Failed checks" in summary and "20,950" in summary and "3.0 s" in summary
    assert "2 critical, 4 warning, 1 info" in summary
    assert "2 critical checks failed: the 20,934 rows loaded stay in public.orders" in summary
    assert "<td>required value is missing</td><td class=\"num\">5</td>" in summary


def test_html_keeps_the_rows_per_date_in_a_table_for_readers_without_javascript():
    page = render_html(sample_report())
    columns = page[page.index('id="columns"'):page.index('id="charts"')]

    assert "<summary>Rows per date of order_date (19 dates)</summary>" in columns
    assert "<td>2024-03-18</td><td class=\"num\">2,450</td>" in columns
    assert "<td>2024-03-05</td>" not in columns  # a missing date has no row; the details list it


def test_html_elements_are_balanced():
    parser = structure_of(render_html(sample_report()))

    assert parser.mismatches == [] and parser.stack == []


def test_html_lists_the_missing_dates_duplicates_and_sql_rows_in_the_details():
    page = render_html(sample_report())
    details = page[page.index('id="details"'):page.index('id="columns"')]

    assert "<li><time>2024-03-05</time></li><li><time>2024-03-12</time></li>" in details
    assert "<td>10452</td><td class=\"num\">3</td><td>88, 91, 120</td>" in details
    assert "SELECT order_id, amount FROM orders WHERE amount &lt; 0 AND refund_id IS NULL" in details
    assert "<td>10,533</td><td>-3.0</td>" in details
    assert "<td>2024-03-18</td><td class=\"num\">2,450</td>" in details  # the anomalous point


def test_html_shows_the_fields_row_level_examples_have():
    page = render_html(sample_report())
    details = page[page.index('id="details"'):page.index('id="columns"')]

    assert ("<caption>Examples (of 20,934 rows checked)</caption><thead><tr><th scope=\"col\">record</th>"
            "<th scope=\"col\">column</th><th scope=\"col\">value</th><th scope=\"col\">reason</th></tr>") in details
    assert "<td>check range(amount): amount 12990.00 is above 10000</td>" in details
    assert '<th scope="col">line</th>' in details  # the other example has a line


def test_html_says_when_an_sql_check_shows_only_its_first_rows():
    report = sample_report()
    report.results[3].details["total"] = 57

    page = render_html(report)

    assert "<caption>57 rows returned, the first 2 shown</caption>" in page


def test_html_escapes_every_text_from_the_report():
    page = render_html(sample_report())

    assert "<script>alert" not in page
    assert "orders &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "&lt;b&gt;void&lt;/b&gt;" in page  # a failing value shown in the examples


def test_html_chart_data_cannot_close_its_script_element():
    report = sample_report()
    report.rejects_by_reason["</script><script>alert(1)</script>"] = 3

    page = render_html(report)

    assert "</script><script>alert(1)" not in page
    figures = [s for s in structure_of(page).scripts if s.startswith("{")]
    rejects = next(f for f in map(json.loads, figures) if f["data"][0].get("orientation") == "h")
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in rejects["data"][0]["hovertext"]


def test_html_inlines_plotly_once_and_loads_nothing_from_the_network():
    page = render_html(sample_report())

    assert page.count(plotly_js()[:200]) == 1
    assert page.count("plotly.js v") == 1
    assert "<script src" not in page and "<link" not in page  # the browser test checks no request goes out


def test_html_draws_a_chart_for_each_kind_of_data():
    page = render_html(sample_report())

    for anchor in ("chart-rows-per-date-1", "chart-nulls", "chart-rejects", "chart-throughput"):
        assert f'<figure id="{anchor}"' in page
    assert "19 dates counted, 1 outside the expected range, 2 missing." in page
    figures = [json.loads(s) for s in structure_of(page).scripts if s.startswith("{")]
    per_date = figures[0]["data"]
    names = [t.get("name") for t in per_date]
    assert names == ["low", "expected range", "expected", "rows", "anomaly", "missing date"]
    assert per_date[-1]["x"] == ["2024-03-05", "2024-03-12"] and per_date[-2]["x"] == ["2024-03-18"]


def test_html_throughput_starts_from_no_rows_at_second_zero():
    report = empty_report()
    report.throughput = [[0.03, 1510.0], [0.06, 1510.0]]

    figures = [json.loads(s) for s in structure_of(render_html(report)).scripts if s.startswith("{")]

    assert [(t["x"], t["y"]) for t in figures[0]["data"]] == [([0.0, 0.03, 0.06], [0.0, 1510.0, 1510.0])]


def test_html_of_a_run_without_checks_has_no_charts_and_no_plotly():
    page = render_html(empty_report())

    assert structure_of(page).sections == ["summary", "checks", "audit"]
    assert "No quality checks ran for this run" in page
    assert "plotly.js v" not in page and "<script" not in page
    assert "<td>read</td><td class=\"num\">3</td>" in page


def test_html_draws_rows_per_date_from_anomaly_points_when_no_counts_were_kept():
    report = sample_report()
    report.per_date = {}
    report.columns, report.rejects_by_reason, report.throughput = [], {}, []

    page = render_html(report)

    assert 'id="chart-rows-per-date-1"' in page
    assert "chart-nulls" not in page and "chart-rejects" not in page and "chart-throughput" not in page


# --- render and write -----------------------------------------------------------------------------


def test_render_refuses_an_unknown_format_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown report format 'pdf': expected one of json, junit, html"):
        render(sample_report(), "pdf")


def test_write_reports_writes_each_format_whole_and_leaves_no_temporary_file(tmp_path):
    paths = {"json": tmp_path / "out" / "q.json", "junit": tmp_path / "out" / "q.xml", "html": tmp_path / "q.html"}

    written = write_reports(sample_report(), paths)

    assert written == {fmt: str(p) for fmt, p in paths.items()}
    for fmt, path in paths.items():
        assert path.read_text(encoding="utf-8") == FORMATS[fmt](sample_report())
    assert sorted(os.listdir(tmp_path / "out")) == ["q.json", "q.xml"]
    assert stat.S_IMODE(os.stat(paths["json"]).st_mode) & 0o044 == 0o044  # readable by others, as the umask allows


def test_write_reports_replaces_an_earlier_report_keeping_its_mode(tmp_path):
    path = tmp_path / "q.json"
    path.write_text("old")
    os.chmod(path, 0o640)

    write_reports(empty_report(), {"json": path})

    assert json.loads(path.read_text())["job"] == "plain"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_write_reports_says_which_file_it_cannot_write(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(PortlError, match=r"cannot write the report .*a-file/q\.json: .*choose another path"):
        write_reports(empty_report(), {"json": blocker / "q.json"})


def test_write_reports_with_an_unknown_format_writes_no_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown report format 'pdf'"):
        write_reports(empty_report(), {"json": tmp_path / "q.json", "pdf": tmp_path / "q.pdf"})

    assert list(tmp_path.iterdir()) == []


def test_a_report_of_portl_check_without_run_or_times_renders_in_every_format():
    report = sample_report()
    report.run_id, report.destination, report.started_at, report.finished_at, report.run_status = None, None, "", "", None

    page = render_html(report)
    _, suite = junit_of(report)

    assert "<code>" not in page.split("</header>")[0]  # no run id shown
    assert "Duration</dt><dd>unknown</dd>" in page and "Run status" not in page
    assert suite.get("timestamp") is None and suite.get("time") == "0.000"
    assert QualityReport.from_json(json.loads(render_json(report))) == report
