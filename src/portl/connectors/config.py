"""The base every connector config shares: strict keys, resolved relative paths."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict


class ConnectorConfig(BaseModel):
    """A connector's settings as written in a job or a connections file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        """A short, secret-free description for plans and messages."""
        return str(getattr(self, "type", "connector"))


def resolve_path(path: str, base_dir: str) -> str:
    """A path from a job file, taken relative to the job file's folder unless absolute."""
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base_dir, expanded))
