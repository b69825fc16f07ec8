"""What every hook type shares: the context it runs in, the drop signal, and the call seam."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from portl.errors import HookError

ROW_EVENTS = ("before_row", "after_row")
DROPPED_BY_HOOK = "dropped by hook"


class SkipRow(Exception):
    """Raised by a python ``before_row`` hook to drop the row; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class HookContext:
    """The run a hook belongs to."""

    job: str
    run_id: str
    base_dir: str  # the job file's folder: cwd of scripts, on sys.path for python hooks


@dataclass(frozen=True)
class Drop:
    """A hook's answer meaning "leave this row out", with the reason kept for the report."""

    reason: str


#: What a row hook answers: ``None`` keeps the row, a dict replaces it, :class:`Drop` drops it.
RowVerdict = dict[str, Any] | Drop | None


class HookCall(Protocol):
    """One configured hook, bound to its event and position (``before_batch[0]``)."""

    label: str

    def on_event(self, payload: dict[str, Any]) -> None: ...

    def on_row(self, row: dict[str, Any], where: str, outcome: dict[str, Any] | None = None) -> RowVerdict: ...

    def close(self) -> None: ...


def hook_label(event: str, index: int, what: str) -> str:
    """How messages name a hook: ``hook before_batch[0] (script './notify.sh')``."""
    return f"hook {event}[{index}] ({what})"


def to_json_bytes(value: Any) -> bytes:
    """JSON for a payload or row; anything JSON does not know is sent as its text."""
    return json.dumps(value, default=str, ensure_ascii=False).encode("utf-8")


def seconds(value: float) -> str:
    """``5.0`` -> ``5``, ``0.5`` -> ``0.5``: how timeouts read in messages."""
    return f"{value:g}"


def drop_reason(value: Any) -> str:
    """The reason text of a drop answer; a bare ``true`` or an empty text gets the default."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return DROPPED_BY_HOOK


def answer_verdict(answer: Any, label: str, where: str, shown: str | None = None) -> RowVerdict:
    """A remote hook's answer about one row (an http hook's JSON body, a lambda's result):
    ``{"drop": reason}`` drops the row, ``{"row": {...}}`` replaces it, anything else keeps it.
    ``shown`` is the answer as received, for the message when ``row`` is not an object."""
    if not isinstance(answer, dict):
        return None
    if answer.get("drop"):
        return Drop(drop_reason(answer["drop"]))
    if "row" in answer:
        if not isinstance(answer["row"], dict):
            raise HookError(f"{label} answered with a 'row' that is not an object ({where}): "
                            f"{excerpt(shown if shown is not None else str(answer['row']))}")
        return answer["row"]
    return None


def excerpt(text: str, limit: int = 200) -> str:
    """The first ``limit`` characters of ``text`` on one line, marked when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
