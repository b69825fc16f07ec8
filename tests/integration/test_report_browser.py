"""The HTML quality report in a real browser (Debian's Chromium driven by Playwright): plotly.js,
inlined in the page, draws every chart with no console error and no request leaving the page; the
page fits a phone's width; without JavaScript the tables still carry the facts.

Skipped with the reason when Chromium or Playwright is missing, unless PORTL_REQUIRE_SERVICES=1.
``PORTL_WRITE_DOCS_IMAGES=1`` also writes the screenshot of the docs (docs/images/quality-report.png).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portl.quality.reports import write_reports
from tests.quality_samples import empty_report, sample_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "quality-report.png"
CHARTS = ("chart-rows-per-date-1", "chart-nulls", "chart-rejects", "chart-throughput")


def _missing(reason: str) -> None:
    if os.environ.get("PORTL_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (PORTL_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium, started once for the module."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the playwright package is not installed ({exc}): pip install playwright")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Opened:
    """A report page open in the browser, with what it logged and requested."""

    def __init__(self, browser, path: Path, width: int = 1100, javascript: bool = True):
        self.context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.as_uri())

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_report(browser, tmp_path) -> Iterator:
    """``open_report(report, width=..., javascript=...)``: write the report's HTML and open it."""
    opened: list[Opened] = []

    def _open(report, **options) -> Opened:
        path = tmp_path / f"report-{len(opened)}.html"
        write_reports(report, {"html": path})
        opened.append(Opened(browser, path, **options))
        return opened[-1]

    yield _open
    for page in opened:
        page.close()


def test_every_chart_is_drawn_with_no_console_error_and_no_request_out(open_report):
    shown = open_report(sample_report())
    page = shown.page

    for anchor in CHARTS:
        page.wait_for_selector(f"#{anchor}-plot .main-svg", timeout=20_000)
        assert page.locator(f"#{anchor}-plot .main-svg").count() >= 1, anchor
    traces = page.evaluate("document.getElementById('chart-rows-per-date-1-plot').data.map(t => t.name)")
    assert traces == ["low", "expected range", "expected", "rows", "anomaly", "missing date"]
    assert page.locator("#chart-rows-per-date-1-plot .scatterlayer .trace").count() == 6
    assert page.locator("#chart-rejects-plot .barlayer .point").count() == 3
    assert shown.errors == []
    assert [url for url in shown.requests if not url.startswith("file://")] == []


def test_the_page_fits_a_phone_screen(open_report):
    page = open_report(sample_report(), width=360).page
    page.wait_for_selector("#chart-nulls-plot .main-svg", timeout=20_000)

    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.evaluate("document.querySelector('#chart-nulls-plot .main-svg').getBoundingClientRect().width") <= 360


def test_without_javascript_the_tables_carry_the_facts(open_report):
    page = open_report(sample_report(), javascript=False).page

    assert page.locator("#chart-nulls-plot .main-svg").count() == 0
    assert "2024-03-05" in page.locator("#details").inner_text()
    assert page.locator("table.checks tbody tr").count() == 10
    assert "the tables above hold the same figures" in page.locator("#chart-nulls").inner_text()


def test_a_report_without_checks_opens_cleanly(open_report):
    shown = open_report(empty_report())

    assert "No quality checks ran for this run" in shown.page.locator("#checks").inner_text()
    assert shown.errors == [] and shown.page.locator(".main-svg").count() == 0


def test_the_screenshot_of_the_docs(open_report, tmp_path):
    """Writes docs/images/quality-report.png under PORTL_WRITE_DOCS_IMAGES=1, else a copy in tmp_path."""
    page = open_report(sample_report(), width=1000).page
    for anchor in CHARTS:
        page.wait_for_selector(f"#{anchor}-plot .main-svg", timeout=20_000)
    target = DOCS_IMAGE if os.environ.get("PORTL_WRITE_DOCS_IMAGES") == "1" else tmp_path / "quality-report.png"
    target.parent.mkdir(parents=True, exist_ok=True)

    page.screenshot(path=str(target), full_page=True)

    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 50_000
