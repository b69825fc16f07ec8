"""The HTML report: one self-contained page (no network), summary first, then the details.

Order: the executive summary (outcome, the gate sentence, rows, checks by severity, duration),
the table of checks, a section per check with details (missing dates, duplicate examples, SQL
rows, failing examples), the column profiles, the charts, and the run's audit trail. Tables carry
every fact, so the page reads without JavaScript; the charts (plotly.js, inlined once from the
installed ``plotly`` package when the page is rendered) are extra. Every text from the report goes
through :func:`html.escape`; chart data is embedded as JSON that cannot close its ``<script>``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from importlib import resources
from typing import Any

from portl.errors import PortlError
from portl.quality.reports.charts import Chart, charts
from portl.quality.reports.page import PAGE_SCRIPT, STYLE
from portl.quality.reports.sections import check_details, column_table, counts_table, figure, rejects_table
from portl.quality.reports.summary import STATUSES, by_severity, duration_s, duration_words, outcome_words
from portl.quality.results import SEVERITIES, QualityReport


def render_html(report: QualityReport) -> str:
    """The report as one HTML page that needs no network to show."""
    from portl import __version__

    drawn = charts(report)
    title = f"Quality report: {report.job}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="Portl {escape(__version__)}">',
        f"<title>{escape(title)} ({escape(outcome_words(report.status))})</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{escape(title)}</h1>",
        _run_line(report),
        _contents(report, drawn),
        "</header>",
        "<main>",
        _summary(report),
        _checks(report),
        check_details(report.results),
        column_table(report.columns, report.per_date),
        _charts(drawn),
        _audit(report),
        "</main>",
        f"<footer><p>Written by Portl {escape(__version__)}.</p></footer>",
    ]
    if drawn:
        parts += [f"<script>{plotly_js()}</script>", f"<script>{PAGE_SCRIPT}</script>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(p for p in parts if p)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.min.js from the installed ``plotly`` package, safe to put inside ``<script>``."""
    try:
        text = (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise PortlError("the HTML report draws its charts with plotly.js, from the plotly package, which is not "
                         "installed: pip install 'portl[quality]' (or choose the json or junit format)") from exc
    # A literal "</script" in the library would end the element early; none is there today.
    return text.replace("</script", "<\\/script")


def _run_line(report: QualityReport) -> str:
    bits = []
    if report.run_id:
        bits.append(f"run <code>{escape(report.run_id)}</code>")
    route = escape(report.source or "?") + (f" → {escape(report.destination)}" if report.destination else "")
    bits.append(route)
    bits.append(f"{_time(report.started_at)} – {_time(report.finished_at)}")
    return f'<p class="run">{" · ".join(bits)}</p>'


def _time(iso: str) -> str:
    return f'<time datetime="{escape(iso)}">{escape(iso.replace("T", " "))}</time>' if iso else "?"


def _contents(report: QualityReport, drawn: list[Chart]) -> str:
    links = [("summary", "Summary"), ("checks", "Checks")]
    if any(r.details for r in report.results):
        links.append(("details", "Details"))
    if report.columns or report.per_date:
        links.append(("columns", "Columns"))
    if drawn:
        links.append(("charts", "Charts"))
    links.append(("audit", "Audit trail"))
    items = "".join(f'<li><a href="#{anchor}">{words}</a></li>' for anchor, words in links)
    return f'<nav aria-label="Sections"><ul>{items}</ul></nav>'


def _summary(report: QualityReport) -> str:
    totals = report.summary()
    figures = [("Rows", f"{report.rows:,}"),
               ("Checks passed", f"{totals['passed']} of {totals['checks']}"),
               ("Checks failed", f"{totals['critical_failed']} critical, {totals['warning_failed']} warning, "
                                 f"{totals['info_failed']} info"),
               ("Duration", duration_words(duration_s(report)))]
    if report.run_status:
        figures.append(("Run status", report.run_status.replace("_", " ")))
    facts = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in figures)
    parts = ['<section id="summary" aria-labelledby="summary-title">',
             '<h2 id="summary-title">Summary</h2>',
             f'<p class="badge outcome-{escape(report.status)}" role="status">{escape(outcome_words(report.status))}</p>',
             f'<p class="gate">{escape(report.gate)}</p>',
             f'<dl class="figures">{facts}</dl>']
    if report.results:
        parts.append(_severity_table(report))
    if report.counts:
        parts.append(counts_table(report.counts))
    parts.append(rejects_table(report.rejects_by_reason))
    parts.append("</section>")
    return "\n".join(parts)


