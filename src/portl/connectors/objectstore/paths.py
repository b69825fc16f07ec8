"""What a file connector's path names: a local file or an S3 object, one or a glob of many, and
what a path finds (:class:`Found`). No I/O here: the checks every config runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from portl.connectors.filesink import SIDECAR_SUFFIX, TMP_SUFFIX

SCHEME = "s3://"
OTHER_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]+)://")
TAIL_SUFFIX = ".portl-tail"
OWN_SUFFIXES = (SIDECAR_SUFFIX, TAIL_SUFFIX, TMP_SUFFIX)
"""What Portl keeps beside a file or object it writes; a glob never reads those."""
GLOB_CHARS = frozenset("*?[")
STORE_KEYS = ("endpoint_url", "region", "profile", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def is_object_url(path: str) -> bool:
    """Whether ``path`` names an object in a store (``s3://bucket/key``) rather than a local file."""
    return path[:5].lower() == SCHEME


def has_glob(path: str) -> bool:
    """Whether ``path`` is a pattern (``*``, ``?``, ``[...]``) naming possibly many files."""
    return any(char in GLOB_CHARS for char in path)


@dataclass(frozen=True)
class Found:
    """One file a path or glob found: ``name`` is how messages and checkpoints call it (the path
    as the user would write it, or ``s3://bucket/key``); ``version`` tells a changed file from
    the one loaded before (the object's ETag, or a local file's modification time)."""

    name: str
    size: int
    version: str

    def mark(self) -> dict[str, Any]:
        return {"size": self.size, "version": self.version}


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key)."""
    rest = url[len(SCHEME):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def key_pattern(key_glob: str) -> re.Pattern[str]:
    """A key glob as a regular expression: ``*`` and ``?`` stay within one ``/`` level, ``**``
    crosses levels (``a/**/b.csv`` matches ``a/b.csv`` too), ``[...]`` is a set (``[!...]`` its
    complement)."""
    out, i = [], 0
    while i < len(key_glob):
        char = key_glob[i]
        if key_glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if key_glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = key_glob.find("]", i + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = key_glob[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)
