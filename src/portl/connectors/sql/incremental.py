"""Incremental reads of a database table or query by a cursor column, for every SQL source.

A run reads the rows whose cursor lies in its *window*: past the mark the job's last finished run
left (less the lookback), up to the cursor's largest value when the run began (its own mark)::

    WHERE updated_at > <previous mark - lookback> AND updated_at <= <mark>

The upper bound is what makes a run repeatable: rows written while it reads are left to the next
run, and a resumed run reads the same rows as the run it continues. A source asks its database
for the cursor's maximum (one indexed query), and renders :meth:`Window.condition` into its own
SELECTs with its own quoting and bound values; everything else, the mark's JSON, the lookback
arithmetic and the plan's description, is here, the same for Postgres, MySQL, SQLite and
Snowflake.

Rows whose cursor is NULL have no place in any window: they are read by a job's first run only
(when it has no ``initial``), and never again.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from portl.connectors.config import Incremental
from portl.errors import ConfigError
from portl.types import logical_of

ORDERED = ("int", "bigint", "float", "decimal", "date", "timestamp", "timestamptz", "text")
"""The logical types a cursor may have: those whose values a database orders as they grow."""
_TIMES = ("date", "timestamp", "timestamptz")
_NUMBERS = ("int", "bigint", "float", "decimal")

Bind = Callable[[Any], str]
"""Renders a value into a statement: returns its placeholder (and keeps the value), or its literal."""


class IncrementalError(ConfigError):
    """An ``incremental:`` setting that does not suit the source, about one of its keys (``key``):
    the engine reports it at that key's line of the job file."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def cursor_type(incremental: Incremental, schema: pa.Schema, where: str) -> str:
    """The logical type of the cursor column in ``schema``, checked: the column exists, its values
    can be ordered, and the lookback and ``initial`` suit it. Raises :class:`ConfigError`."""
    name = incremental.cursor
    if name not in schema.names:
        close = [n for n in schema.names if n.lower() == str(name).lower()]
        hint = f"; did you mean {close[0]}?" if close else f"; its columns are: {', '.join(schema.names)}"
        raise IncrementalError("cursor", f"incremental.cursor: {where} has no column {name}{hint}")
    kind = logical_of(schema.field(name)).name
    if kind not in ORDERED:
        raise IncrementalError("cursor", f"incremental.cursor: column {name} of {where} is {kind}, whose values cannot mark what is "
                          f"new; choose a column of a type that grows ({', '.join(ORDERED)}), such as updated_at")
    amount = incremental.lookback_amount()
    if amount is not None:
        if kind == "text":
            raise IncrementalError("lookback", f"incremental.lookback: cursor {name} is text, which has no distance to look back by; "
                              "remove the lookback or choose a date, time or numeric cursor")
        if kind in _TIMES and not isinstance(amount, datetime.timedelta):
            raise IncrementalError("lookback", f"incremental.lookback: cursor {name} is {kind}, so the lookback is a duration such as "
                              f"10m, 2h or 1d, not {incremental.lookback!r}")
        if kind in _NUMBERS and isinstance(amount, datetime.timedelta):
            raise IncrementalError("lookback", f"incremental.lookback: cursor {name} is {kind}, so the lookback is a number of its "
                              f"units, not the duration {incremental.lookback!r}")
        if kind in ("int", "bigint") and not float(amount).is_integer():
            raise IncrementalError("lookback", f"incremental.lookback: cursor {name} is an integer, so the lookback is a whole "
                              f"number, not {incremental.lookback!r}")
    if incremental.initial is not None:
        try:
            from_text(incremental.initial, kind, f"incremental.initial for cursor {name} ({kind})")
        except ConfigError as exc:
            raise IncrementalError("initial", str(exc)) from None
    return kind


def from_text(value: Any, kind: str, what: str) -> Any:
    """``initial`` as written (text or a number) as a value of the cursor's type."""
    try:
        if kind in ("int", "bigint"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "decimal":
            return Decimal(str(value))
        if kind == "date":
            return datetime.date.fromisoformat(str(value)[:10])
        if kind in ("timestamp", "timestamptz"):
            stamp = datetime.datetime.fromisoformat(str(value))
            if kind == "timestamptz" and stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=datetime.timezone.utc)
            return stamp
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {value!r} is not a value of that type ({exc})") from None


# --- marks: the cursor's value as JSON ----------------------------------------------------------


