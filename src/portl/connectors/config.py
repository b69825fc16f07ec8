"""The base every connector config shares: strict keys, resolved relative paths."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, model_validator

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
        return self

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            yield name, (mask_url(value) if name == "url" and value else value)


def resolve_path(path: str, base_dir: str) -> str:
    """A path from a job file, taken relative to the job file's folder unless absolute."""
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base_dir, expanded))
