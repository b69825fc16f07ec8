"""The JSON report: the result model as it is, plus ``format_version``.

Keys come in the model's own order (``format_version`` first, ``summary`` last), so two renders of
one report are byte for byte the same and diff well. ``QualityReport.from_json`` reads it back.
"""

from __future__ import annotations

import json
import math
from typing import Any

from portl.quality.results import QualityReport

#: Raised when a key is renamed or its meaning changes; readers check it.
FORMAT_VERSION = 1


def report_document(report: QualityReport) -> dict[str, Any]:
    """The report as the JSON document holds it (a dict of plain JSON values)."""
    return {"format_version": FORMAT_VERSION, **_finite(report.to_json())}


def render_json(report: QualityReport) -> str:
    """The report as indented JSON text, ending in a newline."""
    return json.dumps(report_document(report), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def _finite(value: Any) -> Any:
    """NaN and the infinities (a z-score over a flat history) become null: JSON has no such numbers
    and most readers refuse the ``NaN`` Python would write."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
