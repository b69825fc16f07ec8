"""Which dates a ``date_completeness`` check expects: a range, a grain, and a calendar.

Days can skip weekends, the public holidays of a country and subdivision (the ``holidays``
package, observed days included), and dates the job lists. Weeks start on Monday (ISO weeks);
quarters and years are counted from the fiscal year's start (``fiscal_year_start: "04-01"``);
months are calendar months. A period is present when any row falls in it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from portl.errors import ConfigError


@dataclass
class Expected:
    """The periods expected, by their first day, and what the calendar left out."""

    periods: list[datetime.date]
    skipped: dict[str, int] = field(default_factory=dict)
    holiday_names: dict[datetime.date, str] = field(default_factory=dict)


def holiday_calendar(country: str, subdivision: str | None, years: range) -> dict[datetime.date, str]:
    """The public holidays of ``country`` (and ``subdivision``) in ``years``, by date.
    Raises ConfigError for a country or subdivision the ``holidays`` package does not know."""
    try:
        import holidays
    except ImportError:
        raise ConfigError("holiday calendars need the holidays package: pip install 'portl[quality]'") from None
    try:
        found = holidays.country_holidays(country.upper(), subdiv=subdivision, years=list(years) or None)
    except (NotImplementedError, KeyError) as exc:
        known = holidays.list_supported_countries()
        if country.upper() not in known:
            raise ConfigError(f"no holiday calendar for country {country!r}; use an ISO 3166 code such as US, GB, FR, "
                              f"DE ({len(known)} countries are known)") from None
        subdivisions = known.get(country.upper()) or []
        shown = ", ".join(subdivisions[:30]) + (", …" if len(subdivisions) > 30 else "")
        raise ConfigError(f"no holiday calendar for subdivision {subdivision!r} of {country.upper()}: {exc}. "
                          f"Known subdivisions: {shown or 'none'}") from None
    return {day: str(name) for day, name in found.items()}


def check_calendar(country: str, subdivision: str | None) -> None:
    """Raise ConfigError now if the calendar does not exist (before anything is loaded)."""
    holiday_calendar(country, subdivision, range(2000, 2001))


def fiscal_start(day: datetime.date, month_day: str) -> datetime.date:
    """The first day of the fiscal year ``day`` falls in."""
    month, dom = (int(p) for p in month_day.split("-"))
    start = datetime.date(day.year, month, dom)
    return start if day >= start else datetime.date(day.year - 1, month, dom)


def period_of(day: datetime.date, grain: str, month_day: str = "01-01") -> datetime.date:
    """The first day of the period of ``grain`` that ``day`` falls in."""
    if grain == "day":
        return day
    if grain == "week":
        return day - datetime.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    year_start = fiscal_start(day, month_day)
    if grain == "year":
        return year_start
    months = (day.year - year_start.year) * 12 + day.month - year_start.month
    if day.day < year_start.day:
        months -= 1
    return _add_months(year_start, (months // 3) * 3)


def _add_months(day: datetime.date, months: int) -> datetime.date:
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return datetime.date(year, month + 1, min(day.day, 28))  # fiscal years start on a day every month has


def _next(period: datetime.date, grain: str, month_day: str) -> datetime.date:
    if grain == "day":
        return period + datetime.timedelta(days=1)
    if grain == "week":
        return period + datetime.timedelta(days=7)
    if grain == "month":
        return _add_months(period, 1)
    return _add_months(period, 3 if grain == "quarter" else 12)


def expected_periods(spec: Any, first: datetime.date, last: datetime.date) -> Expected:
    """The periods ``spec`` (a DateCompleteness check) expects between ``first`` and ``last``."""
    grain, month_day = spec.grain, spec.fiscal_year_start
    start = _bound(spec.start, first, month_day, at_end=False)
    end = _bound(spec.end, last, month_day, at_end=True)
    if end < start:
        return Expected([])
    holidays: dict[datetime.date, str] = {}
    if spec.holidays is not None:
        holidays = holiday_calendar(spec.holidays.country, spec.holidays.subdivision, range(start.year, end.year + 1))
    excluded = set(spec.exclude)
    periods: list[datetime.date] = []
    skipped = {"weekends": 0, "holidays": 0, "excluded": 0}
    names: dict[datetime.date, str] = {}
    period = period_of(start, grain, month_day)
    while period <= end:
        if grain == "day":
            if spec.weekdays_only and period.weekday() >= 5:
                skipped["weekends"] += 1
            elif period in holidays:
                skipped["holidays"] += 1
                names[period] = holidays[period]
            elif period in excluded:
                skipped["excluded"] += 1
            else:
                periods.append(period)
        elif period not in excluded:
            periods.append(period)
        else:
            skipped["excluded"] += 1
        period = _next(period, grain, month_day)
    return Expected(periods, {k: v for k, v in skipped.items() if v}, names)


def _bound(value: Any, seen: datetime.date, month_day: str, at_end: bool) -> datetime.date:
    if value is None:
        return seen
    if value == "fiscal_year":
        begin = fiscal_start(seen, month_day)
        if not at_end:
            return begin
        following = _add_months(begin, 12).replace(day=begin.day)
        return following - datetime.timedelta(days=1)
    return value
