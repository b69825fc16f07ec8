"""Did-you-mean hints for a table name that does not exist, from the names that do."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

SHOWN = 8
"""At most this many names are listed when none is close."""


def closest(name: str, existing: Sequence[str], n: int = 3) -> list[str]:
    """The existing names closest to ``name``, best first; letter case does not count."""
    by_folded: dict[str, str] = {}
    for candidate in existing:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(name.casefold(), list(by_folded), n=n, cutoff=0.6)
    return [by_folded[f] for f in found]


def table_hint(name: str, existing: Sequence[str], where: str = "it") -> str:
    """``; did you mean 'customers'?``, else a short list of what there is, to append to a message
    saying that table ``name`` does not exist."""
    near = closest(name, existing)
    if near:
        return "; did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
    if not existing:
        return f"; {where} holds no tables"
    listed = ", ".join(sorted(existing)[:SHOWN]) + (f" and {len(existing) - SHOWN} more" if len(existing) > SHOWN else "")
    return f"; {where} holds: {listed}"
