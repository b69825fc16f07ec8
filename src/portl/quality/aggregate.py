"""Aggregate checks, judged once the pass is over, from its :class:`~portl.quality.profile.Profile`
(and, for the checks that read the destination, with SQL run there).

Each function takes the check's spec and what it needs and returns a
:class:`~portl.quality.results.CheckResult`. None of them reads the input again.
"""

from __future__ import annotations

import datetime
import operator
from typing import Any

from portl.plural import counted
from portl.quality import anomaly, calendar
from portl.quality.profile import Profile
from portl.quality.results import ERROR, FAILED, PASSED, SKIPPED, CheckResult
from portl.quality.uniqueness import Duplicates
from portl.spec.quality import expectation, max_age

_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}


def result(spec: Any, status: str, message: str, **extra: Any) -> CheckResult:
    return CheckResult(spec.title, spec.check, spec.severity, status, message, list(spec.columns), **extra)


def missing(spec: Any, profile: Profile) -> CheckResult:
    rows = profile.rows
    worst, observed, failed = None, [], []
    for column in spec.columns:
        stats = profile.columns[column]
        n = stats.nulls + (stats.blanks if spec.empty_is_null else 0)
        percent = 100.0 * n / rows if rows else 0.0
        observed.append(f"{column}: {n:,} ({percent:.2f}%)")
        limit_count = spec.max if spec.max is not None else (0 if spec.max_percent is None else None)
        over = (limit_count is not None and n > limit_count) or (spec.max_percent is not None and percent > spec.max_percent)
        if over:
            failed.append(column)
        if worst is None or n > worst[1]:
            worst = (column, n, percent)
    expected = " and ".join(p for p in (f"at most {spec.max:,}" if spec.max is not None else "",
                                        f"at most {spec.max_percent}%" if spec.max_percent is not None else "") if p)
    expected = expected or "none"
    what = "missing values (NULL or blank)" if spec.empty_is_null else "NULL values"
    if failed:
        message = f"too many {what} in {', '.join(failed)}: " + "; ".join(o for o in observed if o.split(':')[0] in failed)
        return result(spec, FAILED, message, observed="; ".join(observed), expected=expected)
    return result(spec, PASSED, f"{what} within bounds", observed="; ".join(observed), expected=expected)


def unique(spec: Any, found: Duplicates) -> CheckResult:
    key = ", ".join(spec.columns)
    details = {"duplicate_keys": found.keys, "duplicate_rows": found.rows, "examples": found.examples,
               "spilled_bytes": found.spilled_bytes}
    if found.keys:
        shown = "; ".join(f"{_key_text(e['key'])} ×{e['count']} (records {', '.join(str(r) for r in e['records'][:5])})"
                          for e in found.examples[:3])
        message = (f"{counted(found.keys, 'value')} of ({key}) occur more than once, in {found.rows:,} rows: {shown}")
        return result(spec, FAILED, message, observed=f"{found.keys:,} duplicate keys", expected="0", details=details)
    return result(spec, PASSED, f"every ({key}) is unique", observed="0 duplicate keys", expected="0", details=details)


def unique_in_destination(spec: Any, sink: Any, tx: Any) -> CheckResult:
    columns = ", ".join(sink.quote(c) for c in spec.columns)
    not_null = " AND ".join(f"{sink.quote(c)} IS NOT NULL" for c in spec.columns)
    statement = (f"SELECT {columns}, count(*) AS n FROM {sink.loaded_table()} WHERE {not_null} "
                 f"GROUP BY {columns} HAVING count(*) > 1 ORDER BY count(*) DESC")
    got = sink.query(statement, tx)
    examples = [{"key": [_plain(v) for v in row[:-1]], "count": int(row[-1]), "records": []} for row in got.rows]
    found = Duplicates(got.total, sum(e["count"] for e in examples), examples)
    checked = unique(spec, found)
    checked.details["query"] = statement
    if got.total > len(got.rows):
        checked.details["duplicate_rows"] = None  # only the first keys' rows were counted
    return checked


