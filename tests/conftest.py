"""Fixtures shared by every test folder."""

import textwrap
from pathlib import Path

import pytest

from portl.errors import ConfigError, Problem
from tests.services import mysql_url, pg_url  # noqa: F401  (fixtures)
from tests.fakes.fixtures import http_recorder, lambda_server  # noqa: F401  (fixtures)


@pytest.fixture
def write(tmp_path: Path):
    """``write(name, text)``: write dedented text under tmp_path (folders made); returns the path as a string."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def problems_of():
    """``problems_of(call, *args)``: call a function that must raise ConfigError; return its problems."""

    def _problems_of(call, *args, **kwargs) -> list[Problem]:
        with pytest.raises(ConfigError) as info:
            call(*args, **kwargs)
        return info.value.problems

    return _problems_of
