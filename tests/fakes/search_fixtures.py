"""pytest fixtures for the in-memory search cluster (:mod:`tests.fakes.search_server`), each
started for one test on a free port of 127.0.0.1 and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.search_server import SearchServer


@pytest.fixture
def search_server() -> Iterator[SearchServer]:
    """A stand-in Elasticsearch cluster (``.url``, ``.documents(index)``, ``.bulk_requests``...)."""
    with SearchServer("elasticsearch") as server:
        yield server


@pytest.fixture
def opensearch_server() -> Iterator[SearchServer]:
    """A stand-in OpenSearch cluster."""
    with SearchServer("opensearch") as server:
        yield server


@pytest.fixture
def search_url(search_server: SearchServer) -> str:
    """The URL of a stand-in Elasticsearch cluster of the test's own, for the conformance suite."""
    return search_server.url
