"""Prometheus' text exposition format, version 0.0.4, written out: metric families, each with its
``# HELP`` and ``# TYPE`` lines and its samples, label values and help text escaped as the format
says. Only what ``/metrics`` needs: gauges, counters and histograms with fixed buckets."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("gauge", "counter", "histogram")


class Exposition:
    """The text of one scrape, family by family; ``str()`` of it is the answer's body."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._names: set[str] = set()

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]] = ()) -> None:
        """A gauge or counter: its HELP and TYPE, then one line per (labels, value)."""
        self._head(name, kind, help_text)
        for labels, value in samples:
            self._sample(name, labels, value)

    def histogram(self, name: str, help_text: str, bounds: Sequence[float],
                  series: Iterable[tuple[Mapping[str, str], Sequence[int], float, int]]) -> None:
        """A histogram: per (labels, counts at or below each of ``bounds``, sum, count) its
        cumulative ``_bucket`` lines (the last one ``le="+Inf"``, the count), ``_sum`` and ``_count``."""
        self._head(name, "histogram", help_text)
        for labels, cumulative, total, count in series:
            if len(cumulative) != len(bounds):
                raise ValueError(f"{name}: {len(cumulative)} bucket counts for {len(bounds)} bounds")
            for bound, below in zip(bounds, cumulative):
                self._sample(f"{name}_bucket", {**labels, "le": number(bound)}, below)
            self._sample(f"{name}_bucket", {**labels, "le": "+Inf"}, count)
            self._sample(f"{name}_sum", labels, total)
            self._sample(f"{name}_count", labels, count)

    def __str__(self) -> str:
        return "".join(line + "\n" for line in self._lines)

    def _head(self, name: str, kind: str, help_text: str) -> None:
        if not _NAME.match(name) or kind not in TYPES:
            raise ValueError(f"metric {name!r} of type {kind!r}: a name like portl_jobs and one of {', '.join(TYPES)}")
        if name in self._names:
            raise ValueError(f"metric {name!r} is written twice; write a family once, with all its samples")
        self._names.add(name)
        self._lines.append(f"# HELP {name} {escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def _sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"metric {name!r}: {label!r} is not a label name")
        shown = ",".join(f'{label}="{escape_label(str(text))}"' for label, text in labels.items())
        self._lines.append(f"{name}{{{shown}}} {number(value)}" if shown else f"{name} {number(value)}")


def escape_label(value: str) -> str:
    """A label value as the format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Help text as the format writes it (double quotes stay as they are there)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value: whole numbers without a decimal point, ``+Inf``, ``-Inf`` and ``NaN`` by name."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
