"""pytest fixtures for the fake servers, each started for one test and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.http_recorder import HttpRecorder
from tests.fakes.lambda_server import LambdaServer


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    """A recording HTTP server on 127.0.0.1 (``.base_url``, ``.requests``, ``.fail_next(n)``)."""
    with HttpRecorder() as server:
        yield server


@pytest.fixture
def lambda_server() -> Iterator[LambdaServer]:
    """A local Lambda Invoke API (``.endpoint_url``, ``.register(name, handler)``, ``.invocations``)."""
    with LambdaServer() as server:
        yield server
