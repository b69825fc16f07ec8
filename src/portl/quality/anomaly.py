"""Volume anomalies: is a count (rows of a date, or of a file) far from the usual?

Each count is compared with the others of the same input and with the counts earlier runs of the
job recorded in the ledger (``history``). The comparison is robust: the median of the reference
counts, and their median absolute deviation (MAD, scaled by 1.4826 to read as a standard
deviation), so a few spikes in the reference do not hide a new one. A count is anomalous when its
robust z-score ``|count - median| / (1.4826 × MAD)`` passes the threshold AND it is at least
``min_rows`` away from the median (small volumes jitter). With day-of-week seasonality, a date is
compared with the same weekday's counts when there are at least ``min_history`` of them; with
fewer references than ``min_history`` a count is not judged.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

SCALE = 1.4826


@dataclass
class Point:
    key: str
    observed: int
    expected: float | None
    low: float | None
    high: float | None
    z: float | None
    anomalous: bool
    references: int

    def to_json(self) -> dict:
        return {"key": self.key, "observed": self.observed, "expected": _round(self.expected),
                "low": _round(self.low), "high": _round(self.high), "z": _round(self.z),
                "anomalous": self.anomalous, "references": self.references}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def judge(current: dict[str, int], history: dict[str, int], *, threshold: float, min_history: int, min_rows: int,
          seasonal: bool) -> list[Point]:
    """A :class:`Point` per key of ``current`` (sorted), judged against the rest and ``history``."""
    reference = {k: v for k, v in history.items() if k not in current}
    reference.update(current)
    keys = sorted(reference)
    position = {k: i for i, k in enumerate(keys)}
    values = np.array([reference[k] for k in keys], dtype=float)
    weekdays = np.array([_weekday(k) for k in keys]) if seasonal else None
    out = []
    for key in sorted(current):
        at = position[key]
        others = np.ones(len(keys), bool)
        others[at] = False
        if weekdays is not None and weekdays[at] >= 0:
            same_day = others & (weekdays == weekdays[at])
            if same_day.sum() >= min_history:
                others = same_day
        pool = values[others]
        observed = current[key]
        if len(pool) < min_history:
            out.append(Point(key, observed, None, None, None, None, False, int(len(pool))))
            continue
        median = float(np.median(pool))
        spread = SCALE * float(np.median(np.abs(pool - median)))
        width = max(threshold * spread, float(min_rows))
        distance = abs(observed - median)
        z = distance / spread if spread > 0 else (0.0 if distance == 0 else float("inf"))
        anomalous = distance > threshold * spread and distance >= min_rows
        out.append(Point(key, observed, median, max(0.0, median - width), median + width,
                         z if z != float("inf") else None, bool(anomalous), int(len(pool))))
    return out


def _weekday(key: str) -> int:
    try:
        return datetime.date.fromisoformat(key[:10]).weekday()
    except ValueError:
        return -1
