"""Did-you-mean hints for a table that does not exist."""

import sqlite3
import textwrap

import pytest

import portl
from portl.connectors.closest import closest, table_hint
from portl.errors import ConfigError, SourceError


def test_the_closest_names_come_first_whatever_their_case():
    assert closest("custmers", ["orders", "Customers", "customer_notes"]) == ["Customers", "customer_notes"]


def test_a_hint_names_the_close_tables_else_lists_those_there_are():
    assert table_hint("custmers", ["customers", "orders"]) == "; did you mean 'customers'?"
    assert table_hint("zzz", ["orders", "customers"], "the database") == "; the database holds: customers, orders"
    assert table_hint("zzz", [], "the database") == "; the database holds no tables"
    many = [f"t{i:02}" for i in range(12)]
    assert table_hint("zzz", many).endswith("t06, t07 and 4 more")


@pytest.fixture
def database(tmp_path):
    conn = sqlite3.connect(tmp_path / "shop.db")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE _portl_checkpoints (run_id TEXT)")
    conn.commit()
    conn.close()
    (tmp_path / "in.csv").write_text("id,name\n1,a\n")
    return tmp_path


def _plan_error(folder, body: str) -> Exception:
    path = folder / "job.yaml"
    path.write_text(textwrap.dedent(body))
    with pytest.raises((SourceError, ConfigError)) as info:
        portl.plan(portl.load_job(str(path))).close()
    return info.value


def test_a_missing_sqlite_source_table_suggests_the_closest_one(database):
    error = _plan_error(database, """\
        source: {type: sqlite, path: shop.db, table: custmers}
        destination: {type: csv, path: out.csv}
        """)
    assert isinstance(error, SourceError)
    assert str(error) == f"table 'custmers' not found in SQLite database {database}/shop.db; did you mean 'customers'?"


def test_a_missing_sqlite_source_table_with_no_close_name_lists_the_tables_but_not_portls(database):
    error = _plan_error(database, """\
        source: {type: sqlite, path: shop.db, table: invoices}
        destination: {type: csv, path: out.csv}
        """)
    assert str(error).endswith("; the database holds: customers, orders")


def test_a_missing_sqlite_destination_table_that_portl_may_not_create_suggests_the_closest_one(database):
    error = _plan_error(database, """\
        source: {type: csv, path: in.csv}
        destination: {type: sqlite, path: shop.db, table: Customer}
        mapping: {create_missing_columns: false}
        """)
    assert isinstance(error, ConfigError)
    assert str(error).endswith("set create_missing_columns: true to let Portl create it (did you mean 'customers'?)")
