"""HTML pieces of the report's detail sections: what each check type found, the column profiles
and the run's counts. Every text from the report is escaped here."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from portl.quality.results import CheckResult, ColumnProfile


def _cell(value: Any) -> str:
    """A value for a table cell: text as it is, anything else as compact JSON; escaped."""
    if value is None:
        return '<span class="none">null</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return escape(value)
    return escape(json.dumps(value, ensure_ascii=False, default=str))


def _table(head: list[str], rows: list[list[Any]], caption: str = "", numeric: set[int] = frozenset()) -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    num = ' class="num"'
    body = "".join("<tr>" + "".join(f"<td{num if i in numeric else ''}>{_cell(v)}</td>" for i, v in enumerate(row))
                   + "</tr>" for row in rows)
    return f'<div class="scroll"><table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _facts(pairs: list[tuple[str, Any]]) -> str:
    shown = "".join(f"<div><dt>{escape(k)}</dt><dd>{_cell(v)}</dd></div>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="facts">{shown}</dl>' if shown else ""


def _date_completeness(d: dict[str, Any]) -> str:
    skipped = d.get("skipped") or {}
    parts = [_facts([("grain", d.get("grain")), ("from", d.get("start")), ("to", d.get("end")),
                     ("expected", d.get("expected")), ("present", d.get("present")),
                     ("unreadable dates", d.get("unreadable") or None),
                     *((f"skipped ({k})", v) for k, v in skipped.items() if v)])]
    missing = d.get("missing") or []
    if missing:
        items = "".join(f"<li><time>{escape(str(m))}</time></li>" for m in missing)
        parts.append(f'<h4>Missing ({len(missing):,})</h4><ul class="dates">{items}</ul>')
    else:
        parts.append("<p>No date is missing.</p>")
    holidays = d.get("holidays") or {}
    if isinstance(holidays, dict) and holidays:
        parts.append(_table(["date", "holiday (not expected)"], sorted([k, v] for k, v in holidays.items())))
    if d.get("unreadable_examples"):
        parts.append(_table(["value that is not a date"], [[v] for v in d["unreadable_examples"]]))
    return "".join(parts)


def _volume_anomaly(d: dict[str, Any]) -> str:
    points = d.get("points") or []
    anomalous = [p for p in points if p.get("anomalous")]
    parts = [_facts([("method", d.get("method")), ("earlier runs compared", d.get("history_runs")),
                     ("points", len(points)), ("anomalous", len(anomalous))])]
    if anomalous:
        rows = [[p.get("key"), p.get("observed"), p.get("expected"), p.get("low"), p.get("high"), _z(p.get("z"))]
                for p in anomalous]
        parts.append(_table(["key", "observed", "expected", "low", "high", "z"], rows, "Points outside the expected range",
                            numeric={1, 2, 3, 4, 5}))
    return "".join(parts)


def _z(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def _unique(d: dict[str, Any]) -> str:
    parts = [_facts([("duplicate keys", d.get("duplicate_keys")), ("rows with a duplicate key", d.get("duplicate_rows"))])]
    examples = d.get("examples") or []
    if examples:
        rows = [[_key(e.get("key")), e.get("count"), ", ".join(map(str, e.get("records") or []))] for e in examples]
        parts.append(_table(["key", "rows", "records"], rows, "Examples", numeric={1}))
    return "".join(parts)


def _key(key: Any) -> Any:
    if isinstance(key, list):
        return ", ".join("null" if k is None else str(k) for k in key)
    return key


def _sql(d: dict[str, Any]) -> str:
    parts = []
    if d.get("query"):
        parts.append(f'<pre><code>{escape(str(d["query"]))}</code></pre>')
    columns, rows = d.get("columns") or [], d.get("rows") or []
    if rows:
        head = [str(c) for c in columns] or [f"column {i + 1}" for i in range(len(rows[0]))]
        total = d.get("total") if isinstance(d.get("total"), int) else len(rows)
        caption = f"{total:,} rows returned" + (f", the first {len(rows):,} shown" if total > len(rows) else "")
        parts.append(_table(head, [list(r) for r in rows], caption))
    else:
        parts.append("<p>The query returned no rows.</p>")
    return "".join(parts)


def _row_level(d: dict[str, Any]) -> str:
    action = d.get("action")
    words = {"reject": "failing rows were rejected (see the reject file)", "warn": "failing rows were loaded and counted"}
    parts = [_facts([("action", words.get(action, action))])]
    examples = [e for e in d.get("examples") or [] if isinstance(e, dict)]
    if examples:
        # The columns the examples have, in a fixed order: a source without lines has no line.
        keys = [k for k in ("record", "line", "column", "value", "reason") if any(k in e for e in examples)]
        keys += sorted({k for e in examples for k in e} - set(keys))
        rows = [[e.get(k) for k in keys] for e in examples]
        numeric = {i for i, k in enumerate(keys) if k in ("record", "line")}
        parts.append(_table(keys, rows, f"Examples (of {d['checked']:,} rows checked)" if isinstance(d.get("checked"), int)
                            else "Examples", numeric=numeric))
    return "".join(parts)


def _generic(d: dict[str, Any]) -> str:
    return _facts(list(d.items()))


_BY_CHECK = {"date_completeness": _date_completeness, "volume_anomaly": _volume_anomaly, "unique": _unique, "sql": _sql}


def check_details(results: list[CheckResult]) -> str:
    """One ``<article>`` per check that has details, in the order the checks ran."""
    articles = []
    for number, r in enumerate(results, 1):
        if not r.details:
            continue
        d = r.details if isinstance(r.details, dict) else {"details": r.details}
        render = _BY_CHECK.get(r.check) or (_row_level if "action" in d else _generic)
        articles.append(f'<article id="check-{number}" class="status-{escape(r.status)}"><h3>{escape(r.name)} '
                        f'<small>{escape(r.check)} · <span class="sev sev-{escape(r.severity)}">{escape(r.severity)}'
                        f'</span> · {escape(r.status)}</small></h3><p>{escape(r.message)}</p>{render(d)}</article>')
    if not articles:
        return ""
    return ('<section id="details" aria-labelledby="details-title"><h2 id="details-title">Details</h2>'
            + "".join(articles) + "</section>")


def column_table(columns: list[ColumnProfile], per_date: dict[str, dict[str, int]]) -> str:
    """The column profiles (type, rows, nulls and their share, min, max, distinct values), then the
    rows per date of each date column, folded: the chart shows them, the table keeps them readable
    without JavaScript."""
    if not columns and not per_date:
        return ""
    parts = ['<section id="columns" aria-labelledby="columns-title"><h2 id="columns-title">Columns</h2>']
    if columns:
        rows = [[c.name, c.type, c.rows, c.nulls, f"{c.nulls / c.rows:.1%}" if c.rows else "", c.min, c.max,
                 c.distinct] for c in columns]
        parts.append(_table(["column", "type", "rows", "nulls", "null share", "min", "max", "distinct (estimate)"], rows,
                            "Column profiles", numeric={2, 3, 4, 7}))
    for column, counts in per_date.items():
        rows = [[key, n] for key, n in sorted(counts.items())]
        parts.append(f"<details><summary>Rows per date of {escape(column)} ({len(rows):,} dates)</summary>"
                     + _table(["date", "rows"], rows, numeric={1}) + "</details>")
    parts.append("</section>")
    return "".join(parts)


def rejects_table(rejects_by_reason: dict[str, int]) -> str:
    """Rejected rows by reason, most frequent first."""
    if not rejects_by_reason:
        return ""
    rows = [[reason, n] for reason, n in sorted(rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))]
    return _table(["reason", "rejected rows"], rows, "Rejected rows by reason", numeric={1})


def counts_table(counts: dict[str, Any]) -> str:
    """Where the run's source rows went: read, inserted, updated, skipped (by reason), rejected."""
    rows = []
    for name in ("read", "inserted", "updated", "skipped", "rejected"):
        value = counts.get(name)
        if isinstance(value, dict):  # skipped kept as reason -> rows
            value = sum(value.values())
        if value is not None:
            rows.append([name, value])
    reasons = counts.get("skipped_by_reason") or (counts.get("skipped") if isinstance(counts.get("skipped"), dict) else {})
    rows += [[f"skipped: {reason}", n] for reason, n in reasons.items()]
    if not rows:
        return ""
    return _table(["rows", "count"], rows, "Where the source rows went", numeric={1})


def figure(anchor: str, title: str, summary: str, body: str) -> str:
    """A chart's ``<figure>``: its title and a sentence for readers without JavaScript, then the
    element plotly.js draws into."""
    return (f'<figure id="{anchor}" class="chart"><figcaption><strong>{escape(title)}</strong>: {escape(summary)}'
            f'</figcaption><div class="plot" id="{anchor}-plot" role="img" aria-label="{escape(title)}"></div>'
            f'<noscript><p>This chart needs JavaScript; the tables above hold the same figures.</p></noscript>'
            f"{body}</figure>")
