"""Fixtures shared by every test folder."""

import textwrap
from pathlib import Path

import pytest

from portl.errors import ConfigError, Problem
from tests.services import mysql_url, pg_url  # noqa: F401  (fixtures)
from tests.fakes.fixtures import http_recorder, lambda_server  # noqa: F401  (fixtures)
from tests.fakes.search_fixtures import opensearch_server, search_server, search_url  # noqa: F401  (fixtures)
from tests.fakes.s3_server import s3_bucket, s3_endpoint, s3_url  # noqa: F401  (fixtures)
from tests.fakes.snowflake_server import snowflake_place, snowflake_server, snowflake_yaml  # noqa: F401  (fixtures)
from tests.fakes.sheets_fixtures import gsheet_url, local_sheets  # noqa: F401  (fixtures)


@pytest.fixture
def write(tmp_path: Path):
    """``write(name, text)``: write dedented text under tmp_path (folders made); returns the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def problems_of():
    """``problems_of(call, *args)``: call a function that must raise ConfigError; return its problems."""

    def _problems_of(call, *args, **kwargs) -> list[Problem]:
        with pytest.raises(ConfigError) as info:
            call(*args, **kwargs)
        return info.value.problems

    return _problems_of


class CrashHook:
    """A ``before_batch`` hook, in the test's folder, that fails batch 3 while armed: a run that
    stops after two committed batches, for the tests of ``--resume``."""

    yaml = "hooks: {before_batch: {type: python, function: 'crashhooks:before_batch'}}\n"
    _SOURCE = textwrap.dedent('''
        import os

        def before_batch(payload):
            if payload["batch"] == 3 and os.environ.get("PORTL_TEST_CRASH"):
                raise RuntimeError("simulated crash before batch 3")
    ''')

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch):
        (folder / "crashhooks.py").write_text(self._SOURCE)
        self._monkeypatch = monkeypatch

    def arm(self) -> None:
        self._monkeypatch.setenv("PORTL_TEST_CRASH", "1")

    def disarm(self) -> None:
        self._monkeypatch.delenv("PORTL_TEST_CRASH")


@pytest.fixture
def crash_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrashHook:
    """A :class:`CrashHook` written into tmp_path; put ``crash_hook.yaml`` in the job."""
    return CrashHook(tmp_path, monkeypatch)
