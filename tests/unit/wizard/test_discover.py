"""Looking at databases through the connector seam, with stand-ins for a server that does not answer."""

from __future__ import annotations

import pytest

from portl.errors import SourceError, TerminalError
from portl.wizard import discover

SERVER = {"type": "mysql", "url": "mysql://loader@db.example.com:3306/shop"}


@pytest.fixture
def unreachable(monkeypatch):
    """A server whose catalog and sink both fail to connect, each in its own words."""

    def refuse_source(config, base_dir):
        raise SourceError("connecting to the MySQL source: cannot reach the MySQL server at db.example.com:3306")

    def refuse_sink(config, base_dir):
        raise TerminalError("connecting to the MySQL destination: cannot reach the MySQL server at db.example.com:3306")

    monkeypatch.setattr(discover.registry, "open_source", refuse_source)
    monkeypatch.setattr(discover.registry, "open_sink", refuse_sink)


def test_a_source_server_that_cannot_be_reached_is_called_the_source(unreachable):
    with pytest.raises(SourceError, match="^connecting to the MySQL source: cannot reach"):
        discover.list_tables(SERVER, ".", {}, role="source")


def test_a_destination_server_that_cannot_be_reached_is_called_the_destination(unreachable):
    with pytest.raises(TerminalError, match="^connecting to the MySQL destination: cannot reach"):
        discover.list_tables(SERVER, ".", {}, role="destination")
