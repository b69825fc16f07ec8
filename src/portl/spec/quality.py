"""The ``quality:`` list of a v1 job: one model per check type, told apart by ``check``.

Every check has a ``name`` (default: the type and its columns), a ``severity`` (``critical`` stops
the run, ``warning`` and ``info`` are reported only) and an optional ``where`` (a filter in the
mapping's column names: the check looks only at the rows it keeps). Row-level checks
(``not_null``, ``accepted_values``, ``range``, ``pattern``, ``length``) add ``action``: ``reject``
sends each failing row to the reject file under the check's name, ``warn`` only counts it.
"""

from __future__ import annotations

import datetime
import difflib
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from portl.connectors.config import parse_duration

ROW_CHECKS = ("not_null", "accepted_values", "range", "pattern", "length")
AGGREGATE_CHECKS = ("missing", "unique", "row_count", "schema", "freshness", "referential", "date_completeness",
                    "volume_anomaly", "sql")
CHECK_TYPES = ROW_CHECKS + AGGREGATE_CHECKS
_EXPECT = re.compile(r"^\s*(==|=|!=|<>|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = Field(None, description="What the reports call the check (default: its type and columns). Names must be distinct.")
    columns: list[str] = Field(default_factory=list, description="The columns checked (destination names, after the mapping).")
    severity: Literal["critical", "warning", "info"] = Field("critical", description="critical: a failure fails the run (and rolls back a transaction: job load); warning and info are reported only.")
    where: str | None = Field(None, description="Only rows matching this filter are checked, e.g. \"country = 'FR'\" or \"amount > 0 and status != 'void'\".")

    @model_validator(mode="before")
    @classmethod
    def _column_alone(cls, value: Any) -> Any:
        if isinstance(value, dict) and "column" in value and "columns" not in value:
            value = dict(value)
            value["columns"] = [value.pop("column")]
        if isinstance(value, dict) and isinstance(value.get("columns"), str):
            value = {**value, "columns": [value["columns"]]}
        return value

    @property
    def title(self) -> str:
        """The check's name: given, or ``not_null(id, email)``."""
        if self.name:
            return self.name
        kind = self.check  # type: ignore[attr-defined]
        return f"{kind}({', '.join(self.columns)})" if self.columns else kind

    def needs_columns(self) -> bool:
        return True


class _RowCheck(_Check):
    action: Literal["reject", "warn"] = Field("reject", description="reject: failing rows go to the reject file with the check's name; warn: they load and are only counted.")
    max_failures: int | None = Field(None, ge=0, description="The check fails only when more rows than this fail (default 0).")
    max_failures_percent: float | None = Field(None, ge=0, le=100, description="The check fails only when more than this percent of the rows checked fail.")


class NotNull(_RowCheck):
    check: Literal["not_null"]
    empty_is_null: bool = Field(False, description="Count empty and blank strings as missing too.")


class AcceptedValues(_RowCheck):
    check: Literal["accepted_values"]
    values: list[Any] = Field(description="The values allowed; NULL passes (pair it with not_null to refuse NULLs).")

    @field_validator("values")
    @classmethod
    def _some(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("list at least one accepted value")
        return value


class Range(_RowCheck):
    check: Literal["range"]
    min: Any = Field(None, description="Smallest value allowed (a number, a date, a time stamp or text), inclusive.")
    max: Any = Field(None, description="Largest value allowed, inclusive.")
    exclusive: bool = Field(False, description="min and max themselves are outside the range.")

    @model_validator(mode="after")
    def _bound(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("a range check needs min, max or both")
        return self


class Pattern(_RowCheck):
    check: Literal["pattern"]
    regex: str = Field(description="A regular expression (RE2 syntax) each value must match somewhere; anchor it with ^...$ for the whole value.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value


class Length(_RowCheck):
    check: Literal["length"]
    min: int | None = Field(None, ge=0, description="Fewest characters allowed.")
    max: int | None = Field(None, ge=0, description="Most characters allowed.")

    @model_validator(mode="after")
    def _bound(self) -> Length:
        if self.min is None and self.max is None:
            raise ValueError("a length check needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class Missing(_Check):
    check: Literal["missing"]
    max: int | None = Field(None, ge=0, description="Most NULL values allowed per column (default 0 when max_percent is not given).")
    max_percent: float | None = Field(None, ge=0, le=100, description="Most NULL values allowed per column, in percent of the rows.")
    empty_is_null: bool = Field(False, description="Count empty and blank strings as missing too.")


class Unique(_Check):
    check: Literal["unique"]
    method: Literal["spill", "destination"] = Field("spill", description="spill: exact over the whole input, in bounded memory (keys spill to a temporary folder); destination: a GROUP BY in the destination table after the load (SQL destinations).")


class RowCount(_Check):
    check: Literal["row_count"]
    min: int | None = Field(None, ge=0, description="Fewest rows the input may have.")
    max: int | None = Field(None, ge=0, description="Most rows the input may have.")
    against: Literal["source"] | None = Field(None, description="source: the destination must have gained exactly the rows the run loaded, and every source row must be accounted for.")

    def needs_columns(self) -> bool:
        return False

    @model_validator(mode="after")
    def _something(self) -> RowCount:
        if self.min is None and self.max is None and self.against is None:
            raise ValueError("a row_count check needs min, max or against: source")
        return self


class SchemaCheck(_Check):
    check: Literal["schema"]
    types: dict[str, str] = Field(default_factory=dict, description="Expected type of columns (int, bigint, decimal(12,2), date, timestamp, text...), checked before any row is read.")
    exact: bool = Field(False, description="The input has exactly 'columns', in that order: no other column.")

    def needs_columns(self) -> bool:
        return False


class Freshness(_Check):
    check: Literal["freshness"]
    max_age: str = Field(description="How old the newest value may be: 36h, 2d, 1w...")
    as_of: datetime.datetime | None = Field(None, description="The moment ages are measured from (default: now).")

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Referential(_Check):
    check: Literal["referential"]
    table: str = Field(description="The destination table the values must be found in (in the destination's database).")
    to_columns: list[str] | None = Field(None, description="Its columns to look in (default: the same names as 'columns').")


class Holidays(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(description="ISO 3166 country code: US, GB, FR, DE...")
    subdivision: str | None = Field(None, description="State, province or region code, e.g. CA for California, ENG for England.")


class DateCompleteness(_Check):
    check: Literal["date_completeness"]
    grain: Literal["day", "week", "month", "quarter", "year"] = Field("day", description="Every period of this length must have rows.")
    weekdays_only: bool = Field(False, description="Saturdays and Sundays are not expected (grain day).")
    holidays: Holidays | None = Field(None, description="Public holidays of this calendar are not expected (grain day).")
    exclude: list[datetime.date] = Field(default_factory=list, description="Further dates not expected.")
    start: datetime.date | Literal["fiscal_year"] | None = Field(None, description="First expected date (default: the data's earliest; fiscal_year: the start of the fiscal year it falls in).")
    end: datetime.date | Literal["fiscal_year"] | None = Field(None, description="Last expected date (default: the data's latest; fiscal_year: the end of the fiscal year it falls in).")
    fiscal_year_start: str = Field("01-01", description="Month and day the fiscal year starts (MM-DD): quarters and years are counted from it.")

    @field_validator("fiscal_year_start")
    @classmethod
    def _month_day(cls, value: str) -> str:
        found = _MONTH_DAY.match(value)
        if not found:
            raise ValueError(f"fiscal_year_start {value!r} is not MM-DD, e.g. 04-01")
        try:
            datetime.date(2001, int(found.group(1)), int(found.group(2)))
        except ValueError:
            raise ValueError(f"fiscal_year_start {value!r} is not a day of the year") from None
        return value

    @model_validator(mode="after")
    def _one_column(self) -> DateCompleteness:
        if len(self.columns) != 1:
            raise ValueError("date_completeness checks one date column: give 'column: NAME'")
        if self.grain != "day" and (self.weekdays_only or self.holidays):
            raise ValueError("weekdays_only and holidays apply to grain day only")
        return self


class VolumeAnomaly(_Check):
    check: Literal["volume_anomaly"]
    per: Literal["date", "file"] = Field("date", description="date: rows per value of the date column; file: rows per file of a glob source.")
    threshold: float = Field(3.5, gt=0, description="Robust z-score beyond which a count is anomalous (|count - median| / (1.4826 x MAD)).")
    min_history: int = Field(7, ge=3, description="Counts to compare with before judging; fewer and the check is skipped with a note.")
    min_rows: int = Field(100, ge=0, description="Absolute floor: a count this close to the median is never anomalous, whatever the z-score.")
    seasonality: Literal["day_of_week", "none"] = Field("day_of_week", description="day_of_week: a Monday is compared with other Mondays (when each weekday has min_history counts).")
    history: bool = Field(True, description="Also compare with the counts earlier runs of this job recorded in the ledger.")

    def needs_columns(self) -> bool:
        return self.per == "date"

    @model_validator(mode="after")
    def _one_column(self) -> VolumeAnomaly:
        if self.per == "date" and len(self.columns) != 1:
            raise ValueError("volume_anomaly per date counts rows per value of one date column: give 'column: NAME'")
        return self


class SqlCheck(_Check):
    check: Literal["sql"]
    query: str = Field(description="A query run on the destination after the load, in its own SQL; {table} stands for the loaded table.")
    expect: str | None = Field(None, description="A condition on the first value of the first row, e.g. '= 0' or '>= 1000'. Without it the check fails when the query returns any row.")

    def needs_columns(self) -> bool:
        return False

    @field_validator("expect")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None and not _EXPECT.match(value):
            raise ValueError(f"expect {value!r} is not a comparison with a number, e.g. '= 0', '>= 1000', '< 5'")
        return value


def expectation(text: str) -> tuple[str, float]:
    """``'>= 1000'`` as ``('>=', 1000.0)`` (``=`` and ``<>`` read as ``==`` and ``!=``)."""
    op, number = _EXPECT.match(text).groups()
    return {"=": "==", "<>": "!="}.get(op, op), float(number)


def known_check_type(item: Any) -> Any:
    """Before validation: an unknown ``check:`` gets a did-you-mean and the list of types."""
    if isinstance(item, dict) and "check" not in item:
        raise ValueError(f"each check needs 'check: TYPE', one of: {', '.join(CHECK_TYPES)}")
    if isinstance(item, dict) and isinstance(item.get("check"), str) and item["check"] not in CHECK_TYPES:
        close = difflib.get_close_matches(item["check"], CHECK_TYPES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ValueError(f"unknown check {item['check']!r}{hint} Valid: {', '.join(CHECK_TYPES)}")
    return item


Check = Annotated[
    Union[NotNull, AcceptedValues, Range, Pattern, Length, Missing, Unique, RowCount, SchemaCheck, Freshness,
          Referential, DateCompleteness, VolumeAnomaly, SqlCheck],
    Field(discriminator="check"),
    BeforeValidator(known_check_type),
]


def distinct_names(checks: list[Any]) -> list[Any]:
    """Check names must be distinct: rejects, reports and history are kept by name."""
    seen: dict[str, int] = {}
    for check in checks:
        seen[check.title] = seen.get(check.title, 0) + 1
    twice = sorted(n for n, c in seen.items() if c > 1)
    if twice:
        raise ValueError(f"two checks are named {', '.join(twice)}: give each a distinct 'name'")
    return checks


def max_age(check: Freshness) -> datetime.timedelta:
    return parse_duration(check.max_age)
