"""MySQL tables that do not exist: the closest names are suggested, for a source and a destination."""

from __future__ import annotations

import textwrap

import pytest

import portl
from portl.errors import ConfigError, SourceError


def _plan(tmp_path, body: str):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(body))
    portl.plan(portl.load_job(str(path))).close()


def test_a_missing_source_table_suggests_the_closest_table(tmp_path, sql, mysql_url, database):
    sql("CREATE TABLE customers (id INT PRIMARY KEY)")
    sql("CREATE TABLE orders (id INT PRIMARY KEY)")
    with pytest.raises(SourceError) as info:
        _plan(tmp_path, f"""\
            source: {{type: mysql, url: "{mysql_url}", table: Custmers}}
            destination: {{type: csv, path: out.csv}}
            """)
    assert str(info.value) == (f"table 'Custmers' not found in MySQL database {database} on "
                               "127.0.0.1:3306; did you mean 'customers'?")


def test_a_missing_source_table_with_nothing_close_lists_the_tables(tmp_path, sql, mysql_url):
    sql("CREATE TABLE orders (id INT PRIMARY KEY)")
    with pytest.raises(SourceError) as info:
        _plan(tmp_path, f"""\
            source: {{type: mysql, url: "{mysql_url}", table: invoices}}
            destination: {{type: csv, path: out.csv}}
            """)
    assert str(info.value).endswith("; it holds: orders")


def test_a_missing_destination_table_portl_may_not_create_suggests_the_closest(tmp_path, sql, mysql_url):
    sql("CREATE TABLE customers (id INT PRIMARY KEY)")
    (tmp_path / "in.csv").write_text("id\n1\n")
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, f"""\
            source: {{type: csv, path: in.csv}}
            destination: {{type: mysql, url: "{mysql_url}", table: customer}}
            mapping: {{create_missing_columns: false}}
            """)
    assert str(info.value).endswith("(did you mean 'customers'?)")
