"""Statistics gathered from each batch of the load's own pass, for the aggregate checks.

Per column: rows, NULLs, minimum and maximum (one ``min_max`` kernel call per batch); a distinct
estimate (:class:`~portl.quality.hashing.DistinctSketch`) for the columns a check names; blank
strings for ``missing: {empty_is_null: true}``; rows per date for the date columns that
``date_completeness``, ``volume_anomaly`` and ``freshness`` read; and rows per file for
``volume_anomaly: {per: file}``. Memory is bounded by the number of distinct dates and files,
never by the rows. Partitions read in parallel feed one profile; each update takes a short lock.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.quality.hashing import DistinctSketch, hash_array
from portl.quality.results import ColumnProfile
from portl.types import logical_of


@dataclass
class ColumnStats:
    name: str
    type: str
    rows: int = 0
    nulls: int = 0
    blanks: int = 0
    min: Any = None
    max: Any = None
    sketch: DistinctSketch | None = None
    per_date: dict[int, int] | None = None
    """Rows per day, the day as a number of days since 1970-01-01."""
    unreadable_dates: int = 0
    examples_unreadable: list[str] = field(default_factory=list)


class Profile:
    """The statistics of one pass, fed batch by batch (thread-safe)."""

    def __init__(self, schema: pa.Schema, *, distinct: set[str] = frozenset(), dates: set[str] = frozenset(),
                 blanks: set[str] = frozenset(), per_file: bool = False, text_bounds: set[str] | None = None):
        self.schema = schema
        self.columns = {f.name: ColumnStats(f.name, str(logical_of(f))) for f in schema}
        for name in distinct:
            self.columns[name].sketch = DistinctSketch()
        for name in dates:
            self.columns[name].per_date = {}
        self.blank_columns = set(blanks)
        # Minimum and maximum of text cost a comparison per value: only for the columns asked
        # (None: every column). Numbers, dates and times always have theirs.
        self.text_bounds = text_bounds
        self.rows = 0
        self.per_file: dict[str, int] | None = {} if per_file else None
        self._lock = threading.Lock()

    def observe(self, batch: pa.RecordBatch, file: str | None = None) -> None:
        """Add one batch's statistics."""
        n = batch.num_rows
        if not n:
            return
        found: dict[str, tuple] = {}
        for name, stats in self.columns.items():
            column = batch.column(name)
            nulls = column.null_count
            low = high = None
            if nulls < n and _orderable(column.type) and (self.text_bounds is None or name in self.text_bounds
                                                          or not _is_text(column.type)):
                low, high = _min_max(column)
            blanks = 0
            if name in self.blank_columns and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                blanks = pc.sum(pc.equal(pc.utf8_trim_whitespace(column), "")).as_py() or 0
            if stats.sketch is not None:  # its own lock: not held under the profile's
                stats.sketch.add(_sketch_hashes(stats.sketch, column.drop_null() if nulls else column))
            dates = _date_counts(column) if stats.per_date is not None else None
            found[name] = (nulls, low, high, blanks, dates)
        with self._lock:
            self.rows += n
            if self.per_file is not None and file is not None:
                self.per_file[file] = self.per_file.get(file, 0) + n
            for name, (nulls, low, high, blanks, dates) in found.items():
                stats = self.columns[name]
                stats.rows += n
                stats.nulls += nulls
                stats.blanks += blanks
                if low is not None and (stats.min is None or low < stats.min):
                    stats.min = low
                if high is not None and (stats.max is None or high > stats.max):
                    stats.max = high
                if dates is not None:
                    counts, unreadable, examples = dates
                    for day, count in counts.items():
                        stats.per_date[day] = stats.per_date.get(day, 0) + count
                    stats.unreadable_dates += unreadable
                    if len(stats.examples_unreadable) < 5:
                        stats.examples_unreadable += examples[: 5 - len(stats.examples_unreadable)]

    def column_profiles(self) -> list[ColumnProfile]:
        return [ColumnProfile(s.name, s.type, s.rows, s.nulls, _text(s.min), _text(s.max),
                              s.sketch.estimate() if s.sketch is not None else None)
                for s in self.columns.values()]

    def dates_of(self, name: str) -> dict[datetime.date, int]:
        """Rows per date of a date column, in date order."""
        counts = self.columns[name].per_date or {}
        return {_EPOCH + datetime.timedelta(days=day): n for day, n in sorted(counts.items())}


_EPOCH = datetime.date(1970, 1, 1)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _sketch_hashes(sketch: DistinctSketch, column: pa.Array) -> Any:
    """The hashes a sketch needs of a batch: while it holds fewer than k values, those of the
    batch's distinct values only (Arrow's hash table finds them, a few per batch for a column like a
    date or a status); once full, every value's, which the sketch filters by its threshold."""
    if not sketch.full:
        return hash_array(pc.unique(column))
    return hash_array(column)


def _orderable(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_temporal(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind))


def _min_max(column: pa.Array) -> tuple[Any, Any]:
    try:
        found = pc.min_max(column)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return None, None
    return found["min"].as_py(), found["max"].as_py()


def _date_counts(column: pa.Array) -> tuple[dict[int, int], int, list[str]]:
    """Rows per date of a date, time stamp or ISO text column; text that is no date is counted apart."""
    kind = column.type
    unreadable, examples = 0, []
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):  # a zoned time stamp's day is its UTC day
        days = column.cast(pa.date32())
    else:
        text = column if pa.types.is_string(kind) or pa.types.is_large_string(kind) else pc.cast(column, pa.string())
        days = pc.strptime(pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True)
        days = pc.cast(days, pa.date32())
        bad = pc.and_(pc.is_null(days), pc.is_valid(text))
        unreadable = pc.sum(bad).as_py() or 0
        if unreadable:
            examples = [str(v) for v in text.filter(bad).slice(0, 5).to_pylist()]
    counts = pc.value_counts(days.drop_null() if days.null_count else days)
    # Days as numbers since 1970 (no date object per distinct value and batch); dates_of() names them.
    values = counts.field("values").view(pa.int32()).to_numpy(zero_copy_only=False).tolist()
    tallies = counts.field("counts").to_numpy(zero_copy_only=False).tolist()
    return dict(zip(values, tallies)), unreadable, examples


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)
