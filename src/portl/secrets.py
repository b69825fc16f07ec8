"""Secrets: values that plans, logs, reports and errors never print."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import SecretStr, PlainSerializer

MASK = "**********"

#: A secret string in a connection or hook. ``repr`` and ``str`` print ``**********``;
#: code that needs the value calls ``.get_secret_value()``.
Secret = Annotated[SecretStr, PlainSerializer(lambda s: MASK, return_type=str, when_used="always")]

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")
_SENSITIVE_NAME = re.compile(r"pass|secret|token|auth|api[-_]?key|credential|cookie|signature", re.IGNORECASE)
_QUERY_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#\s]+)=)(?P<value>[^&#\s]*)")


def mask_url(text: str) -> str:
    """Mask the password of every ``scheme://user:password@host`` in ``text``, and the value of
    every credential-like query parameter (``?token=...``, ``&api_key=...``)."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
    return _QUERY_PARAM.sub(
        lambda m: m.group("head") + (MASK if is_sensitive_name(m.group("name")) else m.group("value")), text
    )


def is_sensitive_name(name: str) -> bool:
    """True for header or option names that usually carry credentials (Authorization, api_key...)."""
    return bool(_SENSITIVE_NAME.search(name))


def mask_mapping(values: dict[str, str]) -> dict[str, str]:
    """A copy of ``values`` with credential-like entries masked, e.g. HTTP headers."""
    return {k: (MASK if is_sensitive_name(k) else mask_url(str(v))) for k, v in values.items()}
