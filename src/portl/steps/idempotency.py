"""Idempotency keys: the same call of the same job for the same item always gets the same key.

A key is sent with every external call (the HTTP ``Idempotency-Key`` header; the outbox's dedup
key), so a retry or a re-run of the job after a failure is recognised by the receiver as a repeat
of a request it has already seen, instead of doing the work twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def idempotency_key(job: str, step_id: str, item_key: str) -> str:
    """The key of step ``step_id`` of job ``job`` for the item ``item_key``: the SHA-256 hex digest
    of the three, encoded so that no two different triples give the same text."""
    text = json.dumps([str(job), str(step_id), str(item_key)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_key(value: Any) -> str:
    """A stable text for any item of a batch (a row, a number, a nested value): canonical JSON
    with sorted keys, so equal items give equal keys whatever their key order."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
