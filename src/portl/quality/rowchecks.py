"""Row-level checks, vectorised on each mapped Arrow batch.

A :class:`RowCheck` gives, for a batch, which rows fail it (a boolean mask) and, for each failing
row, the first column that failed and why. The gate (:mod:`portl.quality.gate`) turns failing rows
into rejects named after the check (``action: reject``) or only counts them (``action: warn``).
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.quality.filters import Mask, compile_filter, keep


@dataclass
class Failures:
    """The rows of a batch a check failed: their indexes, and per row the column and a reason."""

    indexes: list[int]
    columns: list[str]
    reasons: list[str]
    values: list[Any]


class RowCheck:
    """One row-level check, compiled against the mapped schema."""

    def __init__(self, spec: Any, schema: pa.Schema):
        self.spec = spec
        self.name = spec.title
        self.kind = spec.check
        self.action = spec.action
        self.where: Mask | None = compile_filter(spec.where, schema) if spec.where else None
        self.tests = []
        for column in spec.columns:
            kind = schema.field(column).type
            self.tests.append((column, self._test(column, kind)))

    def _test(self, column: str, kind: pa.DataType):
        spec = self.spec
        if self.kind == "not_null":
            if spec.empty_is_null and _is_text(kind):
                return lambda a: pc.or_kleene(pc.is_null(a), pc.equal(pc.utf8_trim_whitespace(a), "")), \
                    lambda v: "is NULL or blank"
            return lambda a: pc.is_null(a), lambda v: "is NULL"
        if self.kind == "accepted_values":
            allowed = _values(spec.values, kind, column)
            shown = ", ".join(repr(v) for v in spec.values[:10]) + (", …" if len(spec.values) > 10 else "")
            return (lambda a: pc.and_(pc.is_valid(a), pc.invert(pc.is_in(a, value_set=allowed))),
                    lambda v: f"{v!r} is not one of {shown}")
        if self.kind == "range":
            low = None if spec.min is None else _values([spec.min], kind, column)[0]
            high = None if spec.max is None else _values([spec.max], kind, column)[0]
            below, above = (pc.less_equal, pc.greater_equal) if spec.exclusive else (pc.less, pc.greater)

            def out_of_range(a: Any) -> Any:
                parts = []
                if low is not None:
                    parts.append(below(a, low))
                if high is not None:
                    parts.append(above(a, high))
                return parts[0] if len(parts) == 1 else pc.or_kleene(parts[0], parts[1])

            bounds = _bounds_text(spec.min, spec.max, spec.exclusive)
            return out_of_range, lambda v: f"{v} is outside {bounds}"
        if self.kind == "pattern":
            regex = spec.regex
            return (lambda a: pc.invert(pc.match_substring_regex(_as_text(a), regex)),
                    lambda v: f"{v!r} does not match {regex}")
        if self.kind == "length":
            lo, hi = spec.min, spec.max

            def bad_length(a: Any) -> Any:
                n = pc.utf8_length(_as_text(a))
                parts = []
                if lo is not None:
                    parts.append(pc.less(n, lo))
                if hi is not None:
                    parts.append(pc.greater(n, hi))
                return parts[0] if len(parts) == 1 else pc.or_kleene(parts[0], parts[1])

            want = (f"{lo} to {hi}" if lo is not None and hi is not None else f"at least {lo}" if lo is not None
                    else f"at most {hi}")
            return bad_length, lambda v: f"{v!r} has {len(str(v))} characters, not {want}"
        raise ValueError(f"not a row-level check: {self.kind}")

    def failing(self, batch: pa.RecordBatch) -> pa.Array:
        """A boolean mask of the rows that fail (NULL values pass every test but not_null)."""
        where = keep(self.where(batch)) if self.where is not None else None
        mask = None
        for column, (test, _) in self.tests:
            failed = keep(test(batch.column(column)))
            mask = failed if mask is None else pc.or_(mask, failed)
        if where is not None:
            mask = pc.and_(mask, where)
        return mask

    def describe(self, batch: pa.RecordBatch, mask: pa.Array) -> Failures:
        """Which column failed each failing row of ``mask``, with its value and a reason."""
        indexes = pc.indices_nonzero(mask)
        rows = indexes.to_pylist()
        columns: list[str | None] = [None] * len(rows)
        reasons: list[str] = [""] * len(rows)
        values: list[Any] = [None] * len(rows)
        if not rows:
            return Failures([], [], [], [])
        taken = batch.take(indexes)
        for column, (test, why) in self.tests:
            failed = keep(test(taken.column(column))).to_pylist()
            picked = taken.column(column)
            for k, bad in enumerate(failed):
                if bad and columns[k] is None:
                    value = picked[k].as_py()
                    columns[k], values[k] = column, value
                    reasons[k] = f"check {self.name}: {column} {why(value)}"
        return Failures(rows, [c or "" for c in columns], reasons, values)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _as_text(a: Any) -> Any:
    return a if _is_text(a.type) else pc.cast(a, pa.string())


def _values(values: list[Any], kind: pa.DataType, column: str) -> pa.Array:
    """Values from the job, as the column's type (text dates as dates...)."""
    try:
        if pa.types.is_date(kind):
            values = [datetime.date.fromisoformat(v) if isinstance(v, str) else v for v in values]
        elif pa.types.is_timestamp(kind):
            values = [datetime.datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
            if kind.tz is not None:
                values = [v.replace(tzinfo=datetime.timezone.utc) if isinstance(v, datetime.datetime) and v.tzinfo is None
                          else v for v in values]
        if pa.types.is_decimal(kind):
            values = [decimal.Decimal(str(v)) if isinstance(v, (int, float, str)) else v for v in values]
            return pa.array(values, kind)
        return pa.array(values).cast(kind)
    except (decimal.InvalidOperation, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError, TypeError) as exc:
        shown = ", ".join(repr(v) for v in values[:5])
        raise ValueError(f"{shown} cannot be compared with column {column} ({kind}): {exc}") from None


def _bounds_text(low: Any, high: Any, exclusive: bool) -> str:
    if low is not None and high is not None:
        return f"{'(' if exclusive else '['}{low}, {high}{')' if exclusive else ']'}"
    if low is not None:
        return f"{'>' if exclusive else '>='} {low}"
    return f"{'<' if exclusive else '<='} {high}"