def to_json(value: Any) -> tuple[Any, str]:
    """A cursor value as JSON, and the name of its Python form to read it back with."""
    if value is None:
        return None, "none"
    if isinstance(value, bool):
        return int(value), "int"
    if isinstance(value, int):
        return value, "int"
    if isinstance(value, float):
        return value, "float"
    if isinstance(value, Decimal):
        return str(value), "decimal"
    if isinstance(value, datetime.datetime):
        return value.isoformat(), "datetime"
    if isinstance(value, datetime.date):
        return value.isoformat(), "date"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace"), "text"
    return str(value), "text"


def from_json(value: Any, form: str) -> Any:
    """The cursor value a mark holds, in the Python form the database gave it."""
    if value is None or form == "none":
        return None
    if form == "decimal":
        return Decimal(value)
    if form == "datetime":
        return datetime.datetime.fromisoformat(value)
    if form == "date":
        return datetime.date.fromisoformat(value)
    if form == "float":
        return float(value)
    return value


def new_mark(cursor: str, kind: str, maximum: Any, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The mark a run leaves: the cursor's largest value now, or the previous mark's when that is
    larger (rows were deleted, or the cursor went back): a window never reaches back past a mark."""
    usable = same_cursor(previous, cursor)
    if usable is not None and usable.get("value") is not None:
        before = from_json(usable["value"], usable.get("form", "text"))
        if maximum is None or _ordered(before, maximum, kind) > 0:
            maximum = before
    value, form = to_json(maximum)
    return {"cursor": cursor, "type": kind, "value": value, "form": form}


def same_cursor(previous: dict[str, Any] | None, cursor: str) -> dict[str, Any] | None:
    """``previous`` when it is a mark of ``cursor``; a mark of another column (the job changed its
    cursor) does not say what is new, so the run reads as a first run."""
    if previous is None or previous.get("cursor") != cursor:
        return None
    return previous


def _ordered(a: Any, b: Any, kind: str) -> int:
    a, b = _comparable(a, kind), _comparable(b, kind)
    return (a > b) - (a < b)


def _comparable(value: Any, kind: str) -> Any:
    if isinstance(value, str) and kind in _TIMES:
        return _parse_time(value)
    return value


# --- the window --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The cursor values a run reads: ``after`` < cursor <= ``upto`` (``since`` <= cursor on a
    first run with ``initial``), and the NULLs too on a first run without ``initial``."""

    cursor: str
    kind: str
    after: Any = None
    since: Any = None
    upto: Any = None
    nulls: bool = False
    empty: bool = False
    """No value can be in the window (the cursor holds no value yet): only NULLs, if any."""

    def condition(self, column: str, bind: Bind) -> str:
        """The WHERE condition of the window, ``column`` being the quoted cursor."""
        parts = []
        if not self.empty:
            if self.after is not None:
                parts.append(f"{column} > {bind(self.after)}")
            if self.since is not None:
                parts.append(f"{column} >= {bind(self.since)}")
            parts.append(f"{column} <= {bind(self.upto)}")
        bounded = " AND ".join(parts)
        if self.nulls:
            return f"({bounded} OR {column} IS NULL)" if bounded else f"{column} IS NULL"
        return bounded or "1 = 0"

    def describe(self, column: str) -> str:
        """The condition for the plan, values written out: ``WHERE updated_at > '…' AND …``."""
        return "WHERE " + self.condition(column, _shown)


def _shown(value: Any) -> str:
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return f"'{value.isoformat(sep=' ') if isinstance(value, datetime.datetime) else value}'"


def window(incremental: Incremental, kind: str, previous: dict[str, Any] | None, mark: dict[str, Any]) -> Window:
    """The window of a run that leaves ``mark`` after ``previous`` (None: the job's first run)."""
    cursor = incremental.cursor
    upto = from_json(mark.get("value"), mark.get("form", "text"))
    before = same_cursor(previous, cursor)
    first = before is None
    if upto is None:
        return Window(cursor, kind, upto=None, nulls=first and incremental.initial is None, empty=True)
    if first:
        since = from_text(incremental.initial, kind, "incremental.initial") if incremental.initial is not None else None
        if isinstance(upto, str) and since is not None and not isinstance(since, str):
            since = _as_text_like(since, upto)  # a database that keeps times as text (SQLite)
        return Window(cursor, kind, since=since, upto=upto, nulls=incremental.initial is None)
    last = from_json(before.get("value"), before.get("form", "text"))
    if last is None:  # the previous run found no value: everything up to the mark is new
        return Window(cursor, kind, upto=upto)
    return Window(cursor, kind, after=look_back(last, incremental.lookback_amount(), kind), upto=upto)


def look_back(value: Any, amount: datetime.timedelta | int | float | None, kind: str) -> Any:
    """``value`` less the lookback, in the value's own form."""
    if not amount:
        return value
    if isinstance(amount, datetime.timedelta) and isinstance(value, (int, float, Decimal)):
        return value - type(value)(int(amount.total_seconds()))  # a time kept as a number (SQLite): seconds
    if isinstance(value, str):  # a time kept as text: shifted, and written back the same way
        return _as_text_like(look_back(_parse_time(value), amount, kind), value)
    if isinstance(value, datetime.datetime):
        return value - amount
    if isinstance(value, datetime.date):  # whole days: a lookback of 2h on a date reads the day before
        return value - datetime.timedelta(days=math.ceil(amount.total_seconds() / 86400))
    if isinstance(value, Decimal):
        return value - Decimal(str(amount))
    if isinstance(value, int):
        return value - int(amount)
    return value - amount


def _parse_time(text: str) -> datetime.datetime | datetime.date:
    try:
        if len(text) <= 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"incremental: the cursor value {text!r} is not an ISO date or time, so a lookback "
                          "cannot be taken from it; store the cursor as ISO text, or drop the lookback") from exc


