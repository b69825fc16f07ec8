"""Helpers for the PostgreSQL connector tests. Each test gets its own database (``pg_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portl.connectors.postgres import Config
from tests.services import PG_ADMIN, closing_factory, unique_name


@pytest.fixture
def pg(pg_url) -> Iterator:
    """An autocommit psycopg connection to the test's database, for setting up and checking."""
    import psycopg

    conn = psycopg.connect(pg_url, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def config(pg_url):
    """``config(table="t", ...)``: a connector config for the test's database."""

    def make(**fields) -> Config:
        return Config(type="postgres", url=pg_url, **fields)

    return make


@pytest.fixture
def sink(config):
    """``sink("t")``: an open PostgresSink, closed after the test."""
    from portl.connectors.postgres.sink import PostgresSink

    yield from closing_factory(lambda table="t", **fields: PostgresSink(config(table=table, **fields), "."))


@pytest.fixture
def source(config):
    """``source(table="t")`` or ``source(query="SELECT ...")``: an open PostgresSource."""
    from portl.connectors.postgres.source import PostgresSource

    yield from closing_factory(lambda **fields: PostgresSource(config(**fields), "."))


@pytest.fixture
def role(pg_url) -> Iterator[str]:
    """A login role with no privileges beyond CONNECT, dropped after the test."""
    import psycopg

    name = unique_name("portl_role")
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        database = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{name}"')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND datname = %s",
                      (name, database))
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.close()
