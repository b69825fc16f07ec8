"""A Snowflake for tests: fakesnow in server mode, which the real snowflake-connector-python
reaches over HTTP (login, queries, PUT to a stage, COPY INTO), started once per test session.

Each test gets a database of its own (:class:`SnowflakePlace`), so tests never see each other's
tables. fakesnow runs the SQL on DuckDB; what it cannot check of real Snowflake is listed in
docs/connectors.md (section Snowflake).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.services import unavailable

SCHEMA = "PORTL"


@dataclass
class SnowflakePlace:
    """One test's database on the fake server: connection keywords for the driver, and the same
    connection written as the keys of a job's ``type: snowflake`` block."""

    kwargs: dict[str, Any]
    database: str
    schema: str = SCHEMA

    @property
    def yaml(self) -> str:
        """``account: …, user: …, …, database: …, schema: …`` for a job's flow-style mapping."""
        k = self.kwargs
        return (f"account: {k['account']}, user: {k['user']}, password: {k['password']}, host: '{k['host']}', "
                f"port: {k['port']}, protocol: {k['protocol']}, database: {self.database}, schema: {self.schema}, "
                "session_parameters: {CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED: false}, "
                f"network_timeout: {k['network_timeout']}")

    def connect(self) -> Any:
        """A driver connection in this database and schema, for seeding and reading back."""
        import snowflake.connector

        return snowflake.connector.connect(**self.kwargs, database=self.database, schema=self.schema)

    def query(self, statement: str, params: Any = None) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@pytest.fixture(scope="session")
def snowflake_server() -> Iterator[dict[str, Any]]:
    """Connection keywords of a fakesnow server on a free port of 127.0.0.1, for the session."""
    try:
        import fakesnow
        import snowflake.connector  # noqa: F401
    except ImportError as exc:  # skipped, or failed under PORTL_REQUIRE_SERVICES=1
        unavailable("a fake Snowflake (pip install 'fakesnow[server]' 'snowflake-connector-python<5')", exc)
    with fakesnow.server() as kwargs:
        for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "fakesnow.server"):  # a line per request
            logging.getLogger(name).setLevel(logging.WARNING)
        # network_timeout 1 (fakesnow's own choice) keeps the driver from retrying a statement the
        # emulator fails with HTTP 500 for half a minute; its statements all answer well within it.
        yield dict(kwargs)


@pytest.fixture
def snowflake_place(snowflake_server) -> Iterator[SnowflakePlace]:
    """A database of this test's own on the session's fake Snowflake, with schema PORTL."""
    import snowflake.connector

    database = "T_" + uuid.uuid4().hex[:10].upper()
    conn = snowflake.connector.connect(**snowflake_server)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {database}")
            cur.execute(f"CREATE SCHEMA {database}.{SCHEMA}")
    finally:
        conn.close()
    # fakesnow cannot DROP DATABASE: the databases stay in its memory until the session ends.
    yield SnowflakePlace(snowflake_server, database)


@pytest.fixture
def snowflake_yaml(snowflake_place) -> str:
    """The connection keys of this test's database, as a job writes them (conformance suite)."""
    return snowflake_place.yaml