def _as_text_like(value: datetime.date, like: str) -> str:
    """``value`` written as ``like`` is: date or date and time, 'T' or space, fraction or not."""
    if not isinstance(value, datetime.datetime):
        return value.isoformat()
    if len(like) <= 10:
        return value.date().isoformat()
    sep = "T" if "T" in like else " "
    fraction = "." in like[19:26] if len(like) > 19 else False
    text = value.isoformat(sep=sep, timespec="microseconds" if fraction else "seconds")
    if like.endswith("Z") and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def describe(incremental: Incremental, previous: dict[str, Any] | None, mark: dict[str, Any], win: Window,
             column: str) -> list[str]:
    """The plan's lines: the previous mark, the new one, and the filter."""
    cursor = incremental.cursor
    before = same_cursor(previous, cursor)
    lookback = f", lookback {incremental.lookback}" if incremental.lookback is not None else ""
    lines = [f"cursor {cursor}{lookback}"]
    if before is None:
        other = f" (the last run's mark was on {previous.get('cursor') or 'files'})" if previous is not None else ""
        lines.append(f"previous mark: none, first run{other}: "
                     + (f"rows from {_shown(win.since)}" if win.since is not None else "every row")
                     + (", NULL cursors included" if win.nulls else ""))
    else:
        lines.append(f"previous mark: {_mark_text(before)} (the last finished run's)")
    lines.append(f"new mark: {_mark_text(mark)}")
    lines.append(f"filter: {win.describe(column)}")
    return lines


def _mark_text(mark: dict[str, Any]) -> str:
    value = from_json(mark.get("value"), mark.get("form", "text"))
    return "none (no value yet)" if value is None else _shown(value)


class CursorReads:
    """The :class:`~portl.connectors.base.IncrementalSource` methods of a SQL source, mixed into
    its class. The source has ``config.incremental``, ``schema()`` and ``description``, gives the
    cursor's largest value (``cursor_maximum``) and its quoted name (``quoted_cursor``), and adds
    ``window.condition(...)`` to its SELECTs while ``window`` is set."""

    window: Window | None = None
    _kind: str | None = None

    def cursor_maximum(self) -> Any:
        raise NotImplementedError

    def quoted_cursor(self) -> str:
        raise NotImplementedError

    def _incremental(self) -> Incremental:
        incremental = getattr(self.config, "incremental", None)  # type: ignore[attr-defined]
        if incremental is None or incremental.cursor is None:
            raise IncrementalError("cursor", f"{self.description} has no incremental cursor")  # type: ignore[attr-defined]
        return incremental

    def cursor_kind(self) -> str:
        """The cursor column's logical type, checked once (see :func:`cursor_type`)."""
        if self._kind is None:
            incremental = self._incremental()
            self._kind = cursor_type(incremental, self.schema(), self.description)  # type: ignore[attr-defined]
        return self._kind

    def incremental_mark(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        kind = self.cursor_kind()
        return new_mark(self._incremental().cursor, kind, self.cursor_maximum(), previous)

    def restrict(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> None:
        self.window = window(self._incremental(), self.cursor_kind(), previous, mark)

    def describe_incremental(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> list[str]:
        incremental = self._incremental()
        win = window(incremental, self.cursor_kind(), previous, mark)
        return describe(incremental, previous, mark, win, self.quoted_cursor())
