"""The HTML report's charts as plotly.js figures (plain JSON: ``{"data": [...], "layout": {...}}``).

Figures are built as dicts, not with ``plotly.graph_objects`` (slow to import, and nothing here
needs its validation); the page draws them with the plotly.js the ``plotly`` package ships. A chart
is made only where the report has data for it. Every text from the data is HTML-escaped, since
plotly.js reads a few tags (``<b>``, ``<a>``) in labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from portl.quality.results import CheckResult, QualityReport

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?$")
_RED, _BLUE, _GREY, _BAND = "#c62828", "#1565c0", "#616161", "rgba(21, 101, 192, 0.15)"
_LABEL = 60  # characters of a reject reason shown on the axis; the hover shows it whole


@dataclass
class Chart:
    """One chart: the anchor of its ``<figure>``, its title, a sentence for readers without
    JavaScript (or a screen reader), and the plotly.js figure."""

    id: str
    title: str
    summary: str
    figure: dict[str, Any]


def charts(report: QualityReport) -> list[Chart]:
    """Every chart the report has data for, in the order the page shows them."""
    found = _rows_per_date(report)
    nulls = _nulls(report)
    if nulls:
        found.append(nulls)
    rejects = _rejects(report)
    if rejects:
        found.append(rejects)
    throughput = _throughput(report)
    if throughput:
        found.append(throughput)
    return found


def _layout(x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    # The <figcaption> carries the title: the plot keeps its height for the data.
    return {"height": 320, "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
            "xaxis": {"title": {"text": x_title}, "automargin": True}, "yaxis": {"title": {"text": y_title},
                                                                               "rangemode": "tozero"},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, "hovermode": "closest",
            **extra}


def _checks_of(report: QualityReport, check: str, column: str, only_one_series: bool) -> list[CheckResult]:
    """The checks of type ``check`` about a date column: those naming it, or every one when the
    report counts rows per date of one column only (a check's columns may be empty)."""
    return [r for r in report.results
            if r.check == check and isinstance(r.details, dict) and (column in r.columns or only_one_series)]


def _rows_per_date(report: QualityReport) -> list[Chart]:
    """Rows per date for each date column: the counts, the expected band of volume anomaly checks
    (anomalous points marked) and the dates a completeness check found missing (marked at zero)."""
    series = dict(report.per_date)
    if not series:  # no counts kept, but an anomaly check has its points: chart those
        for result in report.results:
            points = result.details.get("points") if isinstance(result.details, dict) else None
            if result.check == "volume_anomaly" and points:
                key = result.columns[0] if result.columns else result.name
                series.setdefault(key, {str(p.get("key")): p.get("observed") for p in points})
    out = []
    for number, (column, counts) in enumerate(series.items()):
        single = len(series) == 1
        points = [p for r in _checks_of(report, "volume_anomaly", column, single) for p in r.details.get("points") or []]
        missing = sorted({str(m) for r in _checks_of(report, "date_completeness", column, single)
                          for m in r.details.get("missing") or []})
        keys = sorted(set(map(str, counts)) | {str(p.get("key")) for p in points} | set(missing))
        if not keys:
            continue
        data: list[dict[str, Any]] = []
        band = sorted((str(p.get("key")), p) for p in points if p.get("low") is not None and p.get("high") is not None)
        if band:
            xs = [escape(k) for k, _ in band]
            data.append({"type": "scatter", "mode": "lines", "x": xs, "y": [p["low"] for _, p in band],
                         "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, "name": "low"})
            data.append({"type": "scatter", "mode": "lines", "x": xs, "y": [p["high"] for _, p in band],
                         "fill": "tonexty", "fillcolor": _BAND, "line": {"width": 0}, "name": "expected range"})
            data.append({"type": "scatter", "mode": "lines", "x": xs, "y": [p.get("expected") for _, p in band],
                         "line": {"color": _BLUE, "dash": "dot", "width": 1}, "name": "expected"})
        observed = sorted((str(k), v) for k, v in counts.items())
        data.append({"type": "scatter", "mode": "lines+markers", "x": [escape(k) for k, _ in observed],
                     "y": [v for _, v in observed], "line": {"color": _BLUE}, "marker": {"size": 5}, "name": "rows"})
        anomalies = sorted((str(p.get("key")), p) for p in points if p.get("anomalous"))
        if anomalies:
            data.append({"type": "scatter", "mode": "markers", "x": [escape(k) for k, _ in anomalies],
                         "y": [p.get("observed") for _, p in anomalies], "name": "anomaly",
                         "marker": {"color": _RED, "size": 12, "symbol": "circle-open", "line": {"width": 3}},
                         "text": [f"z = {_z(p.get('z'))}" for _, p in anomalies]})
        if missing:
            data.append({"type": "scatter", "mode": "markers", "x": [escape(m) for m in missing], "y": [0] * len(missing),
                         "name": "missing date", "marker": {"color": _RED, "size": 10, "symbol": "x"},
                         "hovertemplate": "%{x}: missing<extra></extra>"})
        dates = all(_ISO_DATE.match(k) for k in keys)
        layout = _layout(escape(column), "rows")
        layout["xaxis"].update({"type": "date"} if dates else {"type": "category", "categoryorder": "array",
                                                                "categoryarray": [escape(k) for k in keys]})
        words = [f"{len(counts)} dates counted"]
        if anomalies:
            words.append(f"{len(anomalies)} outside the expected range")
        if missing:
            words.append(f"{len(missing)} missing")
        out.append(Chart(f"chart-rows-per-date-{number + 1}", f"Rows per date: {column}", ", ".join(words) + ".",
                         {"data": data, "layout": layout}))
    return out


def _z(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "n/a"


def _nulls(report: QualityReport) -> Chart | None:
    if not report.columns:
        return None
    names = [escape(c.name) for c in report.columns]
    share = [f"{c.nulls / c.rows:.1%} of {c.rows:,} rows" if c.rows else "no rows" for c in report.columns]
    with_nulls = sum(1 for c in report.columns if c.nulls)
    figure = {"data": [{"type": "bar", "x": names, "y": [c.nulls for c in report.columns], "text": share,
                        "marker": {"color": [_RED if c.nulls else _GREY for c in report.columns]}, "name": "nulls",
                        "hovertemplate": "%{x}: %{y} nulls (%{text})<extra></extra>", "textposition": "none"}],
              "layout": _layout("column", "nulls")}
    return Chart("chart-nulls", "Nulls per column", f"{with_nulls} of {len(report.columns)} columns have nulls.", figure)


def _rejects(report: QualityReport) -> Chart | None:
    if not report.rejects_by_reason:
        return None
    reasons = sorted(report.rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    labels = [escape(r if len(r) <= _LABEL else r[: _LABEL - 1] + "…") for r, _ in reasons]
    figure = {"data": [{"type": "bar", "orientation": "h", "y": labels, "x": [n for _, n in reasons],
                        "hovertext": [escape(r) for r, _ in reasons], "hoverinfo": "text+x",
                        "marker": {"color": _RED}, "name": "rejected rows"}],
              "layout": _layout("rejected rows", "",
                                height=max(240, 60 + 36 * len(reasons)))}
    figure["layout"]["yaxis"] = {"autorange": "reversed", "automargin": True}
    total = sum(n for _, n in reasons)
    return Chart("chart-rejects", "Rejected rows by reason", f"{total:,} rows rejected for {len(reasons)} reasons.",
                 figure)


def _throughput(report: QualityReport) -> Chart | None:
    points = [p for p in report.throughput if isinstance(p, (list, tuple)) and len(p) >= 2]
    if points and points[0][0] > 0:
        points.insert(0, [0.0, 0.0])  # the run starts with no rows: the line shows the first batch's climb too
    if len(points) < 2:
        return None
    seconds, rows = [p[0] for p in points], [p[1] for p in points]
    rate = rows[-1] / seconds[-1] if seconds[-1] else 0.0
    figure = {"data": [{"type": "scatter", "mode": "lines", "x": seconds, "y": rows, "name": "rows so far",
                        "line": {"color": _BLUE}}],
              "layout": _layout("seconds since start", "rows so far")}
    return Chart("chart-throughput", "Throughput over time",
                 f"{rows[-1]:,.0f} rows in {seconds[-1]:,.1f} s, {rate:,.0f} rows/s on average.", figure)