def _severity_table(report: QualityReport) -> str:
    table = by_severity(report)
    head = "".join(f'<th scope="col">{s}</th>' for s in STATUSES)
    rows = []
    for severity in [*SEVERITIES, *(s for s in table if s not in SEVERITIES)]:
        cells = "".join(f'<td class="num">{table[severity][s]}</td>' for s in STATUSES)
        rows.append(f'<tr><th scope="row"><span class="sev sev-{escape(severity)}">{escape(severity)}</span></th>{cells}</tr>')
    return ('<div class="scroll"><table class="by-severity"><caption>Checks by severity</caption>'
            f'<thead><tr><th scope="col">severity</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _checks(report: QualityReport) -> str:
    parts = ['<section id="checks" aria-labelledby="checks-title">', '<h2 id="checks-title">Checks</h2>']
    if not report.results:
        parts.append("<p>No quality checks ran for this run (its job has no <code>quality:</code> list, or the run "
                     "is older than its checks). The summary above and the audit trail below come from the run "
                     "ledger.</p>")
    else:
        rows = []
        order = {"failed": 0, "error": 1, "skipped": 3, "passed": 4}
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        for number, r in sorted(enumerate(report.results, 1),
                                key=lambda nr: (order.get(nr[1].status, 2), rank.get(nr[1].severity, 9), nr[0])):
            name = escape(r.name)
            if r.details:
                name = f'<a href="#check-{number}">{name}</a>'
            rows.append(f'<tr class="status-{escape(r.status)}"><td>{name}<br><small>{escape(r.check)}'
                        f'{" · " + escape(", ".join(r.columns)) if r.columns else ""}</small></td>'
                        f'<td><span class="sev sev-{escape(r.severity)}">{escape(r.severity)}</span></td>'
                        f'<td><span class="status">{escape(r.status)}</span></td><td>{escape(r.observed)}</td>'
                        f'<td>{escape(r.expected)}</td><td class="num">{r.failing_rows:,}</td><td>{escape(r.message)}</td></tr>')
        parts.append('<div class="scroll"><table class="checks"><caption>Failed checks first, then by severity</caption>'
                     '<thead><tr><th scope="col">check</th><th scope="col">severity</th><th scope="col">status</th>'
                     '<th scope="col">observed</th><th scope="col">expected</th><th scope="col">failing rows</th>'
                     f'<th scope="col">message</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    parts.append("</section>")
    return "\n".join(parts)


def _charts(drawn: list[Chart]) -> str:
    if not drawn:
        return ""
    parts = ['<section id="charts" aria-labelledby="charts-title">', '<h2 id="charts-title">Charts</h2>']
    for chart in drawn:
        data = json.dumps(chart.figure, separators=(",", ":"), allow_nan=False, default=str)
        # <, > and & as JSON escapes: no text from the data can close the <script> element.
        data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        parts.append(figure(chart.id, chart.title, chart.summary,
                            f'<script type="application/json" data-chart="{chart.id}">{data}</script>'))
    parts.append("</section>")
    return "\n".join(parts)


def _audit(report: QualityReport) -> str:
    parts = ['<section id="audit" aria-labelledby="audit-title">', '<h2 id="audit-title">Audit trail</h2>']
    if not report.audit:
        parts.append("<p>No events were recorded for this run.</p>")
    else:
        rows = "".join(f'<tr><td>{_time(str(e.get("at", "")))}</td><td>{escape(str(e.get("event", "")))}</td>'
                       f'<td>{escape(_words(e.get("detail")))}</td></tr>' for e in report.audit)
        parts.append('<div class="scroll"><table class="audit"><thead><tr><th scope="col">at</th><th scope="col">event'
                     f'</th><th scope="col">detail</th></tr></thead><tbody>{rows}</tbody></table></div>')
    parts.append("</section>")
    return "\n".join(parts)


def _words(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