def row_count(spec: Any, rows: int, counts: Any | None, delta: int | None) -> CheckResult:
    problems, expected = [], []
    if spec.min is not None:
        expected.append(f">= {spec.min:,}")
        if rows < spec.min:
            problems.append(f"{rows:,} rows, fewer than the minimum {spec.min:,}")
    if spec.max is not None:
        expected.append(f"<= {spec.max:,}")
        if rows > spec.max:
            problems.append(f"{rows:,} rows, more than the maximum {spec.max:,}")
    observed = f"{rows:,} rows"
    if spec.against == "source" and counts is not None:
        expected.append("every source row accounted for; the destination gained the rows inserted")
        if not counts.balanced:
            problems.append(f"read {counts.read:,} but loaded, skipped and rejected add up differently")
        if delta is not None and delta != counts.inserted:
            problems.append(f"the destination gained {delta:,} rows but the run inserted {counts.inserted:,}: "
                            "another writer changed the table meanwhile, or rows were lost")
        observed += f"; inserted {counts.inserted:,}" + (f", destination gained {delta:,}" if delta is not None else "")
    if problems:
        return result(spec, FAILED, "; ".join(problems), observed=observed, expected=" and ".join(expected))
    return result(spec, PASSED, "row count as expected", observed=observed, expected=" and ".join(expected))


def schema(spec: Any, schema_: Any, source_names: list[str]) -> CheckResult:
    """Header and types, before any row is read. ``schema_`` is the mapped schema (destination
    names and types); ``source_names`` the source's own columns (a file's header)."""
    from portl.types import logical_of, parse_type

    problems = []
    names = list(schema_.names)
    wanted = list(spec.columns)
    if wanted:
        missing_names = [c for c in wanted if c not in names and c not in source_names]
        if missing_names:
            problems.append(f"missing column{'s' if len(missing_names) > 1 else ''} {', '.join(missing_names)}")
        if spec.exact:
            present = names if all(c in names for c in wanted) else source_names
            extra = [c for c in present if c not in wanted]
            if extra:
                problems.append(f"unexpected column{'s' if len(extra) > 1 else ''} {', '.join(extra)}")
            elif present != wanted and not missing_names:
                problems.append(f"columns in the order {', '.join(present)}, not {', '.join(wanted)}")
    for column, type_text in spec.types.items():
        if column not in names:
            problems.append(f"no column {column} to check the type of")
            continue
        got = logical_of(schema_.field(column))
        want = parse_type(type_text)
        if str(got) != str(want):
            problems.append(f"{column} is {got}, not {want}")
    observed = ", ".join(f"{f.name} {logical_of(f)}" for f in schema_)
    expected = ", ".join(wanted + [f"{c} {t}" for c, t in spec.types.items() if c not in wanted]) or "as declared"
    if problems:
        return result(spec, FAILED, "the input's columns are not as expected: " + "; ".join(problems),
                      observed=observed, expected=expected)
    return result(spec, PASSED, "columns and types as expected", observed=observed, expected=expected)


def freshness(spec: Any, profile: Profile) -> CheckResult:
    column = spec.columns[0]
    newest = profile.columns[column].max
    if isinstance(newest, str):
        try:
            newest = datetime.datetime.fromisoformat(newest)
        except ValueError:
            return result(spec, ERROR, f"{column}'s newest value {newest!r} is not a date or time stamp")
    if newest is None:
        return result(spec, FAILED, f"{column} has no value: nothing to measure freshness from",
                      observed="no value", expected=f"within {spec.max_age}")
    now = spec.as_of or datetime.datetime.now(datetime.timezone.utc)
    if isinstance(newest, datetime.datetime):
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=datetime.timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=datetime.timezone.utc)
    elif isinstance(newest, datetime.date):
        now = now.date() if isinstance(now, datetime.datetime) else now
    else:
        return result(spec, ERROR, f"{column} is not a date or time stamp column (its newest value is {newest!r})")
    age = now - newest
    age = age if isinstance(age, datetime.timedelta) else datetime.timedelta(days=age)
    limit = max_age(spec)
    observed = f"newest {newest.isoformat()}, {_age_text(age)} old"
    if age > limit:
        return result(spec, FAILED, f"the newest {column} is {_age_text(age)} old, more than {spec.max_age}",
                      observed=observed, expected=f"within {spec.max_age}")
    return result(spec, PASSED, f"the newest {column} is {_age_text(age)} old", observed=observed,
                  expected=f"within {spec.max_age}")


