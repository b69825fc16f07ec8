"""Counts in sentences: ``1 batch``, ``2 batches``, ``1,000 rows``."""

from __future__ import annotations

_IRREGULAR = {"batch": "batches", "entry": "entries", "retry": "retries", "is": "are", "was": "were", "has": "have",
              "it": "they"}


def plural(count: int, noun: str) -> str:
    """``noun`` as it goes with ``count``: ``row`` for 1, ``rows`` otherwise."""
    if count == 1:
        return noun
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    *head, last = noun.split(" ")  # "source row" -> "source rows"
    return " ".join([*head, _IRREGULAR.get(last, last + "s")])


def counted(count: int, noun: str) -> str:
    """``count`` with thousands separators and ``noun`` agreeing with it: ``1 batch``, ``25,000 rows``."""
    return f"{count:,} {plural(count, noun)}"
