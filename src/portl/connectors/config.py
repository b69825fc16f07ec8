"""The base every connector config shares: strict keys, resolved relative paths."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portl.secrets import mask_url


class ConnectorConfig(BaseModel):
    """A connector's settings as written in a job or a connections file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        """A short, secret-free description for plans and messages."""
        return str(getattr(self, "type", "connector"))


class ServerConfig(ConnectorConfig):
    """Shared by database servers: a ``url`` whose password never shows in ``repr``, and at
    most one of ``table``, ``tables`` and ``query`` (the subclass declares the fields)."""

    @model_validator(mode="after")
    def _one_kind_of_read(self) -> ServerConfig:
        given = [k for k in ("table", "tables", "query") if getattr(self, k, None)]
        if len(given) > 1:
            raise ValueError(f"give only one of table, tables and query, not {' and '.join(given)}")
        problem = incremental_problem(self)
        if problem is not None:
            raise KeyRule("incremental", problem)
        return self

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            yield name, (mask_url(value) if name == "url" and value else value)


def resolve_path(path: str, base_dir: str) -> str:
    """A path from a job file, taken relative to the job file's folder unless absolute."""
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base_dir, expanded))


# --- incremental reads -----------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> datetime.timedelta:
    """``10m``, ``2h``, ``1d``, ``1h30m``, ``45s``, ``1w`` as a timedelta; ``ValueError`` otherwise."""
    compact = text.strip()
    parts = _DURATION_PART.findall(compact)
    if not parts or _DURATION_PART.sub("", compact).strip():
        raise ValueError(f"lookback {text!r} is not a duration: write a number and a unit (s, m, h, d, w), "
                         "e.g. 10m, 2h, 1d or 1h30m; a number alone for a numeric cursor")
    return datetime.timedelta(seconds=sum(float(n) * _SECONDS[u.lower()] for n, u in parts))


class Incremental(BaseModel):
    """``incremental:`` on a source: read only what is new since the job's last finished run.

    A database source names a ``cursor`` column that grows as rows are added or changed
    (``updated_at``, an increasing ``id``); a file-glob source without a cursor reads only the
    files it has not loaded before. Shared by every connector that reads incrementally."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: str | None = Field(
        None, description="Column whose largest value is the run's high-water mark (updated_at, an increasing id). "
        "Required on database sources; on a file glob, omit it to load only new files.")
    lookback: int | float | str | None = Field(
        None, description="How far before the last mark the next run reads again, for rows committed late: a "
        "duration (10m, 2h, 1d) for a date or time cursor, a number for a numeric one. Needs a 'conflict' key, "
        "so re-read rows are upserted, not duplicated.")
    initial: int | float | str | datetime.datetime | datetime.date | None = Field(
        None, description="Where the first run starts: rows whose cursor is at least this value (default: every row).")

    @field_validator("cursor")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("cursor names no column; give the column whose values grow, e.g. cursor: updated_at")
        return value

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: int | float | str | None) -> int | float | str | None:
        if isinstance(value, str):
            parse_duration(value)
        elif isinstance(value, (int, float)) and (value < 0 or value != value):
            raise ValueError(f"lookback must not be negative, got {value}")
        return value

    @field_validator("initial")
    @classmethod
    def _initial_text(cls, value: Any) -> Any:
        # YAML reads 2024-05-01 as a date: keep the text, the source turns it into the cursor's type.
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        return value

    def lookback_amount(self) -> datetime.timedelta | int | float | None:
        """The lookback as a timedelta (a duration) or a number, None when there is none."""
        if self.lookback is None:
            return None
        return parse_duration(self.lookback) if isinstance(self.lookback, str) else self.lookback


def incremental_problem(config: Any) -> str | None:
    """Why a database source's ``incremental`` cannot work with its other keys, or None."""
    incremental = getattr(config, "incremental", None)
    if incremental is None:
        return None
    if getattr(config, "tables", None):
        return ("incremental reads one table or query at a time; a whole-database copy (tables:) cannot be "
                "incremental: write one job per table, each with its own cursor")
    if incremental.cursor is None:
        return "incremental on a database source needs a cursor column, e.g. incremental: {cursor: updated_at}"
    return None


class KeyRule(ValueError):
    """A rule across a connector config's keys, about one of them: reported at that key's line
    (the job language's error locator reads ``key``)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