def referential(spec: Any, sink: Any, tx: Any) -> CheckResult:
    to_columns = spec.to_columns or spec.columns
    if len(to_columns) != len(spec.columns):
        return result(spec, ERROR, f"to_columns names {len(to_columns)} columns for {len(spec.columns)} columns")
    loaded = sink.loaded_table()
    pairs = " AND ".join(f"r.{sink.quote(b)} = t.{sink.quote(a)}" for a, b in zip(spec.columns, to_columns))
    present = " AND ".join(f"t.{sink.quote(a)} IS NOT NULL" for a in spec.columns)
    columns = ", ".join(f"t.{sink.quote(a)}" for a in spec.columns)
    statement = (f"SELECT {columns}, count(*) AS n FROM {loaded} t WHERE {present} AND NOT EXISTS "
                 f"(SELECT 1 FROM {sink.quote(spec.table)} r WHERE {pairs}) GROUP BY {columns} ORDER BY count(*) DESC")
    got = sink.query(statement, tx)
    details = {"query": statement, "columns": got.columns, "rows": [[_plain(v) for v in r] for r in got.rows]}
    if got.total:
        shown = ", ".join(_key_text([_plain(v) for v in r[:-1]]) for r in got.rows[:5])
        return result(spec, FAILED, f"{counted(got.total, 'value')} of ({', '.join(spec.columns)}) not found in "
                      f"{spec.table}: {shown}", observed=f"{got.total:,} values missing", expected="0", details=details)
    return result(spec, PASSED, f"every value is in {spec.table}", observed="0 missing", expected="0", details=details)


def sql(spec: Any, sink: Any, tx: Any) -> CheckResult:
    statement = spec.query.replace("{table}", sink.loaded_table())
    got = sink.query(statement, tx)
    details = {"query": statement, "columns": got.columns, "rows": [[_plain(v) for v in r] for r in got.rows],
               "total": got.total}
    if spec.expect is None:
        if got.total:
            return result(spec, FAILED, f"the query returned {counted(got.total, 'row')}", observed=f"{got.total:,} rows",
                          expected="no row", details=details)
        return result(spec, PASSED, "the query returned no row", observed="0 rows", expected="no row", details=details)
    op, number = expectation(spec.expect)
    if not got.rows or not got.rows[0]:
        return result(spec, FAILED, f"the query returned no value to compare ({spec.expect})", observed="no row",
                      expected=spec.expect, details=details)
    value = got.rows[0][0]
    try:
        number_value = float(value)
    except (TypeError, ValueError):
        return result(spec, ERROR, f"the query's first value {value!r} is not a number to compare ({spec.expect})",
                      observed=repr(value), expected=spec.expect, details=details)
    passed = _COMPARE[op](number_value, number)
    message = f"the query gave {_plain(value)}, {'as' if passed else 'not as'} expected ({spec.expect})"
    return result(spec, PASSED if passed else FAILED, message, observed=str(_plain(value)), expected=spec.expect,
                  details=details)


