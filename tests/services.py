"""Real database servers for tests: one fresh database per test, dropped afterwards.

A test that needs a server it cannot reach is skipped with the reason, except when
PORTL_REQUIRE_SERVICES=1 (as in CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN = os.environ.get("PORTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("PORTL_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("PORTL_TEST_MYSQL_PORT", "3306"))


def unavailable(what: str, exc: Exception) -> None:
    """Skip, or fail under PORTL_REQUIRE_SERVICES=1, because a server cannot be reached."""
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("PORTL_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (PORTL_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def closing_factory(factory):
    """Fixture body for "open things during the test, close them all after it": yields a function
    that calls ``factory`` and remembers what it returned. Use as ``yield from closing_factory(...)``."""
    opened = []

    def make(*args, **kwargs):
        thing = factory(*args, **kwargs)
        opened.append(thing)
        return thing

    yield make
    for thing in opened:
        thing.close()


def unique_name(prefix: str = "portl_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a new, empty Postgres database owned by this test."""
    with pg_database() as url:
        yield url


@contextmanager
def pg_database() -> Iterator[str]:
    """URL of a new, empty Postgres database, dropped on leaving: for a fixture of wider scope."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:  # the driver missing or the server down: both mean "no Postgres here"
        unavailable("PostgreSQL at " + PG_ADMIN, exc)
    name = unique_name()
    from psycopg import sql

    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a new, empty MariaDB/MySQL database owned by this test."""
    try:
        import pymysql

        admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", autocommit=True, connect_timeout=5)
    except Exception as exc:
        unavailable(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT}", exc)
    name = unique_name()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
