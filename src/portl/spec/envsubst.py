"""``${env:NAME}`` and ``${env:NAME:-default}`` in job files.

A reference may stand anywhere inside a string, several to a string. ``$${env:NAME}`` is the
literal text ``${env:NAME}``. As in the shell, ``:-default`` applies when the variable is unset or
empty. Only strings are touched; keys never are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portl.spec.positions import Path

_REFERENCE = re.compile(r"\$(?P<escape>\$?)\{env:(?P<body>[^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Substitution:
    """What substituting a tree did: the paths whose text changed, and the references that failed.

    ``failures`` pairs a path with the reason (``"environment variable X is not set"``); the value
    at that path is left as written.
    """

    changed: set[Path] = field(default_factory=set)
    failures: list[tuple[Path, str]] = field(default_factory=list)


def substitute(value: Any, environ: Mapping[str, str], path: Path = (), result: Substitution | None = None) -> tuple[Any, Substitution]:
    """A copy of ``value`` with every reference in its strings replaced from ``environ``."""
    result = Substitution() if result is None else result
    if isinstance(value, dict):
        return {k: substitute(v, environ, path + (k,), result)[0] for k, v in value.items()}, result
    if isinstance(value, list):
        return [substitute(v, environ, path + (i,), result)[0] for i, v in enumerate(value)], result
    if not isinstance(value, str) or "${env:" not in value:
        return value, result
    failures: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group("escape"):
            return match.group(0)[1:]
        name, has_default, default = match.group("body").partition(":-")
        if not _NAME.fullmatch(name):
            failures.append(f"'${{env:{match.group('body')}}}' is not a valid reference; write ${{env:NAME}} or ${{env:NAME:-default}}")
            return match.group(0)
        current = environ.get(name)
        if has_default and not current:
            return default
        if current is None:
            failures.append(f"environment variable {name} is not set")
            return match.group(0)
        return current

    text = _REFERENCE.sub(replace, value)
    if failures:
        result.failures.extend((path, reason) for reason in failures)
        return value, result
    if text != value:
        result.changed.add(path)
    return text, result
