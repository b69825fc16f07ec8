"""The shape of an API key: ``ptl_live_`` and eight characters people can read out (the
prefix, stored in the clear to find the key and to name it in listings), then ``_`` and a long
random secret. Only the SHA-256 of the whole key is stored: the key is a 256-bit random token,
so a fast hash is enough (a slow password hash protects guessable secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, field

from portl.secrets import MASK

KIND = "ptl_live_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_LENGTH = 8
_SECRET_BYTES = 32
_KEY = re.compile(rf"^(?P<prefix>{KIND}[a-z0-9]{{{_PREFIX_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{40,}})$")


@dataclass(frozen=True)
class MadeKey:
    """A new key: the whole key (shown once, masked in any repr), its prefix and its hash."""

    key: str = field(repr=False)
    prefix: str
    secret_hash: str

    def __repr__(self) -> str:
        return f"MadeKey(prefix={self.prefix!r}, key={MASK!r})"


def make_key() -> MadeKey:
    """A new random key."""
    prefix = KIND + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))
    key = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return MadeKey(key, prefix, hash_key(key))


def hash_key(key: str) -> str:
    """The hex SHA-256 of a whole key, as stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def prefix_of(presented: str) -> str | None:
    """The prefix of a presented key, or None when it does not have the shape of one."""
    found = _KEY.match(presented.strip())
    return found.group("prefix") if found else None


def matches(presented: str, stored_hash: str) -> bool:
    """Whether ``presented`` hashes to ``stored_hash``; the comparison takes the same time
    whatever the difference, so timing tells an attacker nothing."""
    return hmac.compare_digest(hash_key(presented.strip()), stored_hash)