def date_completeness(spec: Any, profile: Profile) -> CheckResult:
    column = spec.columns[0]
    per_date = profile.dates_of(column)
    stats = profile.columns[column]
    if not per_date and spec.start in (None, "fiscal_year") and spec.end in (None, "fiscal_year"):
        return result(spec, FAILED, f"{column} holds no date: nothing to check", observed="no date",
                      expected="dates", details={"grain": spec.grain, "missing": []})
    first = min(per_date) if per_date else spec.start
    last = max(per_date) if per_date else spec.end
    first = spec.start if isinstance(spec.start, datetime.date) else first
    last = spec.end if isinstance(spec.end, datetime.date) else last
    present_periods = {calendar.period_of(d, spec.grain, spec.fiscal_year_start) for d in per_date}
    expected = calendar.expected_periods(spec, first if isinstance(first, datetime.date) else min(per_date),
                                         last if isinstance(last, datetime.date) else max(per_date))
    missing_periods = [p for p in expected.periods if p not in present_periods]
    details = {"grain": spec.grain, "start": expected.periods[0].isoformat() if expected.periods else None,
               "end": expected.periods[-1].isoformat() if expected.periods else None,
               "expected": len(expected.periods), "present": len(expected.periods) - len(missing_periods),
               "missing": [p.isoformat() for p in missing_periods], "skipped": expected.skipped,
               "holidays": {d.isoformat(): n for d, n in sorted(expected.holiday_names.items())},
               "unreadable": stats.unreadable_dates, "unreadable_examples": stats.examples_unreadable}
    unit = {"day": "date", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}[spec.grain]
    skipped = ", ".join(counted(n, what.removesuffix("s")) for what, n in expected.skipped.items())
    observed = f"{details['present']:,} of {len(expected.periods):,} {unit}s"
    if missing_periods:
        shown = ", ".join(p.isoformat() for p in missing_periods[:10]) + (", …" if len(missing_periods) > 10 else "")
        message = f"{counted(len(missing_periods), unit)} missing from {column}: {shown}"
        return result(spec, FAILED, message, observed=observed, expected=f"every {unit}" + (f" (skipping {skipped})" if skipped else ""),
                      details=details)
    message = f"every expected {unit} of {column} is present"
    if stats.unreadable_dates:
        message += f" ({stats.unreadable_dates:,} values were not dates: {', '.join(stats.examples_unreadable[:3])})"
    return result(spec, PASSED, message, observed=observed,
                  expected=f"every {unit}" + (f" (skipping {skipped})" if skipped else ""), details=details)


def volume_anomaly(spec: Any, current: dict[str, int], history: dict[str, int], what: str) -> CheckResult:
    points = anomaly.judge(current, history if spec.history else {}, threshold=spec.threshold,
                           min_history=spec.min_history, min_rows=spec.min_rows,
                           seasonal=spec.seasonality == "day_of_week" and spec.per == "date")
    judged = [p for p in points if p.expected is not None]
    flagged = [p for p in judged if p.anomalous]
    details = {"points": [p.to_json() for p in points], "history_runs": len(history), "per": spec.per,
               "method": f"robust z-score (median, 1.4826 × MAD) > {spec.threshold} and at least {spec.min_rows:,} "
                         f"rows from the median" + ("; same weekday when enough history" if spec.seasonality == "day_of_week" else "")}
    if not judged:
        return result(spec, SKIPPED, f"not enough counts to judge: each {what} needs {spec.min_history} others "
                      f"(found {len(points)} {what}s in the input and {len(history)} in earlier runs)", details=details)
    if flagged:
        shown = "; ".join(f"{p.key}: {p.observed:,} rows, expected {p.low:,.0f}–{p.high:,.0f}" for p in flagged[:5])
        return result(spec, FAILED, f"{counted(len(flagged), what)} with unusual volume: {shown}",
                      observed=f"{len(flagged)} anomalous of {len(judged)}", expected="0 anomalous", details=details)
    return result(spec, PASSED, f"the rows of each of {len(judged):,} {what}s are within the expected band",
                  observed=f"0 anomalous of {len(judged)}", expected="0 anomalous", details=details)


def _key_text(key: list[Any]) -> str:
    return repr(key[0]) if len(key) == 1 else "(" + ", ".join(repr(k) for k in key) + ")"


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _age_text(age: datetime.timedelta) -> str:
    seconds = age.total_seconds()
    if seconds < 0:
        return "in the future by " + _age_text(-age)
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"
