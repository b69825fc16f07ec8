"""Fixtures for the MySQL / MariaDB connector tests. Each test gets its own database (``mysql_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from portl.connectors.mysql import Config
from tests.services import MYSQL_HOST, MYSQL_PORT, closing_factory, unique_name


def _connect(database: str | None = None, user: str = "root", password: str = ""):
    import pymysql

    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=user, password=password, database=database,
                           autocommit=True, charset="utf8mb4")


@pytest.fixture
def database(mysql_url) -> str:
    """The name of the test's own database."""
    return urlsplit(mysql_url).path.lstrip("/")


@pytest.fixture
def db(database) -> Iterator:
    """An autocommit PyMySQL connection to the test's database, for setting up and checking."""
    conn = _connect(database)
    yield conn
    conn.close()


@pytest.fixture
def sql(db):
    """``sql("SELECT ...", params)``: run one statement on the test's database, return its rows."""

    def run(statement: str, params=None) -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())

    return run


@pytest.fixture
def config(mysql_url):
    """``config(table="t", ...)``: a connector config for the test's database."""

    def make(**fields) -> Config:
        return Config(type="mysql", url=mysql_url, **fields)

    return make


@pytest.fixture
def sink(config):
    """``sink("t", **fields)``: an open MysqlSink, closed after the test."""
    from portl.connectors.mysql.sink import MysqlSink

    yield from closing_factory(lambda table="t", **fields: MysqlSink(config(table=table, **fields), "."))


@pytest.fixture
def source(config):
    """``source(table="t")`` or ``source(query="SELECT ...")``: an open MysqlSource."""
    from portl.connectors.mysql.source import MysqlSource

    yield from closing_factory(lambda **fields: MysqlSource(config(**fields), "."))


@pytest.fixture
def make_user(database) -> Iterator:
    """``make_user(password, *grants)``: a MySQL user with a password and the given grants on the
    test's database (e.g. "SELECT"), dropped after the test. Returns the user name."""
    admin = _connect()
    made: list[str] = []

    def make(password: str, *grants: str) -> str:
        name = unique_name("portl_user")[:32]
        with admin.cursor() as cur:
            for host in ("%", "localhost"):
                # PyMySQL fills %s with Python's % operator: the host '%' is written '%%'
                cur.execute(f"CREATE USER '{name}'@'{host.replace('%', '%%')}' IDENTIFIED BY %s", (password,))
                for grant in grants:
                    cur.execute(f"GRANT {grant} ON `{database}`.* TO '{name}'@'{host}'")
        made.append(name)
        return name

    yield make
    with admin.cursor() as cur:
        for name in made:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")
    admin.close()


@pytest.fixture
def other_database() -> Iterator[str]:
    """A second empty database (utf8mb4), for copies from one database to another."""
    admin = _connect()
    name = unique_name()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
