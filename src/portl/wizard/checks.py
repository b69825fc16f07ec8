"""Checks shared by the questions: one of some choices, a whole number, a line of text, y/n,
a path. Each accepts an answer as typed, as a flag gives it or as YAML holds it, returns it in one
normal form, and raises ValueError with a sentence saying what is wrong."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from typing import Any

from portl.spec.envsubst import substitute


def choice(value: Any, options: list[str], what: str = "answer") -> str:
    """One of ``options``: as written (any case), a unique prefix, or its number (1-based)."""
    text = str(value).strip()
    lowered = {o.lower(): o for o in options}
    if text.lower() in lowered:
        return lowered[text.lower()]
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    starts = [o for o in options if o.lower().startswith(text.lower())] if text else []
    if len(starts) == 1:
        return starts[0]
    raise ValueError(f"{text!r} is not a valid {what}{closest(text, options)} Choose one of: {', '.join(options)}")


def closest(value: str, options: list[str]) -> str:
    """``; did you mean 'x'?`` for the option closest to ``value``, else ``.``: the end of a sentence."""
    close = difflib.get_close_matches(value, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else "."


def integer(value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, not {value!r}")
    text = str(value).strip().replace("_", "").replace(",", "")
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(text)
    if number < low or (high is not None and number > high):
        upper = f" and {high:,}" if high is not None else ""
        raise ValueError(f"{number:,} is out of range: give a number between {low:,}{upper}" if upper
                         else f"{number:,} is out of range: give {low:,} or more")
    return number


def optional_integer(value: Any, low: int) -> int | None:
    if value is None or str(value).strip().lower() in ("", "none", "no"):
        return None
    return integer(value, low)


def text(value: Any, what: str) -> str:
    found = "" if value is None else str(value).strip()
    if not found:
        raise ValueError(f"{what} cannot be empty")
    if "\n" in found:
        raise ValueError(f"{what} must be one line")
    return found


def resolved_path(value: str, cwd: str, environ: Mapping[str, str]) -> str:
    """``value`` as an absolute path: ``${env:NAME}`` replaced, ``~`` expanded, relative to ``cwd``."""
    substituted, result = substitute(value, environ)
    if result.failures:
        raise ValueError("; ".join(reason for _, reason in result.failures))
    expanded = os.path.expanduser(substituted)
    return expanded if os.path.isabs(expanded) else os.path.join(cwd, expanded)


def yes_no(value: Any) -> bool:
    """True for y/yes/true/1, False for n/no/false/0; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("y", "yes", "true", "t", "1", "on"):
        return True
    if text in ("n", "no", "false", "f", "0", "off"):
        return False
    raise ValueError(f"answer y or n, not {value!r}")
