"""Helpers of the Snowflake integration tests: a job against the test's own database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def snowflake_job(tmp_path: Path, snowflake_place):
    """``snowflake_job(text)``: write a job (``{snowflake}`` stands for the connection keys) and
    return its path."""

    def _job(text: str, name: str = "job") -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text).replace("{snowflake}", snowflake_place.yaml))
        return str(path)

    return _job

