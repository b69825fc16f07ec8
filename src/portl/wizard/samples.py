"""What the first rows of a text column suggest: a type, a date format, a transform.

A CSV file gives every column as text. Before asking how to map it, the wizard looks at a sample
of each text column and suggests what a careful person would write by hand: ``type: date`` with
the strptime formats that parse every sampled value, ``transform: money`` for ``$1,234.50``,
``percent`` for ``12.5%`` (with the decimal its fractions need), ``bigint`` for whole numbers and
``decimal(p,s)`` for decimal ones (sized from the sample), ``trim`` for padded text. Every test runs
the engine's own conversion (:func:`portl.engine.coerce.coerce`, the transforms) over the sample,
so a suggestion is exactly what a run would accept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from portl.engine import transforms
from portl.engine.coerce import coerce
from portl.spec.models import Transform
from portl.types import LogicalType

#: Date formats tried, in order of preference when several parse the same values (ISO first,
#: then day-first before month-first, as most of the world writes dates).
ISO_DATE = "%Y-%m-%d"
DATE_FORMATS = (
    ISO_DATE, "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y",
    "%d/%m/%y", "%m/%d/%y", "%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y",
)
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S %z",
    "%m/%d/%Y %I:%M %p", "%d %b %Y %H:%M:%S",
)
_MONEY_HINT = re.compile(r"[$€£¥]|\d,\d{3}|^\(.*\)$")
_PERCENT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)\s*%\s*$")
_LEADING_ZERO = re.compile(r"^\s*[+-]?0\d")
_DECIMAL = re.compile(r"^\s*[+-]?(\d*)\.(\d+)\s*$")
_WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")
_MONEY_NOISE = re.compile(r"[\s\u00a0\u202f$€£¥()+-]")
_COMMA_DECIMAL = re.compile(r",(\d{1,2})$")


@dataclass(frozen=True)
class Suggestion:
    """A proposed conversion for one source column, and the reason shown to the user."""

    type: str | None = None
    formats: tuple[str, ...] = ()
    transforms: tuple[Any, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        parts = [transform_text(t) for t in self.transforms]
        if self.type:
            parts.append(self.type + (f" ({' or '.join(self.formats)})" if self.formats else ""))
        return " → ".join(parts)


@dataclass
class ColumnSample:
    """A source column: its name, its logical type, and sampled values (text for text columns)."""

    name: str
    type: str
    values: list[Any] = field(default_factory=list)


def suggest(column: ColumnSample) -> Suggestion | None:
    """The conversion the sample of a text column calls for, or None (leave it as it is).

    Booleans must fit every sampled value. Numbers, dates, timestamps, money and percentages
    need :data:`MOSTLY` of them: an export with a stray ``N/A`` still holds dates, and the values
    that do not convert are named in the reason (a run rejects those rows, it does not fail).
    """
    if column.type != "text":
        return None
    values = [v for v in column.values if isinstance(v, str) and v.strip()]
    if not values:
        return None
    if not failures(values, LogicalType("bool")) and not all(_WHOLE.match(v) for v in values):
        return Suggestion(type="bool", reason="yes/no values")
    numbers = _numbers(values, every=True)
    if numbers is not None:
        return numbers
    formats, left = detect_formats(values, DATE_FORMATS, LogicalType("date"))
    if formats and _mostly(values, left):
        # ISO dates need no format: it is what a date column reads without one.
        formats = [] if formats == [ISO_DATE] else formats
        return Suggestion(type="date", formats=tuple(formats), reason=_reason("dates", left))
    iso = failures(values, LogicalType("timestamp"))
    if not iso:
        return Suggestion(type="timestamp", reason="ISO timestamps")
    formats, left = detect_formats(values, TIMESTAMP_FORMATS, LogicalType("timestamp"))
    if formats and _mostly(values, left) and len(left) < len(iso):
        return Suggestion(type="timestamp", formats=tuple(formats), reason=_reason("timestamps", left))
    if _mostly(values, iso):
        return Suggestion(type="timestamp", reason=_reason("ISO timestamps", iso))
    percent = [v for v in values if not _PERCENT.match(v)]
    if _mostly(values, percent) and len(percent) < len(values):
        # The transform writes fractions (7.5% is 0.075): the decimal is sized for those.
        fractions = [_as_fraction(v) for v in values if _PERCENT.match(v)]
        return Suggestion(type=_decimal_type(fractions), transforms=("percent",), reason=_reason("percentages", percent))
    if any(_MONEY_HINT.search(v.strip()) for v in values):
        money = _money_failures(values)
        if _mostly(values, money):
            return Suggestion(type=f"decimal(18,{_money_scale(values)})", transforms=("money",),
                              reason=_reason("amounts of money", money))
    numbers = _numbers(values, every=False)  # after money and the rest: "$1,234.50" beside "980.00" is money
    if numbers is not None:
        return numbers
    if any(v != v.strip() for v in values):
        return Suggestion(transforms=("trim",), reason="spaces around values")
    return None


#: The share of sampled values a date, timestamp, money or percent suggestion must convert.
MOSTLY = 0.8


def detect_formats(values: Sequence[str], candidates: Sequence[str], logical: LogicalType) -> tuple[list[str], list[str]]:
    """The fewest ``candidates`` that together parse the most values, most useful first, and
    the values none of them parses.

    Formats are picked greedily: the one that parses the most values still unparsed, the earlier
    candidate on a tie (so ``01/02/2023`` alone reads day-first, but ``12/31/2023`` beside it
    makes month-first the only choice).
    """
    texts = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    parsed = {fmt: _parsed_by(texts, fmt, logical) for fmt in candidates} if texts else {}
    left = set(range(len(texts)))
    chosen: list[str] = []
    while left and parsed:
        best = max(candidates, key=lambda fmt: (len(parsed[fmt] & left), -candidates.index(fmt)))
        gained = parsed[best] & left
        if not gained:
            break
        chosen.append(best)
        left -= gained
    return chosen, [texts[i] for i in sorted(left)]


def transform_text(transform: Any) -> str:
    """A transform as the wizard writes it: ``trim``, ``date(%d/%m/%Y|%Y-%m-%d)``, ``replace(a|b)``."""
    if isinstance(transform, str):
        return transform
    (name, args), = ((k, v) for k, v in transform.items() if k != "sep")
    if isinstance(args, dict):  # replace
        args = f"{args.get('pattern', '')}|{args.get('with', '')}"
    elif isinstance(args, list):
        args = "|".join(str(a) for a in args)
    return f"{name}({args})"


# --- helpers -----------------------------------------------------------------------------------


def failures(values: Sequence[str], logical: LogicalType) -> list[str]:
    """The text values the engine would reject when converting them to ``logical`` (no formats)."""
    return _rejected(values, coerce(pa.array(list(values), pa.string()), logical))


def _parsed_by(values: Sequence[str], fmt: str, logical: LogicalType) -> set[int]:
    step = coerce(pa.array(list(values), pa.string()), logical, [fmt])
    if step.failed is None:
        return set(range(len(values)))
    return {i for i, bad in enumerate(step.failed.to_pylist()) if not bad}


def _money_failures(values: Sequence[str]) -> list[str]:
    array = pa.array(list(values), pa.string())
    return _rejected(values, transforms.apply(Transform(name="money"), array, LogicalType("decimal", 38, 4)))


def _rejected(values: Sequence[str], step: Any) -> list[str]:
    if step.failed is None:
        return []
    return [v for v, bad in zip(values, step.failed.to_pylist()) if bad]


def _mostly(values: Sequence[str], failed: Sequence[str]) -> bool:
    return len(values) - len(failed) >= MOSTLY * len(values)


def _reason(what: str, failed: Sequence[str]) -> str:
    if not failed:
        return what
    shown = ", ".join(repr(v) for v in list(dict.fromkeys(failed))[:3])
    return f"{what}; {len(failed)} of the sampled values would be rejected ({shown})"


def _money_scale(values: Sequence[str]) -> int:
    """Cents are the norm; more digits after the decimal separator in the sample widen the scale.
    As the money transform reads them, a comma followed by one or two final digits is the
    decimal separator; otherwise a point is."""
    scale = 2
    for v in values:
        core = _MONEY_NOISE.sub("", v)
        comma = _COMMA_DECIMAL.search(core)
        if comma:
            digits = comma.group(1)
        elif "." in core:
            digits = core.rsplit(".", 1)[1]
        else:
            continue
        if digits.isdigit():
            scale = max(scale, min(len(digits), 10))
    return scale


def _numbers(values: Sequence[str], every: bool) -> Suggestion | None:
    """``bigint`` for whole numbers, ``decimal(p,s)`` when some have decimals: for every value, or
    (not ``every``) for :data:`MOSTLY` of them, the others named in the reason (an ``abc`` in an
    id column is one row rejected, not a column loaded as text). Codes with leading zeros stay text."""
    numeric = [v for v in values if _WHOLE.match(v) or _DECIMAL.match(v)]
    rejected = [v for v in values if not (_WHOLE.match(v) or _DECIMAL.match(v))]
    if not numeric or (rejected if every else not _mostly(values, rejected)):
        return None
    if any(_LEADING_ZERO.match(v) and not _DECIMAL.match(v) for v in numeric):
        return None  # codes such as 007 or 02134 lose their zeros as numbers
    if all(_WHOLE.match(v) for v in numeric):
        return Suggestion(type="bigint", reason=_reason("whole numbers", rejected))
    return Suggestion(type=_decimal_type(numeric), reason=_reason("decimal numbers", rejected))


def _as_fraction(percent: str) -> str:
    """``7.5 %`` as the decimal text the percent transform makes of it: ``0.075``."""
    number = percent.strip().rstrip("%").strip()
    sign = "-" if number.startswith("-") else ""
    digits = number.lstrip("+-")
    whole, _, decimals = digits.partition(".")
    whole = whole.rjust(3, "0")
    return f"{sign}{whole[:-2]}.{whole[-2:]}{decimals}"


def _decimal_type(values: Sequence[str]) -> str:
    whole = scale = 0
    for v in values:
        match = _DECIMAL.match(v)
        if match:
            whole, scale = max(whole, len(match.group(1).lstrip("0"))), max(scale, len(match.group(2)))
        else:
            whole = max(whole, len(v.strip().lstrip("+-").lstrip("0")))
    scale = min(scale, 10)
    precision = 18 if whole + scale <= 14 else 38  # room for values four digits longer than the sample's
    return f"decimal({precision},{scale})"
