"""Fixtures of the service's integration tests."""

from __future__ import annotations

import pytest

from tests.integration.service.apiserver import ServiceServer


@pytest.fixture
def server(tmp_path):
    """A ``portl serve`` of the test's own (its home under tmp_path), stopped after the test; a test
    file may define its own ``server`` (tenants made once for the module, a broker set first)."""
    served = ServiceServer(tmp_path / "home")
    served.home.mkdir()
    yield served
    served.stop()
