"""Expected dates (weekdays, holidays, grains, fiscal years) and robust volume anomalies."""

import datetime

import pytest

from portl.errors import ConfigError
from portl.quality import anomaly
from portl.quality.calendar import check_calendar, expected_periods, period_of
from portl.spec.quality import DateCompleteness

D = datetime.date


def spec(**options):
    return DateCompleteness(check="date_completeness", column="day", **options)


def test_weekdays_and_us_holidays_are_not_expected():
    found = expected_periods(spec(weekdays_only=True, holidays={"country": "US"}), D(2024, 12, 23), D(2025, 1, 3))
    assert D(2024, 12, 25) not in found.periods and D(2025, 1, 1) not in found.periods
    assert D(2024, 12, 28) not in found.periods
    assert len(found.periods) == 8
    assert found.skipped == {"weekends": 2, "holidays": 2}
    assert "Christmas" in found.holiday_names[D(2024, 12, 25)]


def test_subdivision_holidays_and_excluded_dates():
    found = expected_periods(spec(holidays={"country": "DE", "subdivision": "BY"}, exclude=[D(2024, 1, 2)]),
                             D(2024, 1, 1), D(2024, 1, 7))
    assert D(2024, 1, 6) not in found.periods  # Epiphany in Bavaria
    assert D(2024, 1, 2) not in found.periods and found.skipped["excluded"] == 1


def test_a_calendar_that_does_not_exist_is_a_config_error():
    with pytest.raises(ConfigError, match="no holiday calendar for country 'XX'"):
        check_calendar("XX", None)
    with pytest.raises(ConfigError, match="subdivision 'ZZ' of US"):
        check_calendar("US", "ZZ")


def test_weeks_months_quarters_and_fiscal_years():
    assert period_of(D(2024, 3, 7), "week") == D(2024, 3, 4)
    assert period_of(D(2024, 3, 7), "month") == D(2024, 3, 1)
    assert period_of(D(2024, 3, 7), "quarter", "04-01") == D(2024, 1, 1)
    assert period_of(D(2024, 5, 7), "quarter", "04-01") == D(2024, 4, 1)
    assert period_of(D(2024, 3, 7), "year", "04-01") == D(2023, 4, 1)
    months = expected_periods(spec(grain="month"), D(2024, 1, 15), D(2024, 4, 2)).periods
    assert months == [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1)]
    fiscal = expected_periods(spec(grain="quarter", fiscal_year_start="04-01", start="fiscal_year", end="fiscal_year"),
                              D(2024, 5, 1), D(2024, 6, 1)).periods
    assert fiscal == [D(2024, 4, 1), D(2024, 7, 1), D(2024, 10, 1), D(2025, 1, 1)]


def _days(n, base=1000, weekly=None):
    start = D(2024, 1, 1)
    return {(start + datetime.timedelta(days=i)).isoformat(): (weekly[i % 7] if weekly else base) + (i % 3)
            for i in range(n)}


def test_a_spike_is_found_and_its_band_reported():
    counts = _days(60)
    counts["2024-02-01"] = 5000
    points = anomaly.judge(counts, {}, threshold=3.5, min_history=7, min_rows=100, seasonal=True)
    flagged = [p for p in points if p.anomalous]
    assert [p.key for p in flagged] == ["2024-02-01"]
    assert flagged[0].low < 1001 < flagged[0].high < 5000


def test_weekday_seasonality_keeps_quiet_weekends_normal():
    counts = _days(70, weekly=[1000, 1000, 1000, 1000, 1000, 200, 200])  # 2024-01-01 is a Monday
    seasonal = anomaly.judge(counts, {}, threshold=3.5, min_history=7, min_rows=100, seasonal=True)
    assert not any(p.anomalous for p in seasonal)
    counts["2024-01-13"] = 1000  # a Saturday as busy as a weekday
    flagged = [p.key for p in anomaly.judge(counts, {}, threshold=3.5, min_history=7, min_rows=100, seasonal=True)
               if p.anomalous]
    assert flagged == ["2024-01-13"]


def test_history_counts_and_the_minimum_history():
    today = {"2024-03-01": 4000}
    alone = anomaly.judge(today, {}, threshold=3.5, min_history=7, min_rows=100, seasonal=False)
    assert alone[0].expected is None and not alone[0].anomalous
    history = {f"2024-02-{d:02d}": 1000 + d for d in range(1, 29)}
    judged = anomaly.judge(today, history, threshold=3.5, min_history=7, min_rows=100, seasonal=False)
    assert judged[0].anomalous and judged[0].references == 28


def test_the_absolute_floor_keeps_small_volumes_from_alarming():
    counts = {f"2024-01-{d:02d}": 10 for d in range(1, 21)}
    counts["2024-01-21"] = 40
    points = anomaly.judge(counts, {}, threshold=3.5, min_history=7, min_rows=100, seasonal=False)
    assert not any(p.anomalous for p in points)
