import textwrap
from pathlib import Path

import pytest

from portl.errors import ConfigError, Problem


@pytest.fixture
def write(tmp_path: Path):
    """Write dedented text to a file under tmp_path and return its path as a string."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def problems_of():
    """Call a function that must raise ConfigError; return the error's problems."""

    def _problems_of(call, *args, **kwargs) -> list[Problem]:
        with pytest.raises(ConfigError) as info:
            call(*args, **kwargs)
        return info.value.problems

    return _problems_of
