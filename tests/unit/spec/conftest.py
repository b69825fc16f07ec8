import pytest

from portl.errors import ConfigError, Problem


@pytest.fixture
def problems_of():
    """Call a function that must raise ConfigError; return the error's problems."""

    def _problems_of(call, *args, **kwargs) -> list[Problem]:
        with pytest.raises(ConfigError) as info:
            call(*args, **kwargs)
        return info.value.problems

    return _problems_of
