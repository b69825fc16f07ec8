"""A whole-database copy whose last step (keys, indexes, foreign keys, identity counters) stopped
partway finishes that step on ``--resume``: what the destination has is kept, and everything it
lacks, table by table and constraint by constraint, is added under the names the first run chose."""

from __future__ import annotations

import sqlite3

import pytest

import portl
from portl.connectors.mysql.sink import MysqlSink
from portl.connectors.postgres.catalog_sink import PostgresCatalogSink
from portl.errors import PortlError
from tests.integration.test_database_copy import Db

TARGETS = ["mysql", "postgres"]
SINKS = {"mysql": MysqlSink, "postgres": PostgresCatalogSink}

# Three tables, each foreign key named after its table and columns by the SQLite catalog.
SHOP = """
    CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
    CREATE INDEX customers_name ON customers (name);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
                         placed TEXT);
    CREATE INDEX orders_placed ON orders (placed);
    CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders (id), line_no INTEGER NOT NULL,
                              customer_id INTEGER REFERENCES customers (id), qty INTEGER,
                              PRIMARY KEY (order_id, line_no));
    INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob');
    INSERT INTO orders VALUES (10, 1, '2024-05-01'), (11, 2, '2024-05-02');
    INSERT INTO order_lines VALUES (10, 1, 1, 3), (10, 2, 1, 1), (11, 1, 2, 5);
"""

SHOP_FOREIGN_KEYS = {
    ("order_lines", "order_lines_customer_id_fkey", "customer_id", "customers", "id"),
    ("order_lines", "order_lines_order_id_fkey", "order_id", "orders", "id"),
    ("orders", "orders_customer_id_fkey", "customer_id", "customers", "id"),
}


def write_sqlite(path, script: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(script)  # SQLite does not check foreign keys unless asked to
    conn.commit()
    conn.close()


def write_job(tmp_path, source: str, destination: str) -> str:
    job = tmp_path / "copy.yaml"
    job.write_text(f"name: copy\nsource: {source}\ndestination: {destination}\n")
    return str(job)


def planned_ddl(job: str) -> list[str]:
    the_plan = portl.plan(portl.load_job(job))
    try:
        return list(the_plan.constraints)
    finally:
        the_plan.close()


def run(job: str, tmp_path, resume: bool = False) -> portl.RunReport:
    the_plan = portl.plan(portl.load_job(job))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), resume=resume))
    finally:
        the_plan.close()


def foreign_keys(target: Db) -> set[tuple[str, str, str, str, str]]:
    """(table, name, column, referenced table, referenced column) of every foreign key column."""
    schema = "current_schema()" if target.kind == "postgres" else "database()"
    if target.kind == "postgres":
        return set(target.all(
            "SELECT k.table_name, k.constraint_name, k.column_name, u.table_name, u.column_name "
            "FROM information_schema.referential_constraints r "
            "JOIN information_schema.key_column_usage k ON k.constraint_schema = r.constraint_schema "
            "AND k.constraint_name = r.constraint_name "
            "JOIN information_schema.key_column_usage u ON u.constraint_schema = r.unique_constraint_schema "
            "AND u.constraint_name = r.unique_constraint_name AND u.ordinal_position = k.position_in_unique_constraint "
            f"WHERE r.constraint_schema = {schema}"))
    return set(target.all(
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS r JOIN information_schema.KEY_COLUMN_USAGE k "
        "ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME "
        f"AND k.TABLE_NAME = r.TABLE_NAME WHERE r.CONSTRAINT_SCHEMA = {schema}"))


def primary_keys(target: Db) -> set[tuple[str, str]]:
    """(table, column) of every primary key column, Portl's own tables left out."""
    schema = "current_schema()" if target.kind == "postgres" else "database()"
    return set(target.all(
        "SELECT k.table_name, k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema "
        "AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name "
        f"WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = {schema} AND left(c.table_name, 6) <> '_portl'"))


def index_names(target: Db) -> set[tuple[str, str]]:
    """(table, index) of every index but primary keys, Portl's own tables left out."""
    if target.kind == "postgres":
        found = target.all("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' "
                           "AND right(indexname, 5) <> '_pkey' AND left(tablename, 6) <> '_portl'")
    else:
        found = target.all("SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS "
                           "WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME <> 'PRIMARY' AND LEFT(TABLE_NAME, 6) <> '_portl'")
    return set(found)


def adding(ddl: list[str]) -> list[str]:
    """The statements of a plan that would add something. A Postgres plan lists its indexes with
    IF NOT EXISTS and sets identity counters every time; where they are there, those change nothing."""
    return [s for s in ddl if "IF NOT EXISTS" not in s and "setval" not in s]


def target_url(request, kind: str) -> str:
    return request.getfixturevalue("pg_url" if kind == "postgres" else "mysql_url")


@pytest.mark.parametrize("target_kind", TARGETS)
def test_a_foreign_key_that_failed_is_added_when_the_copy_resumes(tmp_path, request, target_kind):
    # An order line points at order 99, which does not exist: its foreign key cannot be added.
    write_sqlite(tmp_path / "src.db", SHOP + "INSERT INTO order_lines VALUES (99, 1, 1, 1);")
    url = target_url(request, target_kind)
    job = write_job(tmp_path, "{type: sqlite, path: src.db, tables: '*'}", f"{{type: {target_kind}, url: '{url}'}}")

    with pytest.raises(PortlError, match="order_lines_order_id_fkey"):
        run(job, tmp_path)
    target = Db(target_kind, url)
    try:
        if target_kind == "mysql":  # each statement commits: the keys and the foreign key before stay
            assert len(primary_keys(target)) == 4
            assert foreign_keys(target) == {("order_lines", "order_lines_customer_id_fkey", "customer_id", "customers", "id")}
        else:  # the step is one transaction: nothing of it stays
            assert primary_keys(target) == set() and foreign_keys(target) == set()
        target.execute("DELETE FROM order_lines WHERE order_id = 99")  # the data fixed where it landed

        pending = planned_ddl(job)
        assert [s for s in pending if "order_lines_order_id_fkey" in s]
        report = run(job, tmp_path, resume=True)
        assert report.status == "succeeded" and report.resumed

        assert foreign_keys(target) == SHOP_FOREIGN_KEYS
        assert primary_keys(target) == {("customers", "id"), ("orders", "id"), ("order_lines", "order_id"),
                                        ("order_lines", "line_no")}
        assert {("customers", "customers_name"), ("orders", "orders_placed")} <= index_names(target)
        assert target.scalar("SELECT count(*) FROM order_lines") == 3
        assert adding(planned_ddl(job)) == []
    finally:
        target.close()


def pg_source(url: str) -> None:
    """Two tables with a foreign key named fk_customer each (MySQL wants the second renamed), an
    identity column and secondary indexes."""
    source = Db("postgres", url)
    source.script("""
        CREATE TABLE customers (id serial PRIMARY KEY, email varchar(100) NOT NULL UNIQUE, name text);
        CREATE INDEX customers_name ON customers (name);
        CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer NOT NULL
                                 CONSTRAINT fk_customer REFERENCES customers (id) ON DELETE CASCADE,
                             placed date);
        CREATE INDEX orders_placed ON orders (placed);
        CREATE TABLE visits (id integer PRIMARY KEY, customer_id integer CONSTRAINT fk_customer REFERENCES customers (id),
                             order_id integer CONSTRAINT fk_order REFERENCES orders (id));
        INSERT INTO customers (email, name) VALUES ('ann@example.com', 'Ann'), ('bob@example.com', 'Bob');
        INSERT INTO orders (customer_id, placed) VALUES (1, '2024-05-01'), (2, '2024-05-02'), (2, '2024-05-03');
        INSERT INTO visits VALUES (1, 1, 1), (2, 2, NULL)
    """)
    source.close()


def stop_after(sink_class, count_of: str, n: int, monkeypatch) -> None:
    """Make the constraint step stop, as a killed process would, once ``n`` statements
    containing ``count_of`` have run (each commits on its own)."""
    original = sink_class.execute_ddl

    def stopped(self, statements):
        if not any(count_of in statement for statement in statements):
            return original(self, statements)  # creating the tables, before the data
        done, seen = [], 0
        for statement in statements:
            done.append(statement)
            seen += count_of in statement
            if seen == n:
                break
        for statement in done:  # one by one, so that what ran stays even where the real step is one transaction
            original(self, [statement])
        raise PortlError("the constraint step was stopped")

    monkeypatch.setattr(sink_class, "execute_ddl", stopped)


STOPS = [("ALTER TABLE", 1), ("FOREIGN KEY", 1)]


@pytest.mark.parametrize("target_kind", TARGETS)
@pytest.mark.parametrize("count_of,n", STOPS, ids=["after-the-first-table", "after-the-first-foreign-key"])
def test_a_constraint_step_stopped_partway_adds_everything_missing_on_resume(tmp_path, request, monkeypatch,
                                                                             target_kind, count_of, n):
    pg_url = request.getfixturevalue("pg_url")
    pg_source(pg_url)
    url = target_url(request, target_kind) if target_kind == "mysql" else _second_pg_database(request)
    job = write_job(tmp_path, f"{{type: postgres, url: '{pg_url}', tables: '*'}}",
                    f"{{type: {target_kind}, url: '{url}'}}")
    first_plan = planned_ddl(job)

    # Postgres runs the step in one transaction, so it cannot really stop partway; here it does,
    # which is the harder case for the run that resumes.
    stop_after(SINKS[target_kind], count_of, n, monkeypatch)
    with pytest.raises(PortlError, match="stopped"):
        run(job, tmp_path)
    monkeypatch.undo()

    resumed_plan = planned_ddl(job)
    assert resumed_plan and len(resumed_plan) < len(first_plan)
    assert first_plan[0] not in resumed_plan  # the first table's keys are there; not added twice
    report = run(job, tmp_path, resume=True)
    assert report.status == "succeeded" and report.resumed

    target = Db(target_kind, url)
    try:
        second = "visits_fk_customer" if target_kind == "mysql" else "fk_customer"  # MySQL names them per database
        assert foreign_keys(target) == {
            ("orders", "fk_customer", "customer_id", "customers", "id"),
            ("visits", second, "customer_id", "customers", "id"),
            ("visits", "fk_order", "order_id", "orders", "id"),
        }
        assert primary_keys(target) == {("customers", "id"), ("orders", "id"), ("visits", "id")}
        assert {("customers", "customers_email_key"), ("customers", "customers_name"),
                ("orders", "orders_placed")} <= index_names(target)
        target.execute("INSERT INTO orders (customer_id) VALUES (1)")  # the identity counter goes on after the copy
        assert target.scalar("SELECT max(id) FROM orders") == 4
        with pytest.raises(Exception):  # and the foreign keys hold
            target.execute("INSERT INTO visits VALUES (3, 42, NULL)")
    finally:
        target.close()
    assert adding(planned_ddl(job)) == []  # nothing is missing any more


def _second_pg_database(request) -> str:
    """A second Postgres database for a Postgres to Postgres copy, dropped after the test."""
    import psycopg

    from tests.services import PG_ADMIN, unique_name

    name = unique_name()
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: (admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), admin.close()))
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name
