"""Whole-database copies: MySQL describes its tables, and receives keys, indexes, foreign keys
and AUTO_INCREMENT counters after the data."""

from __future__ import annotations

import decimal
import sqlite3

import pyarrow as pa
import pytest

import portl
from portl.connectors.base import ForeignKeyDef, IndexDef, TableDef
from portl.connectors.mysql import open_source
from portl.errors import SourceError
from tests.integration.mysql.support import job_file, read_all, run_job

SHOP = """
    CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, name TEXT,
                            country CHAR(2), KEY by_country (country)) ENGINE=InnoDB;
    CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2),
                         CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
                         ON DELETE CASCADE ON UPDATE RESTRICT) ENGINE=InnoDB;
    CREATE TABLE order_lines (order_id BIGINT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20),
                              PRIMARY KEY (order_id, line_no),
                              CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;
    INSERT INTO customers (email, name, country) VALUES ('a@x.io', 'Ann', 'NO'), ('b@x.io', 'Bob', NULL),
                                                       ('c@x.io', 'Zoë 😀', 'GB');
    INSERT INTO orders (customer_id, total) VALUES (1, 10.50), (1, 3.25), (3, 99.99);
    INSERT INTO order_lines VALUES (1, 1, 'A'), (1, 2, 'B'), (3, 1, NULL)
"""


@pytest.fixture
def shop(sql):
    for statement in SHOP.split(";"):
        sql(statement)


def catalog_of(config):
    return open_source(config(tables="*"), ".")


def test_tables_describes_columns_keys_indexes_foreign_keys_and_identity(shop, config):
    catalog = catalog_of(config)
    try:
        tables = {t.name: t for t in catalog.tables()}
    finally:
        catalog.close()
    assert sorted(tables) == ["customers", "order_lines", "orders"]
    customers = tables["customers"]
    assert [(f.name, str(f.type), f.nullable) for f in customers.schema] == [
        ("id", "int32", False), ("email", "string", False), ("name", "string", True), ("country", "string", True)]
    assert customers.primary_key == ("id",) and customers.identity == "id"
    assert set(customers.indexes) == {IndexDef("email", ("email",), True), IndexDef("by_country", ("country",), False)}
    orders = tables["orders"]
    assert orders.identity == "id" and orders.schema.field("id").type == pa.int64()
    assert orders.foreign_keys == (ForeignKeyDef("orders_customer", ("customer_id",), "customers", ("id",), "CASCADE", "RESTRICT"),)
    lines = tables["order_lines"]
    assert lines.primary_key == ("order_id", "line_no") and lines.identity is None
    assert lines.foreign_keys == (ForeignKeyDef("lines_order", ("order_id",), "orders", ("id",), "RESTRICT", "RESTRICT"),)


def test_tables_lists_only_the_named_tables_and_names_a_missing_one(shop, config):
    catalog = open_source(config(tables=["orders", "customers"]), ".")
    try:
        assert [t.name for t in catalog.tables()] == ["customers", "orders"]
    finally:
        catalog.close()
    catalog = open_source(config(tables=["orders", "invoices"]), ".")
    try:
        with pytest.raises(SourceError, match="table\\(s\\) invoices not found"):
            catalog.tables()
    finally:
        catalog.close()


def test_table_source_reads_one_table_of_the_catalog(shop, config):
    catalog = catalog_of(config)
    try:
        source = catalog.table_source("customers")
        try:
            assert [r["name"] for r in read_all(source)] == ["Ann", "Bob", "Zoë 😀"]
        finally:
            source.close()
    finally:
        catalog.close()


def test_constraint_ddl_adds_keys_indexes_foreign_keys_and_resumes_auto_increment(sql, sink, database):
    sql("CREATE TABLE parent (id INT, code LONGTEXT, label LONGTEXT)")
    sql("CREATE TABLE child (id INT, parent_id INT, parent_code LONGTEXT)")
    sql("INSERT INTO parent VALUES (1, 'p1', 'one'), (7, 'p7', 'seven')")
    sql("INSERT INTO child VALUES (1, 7, 'p7')")
    text = pa.string()
    parent = TableDef("parent", pa.schema([pa.field("id", pa.int32(), False), pa.field("code", text, False),
                                           pa.field("label", text)]),
                      ("id",), (IndexDef("parent_code", ("code",), True), IndexDef("parent_label", ("label",))),
                      identity="id")
    child = TableDef("child", pa.schema([pa.field("id", pa.int32(), False), pa.field("parent_id", pa.int32()),
                                         pa.field("parent_code", text)]), ("id",),
                     foreign_keys=(ForeignKeyDef("child_parent", ("parent_id",), "parent", ("id",), "CASCADE", "NO ACTION"),
                                   ForeignKeyDef("child_code", ("parent_code",), "parent", ("code",), "SET DEFAULT")))
    target = sink(None)
    statements = target.constraint_ddl([parent, child])
    assert statements[0] == (f"ALTER TABLE `{database}`.`parent` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL "
                             "AUTO_INCREMENT, MODIFY `code` VARCHAR(255) NOT NULL")
    assert f"CREATE INDEX `parent_label` ON `{database}`.`parent` (`label`(255))" in statements
    assert statements[-1].endswith("REFERENCES `%s`.`parent` (`code`) ON DELETE NO ACTION ON UPDATE NO ACTION" % database)
    target.execute_ddl(statements)
    target.execute_ddl(statements)  # run again after a failure: what is there already is skipped
    assert sorted(sql("SELECT TABLE_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS "
                      "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('parent', 'child')")) == [
        ("child", "FOREIGN KEY"), ("child", "FOREIGN KEY"), ("child", "PRIMARY KEY"),
        ("parent", "PRIMARY KEY"), ("parent", "UNIQUE")]
    sql("INSERT INTO parent (code) VALUES ('p8')")
    assert sql("SELECT id FROM parent WHERE code = 'p8'") == [(8,)]  # the counter starts after the largest id
    with pytest.raises(Exception, match="foreign key constraint fails"):
        sql("INSERT INTO child VALUES (2, 99, 'p1')")
    sql("DELETE FROM parent WHERE id = 7")
    assert sql("SELECT COUNT(*) FROM child") == [(0,)]  # ON DELETE CASCADE


def test_constraint_ddl_leaves_tables_that_already_have_keys_alone(sql, sink):
    sql("CREATE TABLE kept (id INT PRIMARY KEY)")
    kept = TableDef("kept", pa.schema([pa.field("id", pa.int32(), False)]), ("id",))
    assert sink(None).constraint_ddl([kept]) == []


def test_a_whole_mysql_database_copies_into_another_with_its_keys_and_counters(shop, mysql_url, other_database, tmp_path, sql):
    target_url = mysql_url.rsplit("/", 1)[0] + "/" + other_database
    path = job_file(tmp_path, f"""
        name: copy
        source: {{type: mysql, url: '{mysql_url}', tables: '*'}}
        destination: {{type: mariadb, url: '{target_url}'}}
        parallel: {{workers: 2}}
    """)
    report = run_job(path, tmp_path / "state")
    assert report.status == "succeeded" and report.counts.read == report.counts.inserted == 9
    copied = f"`{other_database}`"
    assert sql(f"SELECT id, email, name, country FROM {copied}.customers ORDER BY id") == [
        (1, "a@x.io", "Ann", "NO"), (2, "b@x.io", "Bob", None), (3, "c@x.io", "Zoë 😀", "GB")]
    assert sql(f"SELECT SUM(total) FROM {copied}.orders") == [(decimal.Decimal("113.74"),)]
    constraints = sql("SELECT TABLE_NAME, CONSTRAINT_TYPE, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS "
                      "WHERE TABLE_SCHEMA = %s AND TABLE_NAME NOT LIKE '\\_portl%%'", (other_database,))
    assert sorted(constraints) == [
        ("customers", "PRIMARY KEY", "PRIMARY"), ("customers", "UNIQUE", "email"),
        ("order_lines", "FOREIGN KEY", "lines_order"), ("order_lines", "PRIMARY KEY", "PRIMARY"),
        ("orders", "FOREIGN KEY", "orders_customer"), ("orders", "PRIMARY KEY", "PRIMARY")]
    sql(f"INSERT INTO {copied}.orders (customer_id, total) VALUES (2, 1.00)")
    assert sql(f"SELECT MAX(id) FROM {copied}.orders") == [(4,)]
    with pytest.raises(Exception, match="foreign key constraint fails"):
        sql(f"INSERT INTO {copied}.orders (customer_id) VALUES (42)")


def test_a_sqlite_database_with_text_keys_copies_into_mysql(tmp_path, mysql_url, sql):
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.executescript("""
        CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT, price DECIMAL(8,2));
        CREATE TABLE lines (id INTEGER PRIMARY KEY, sku TEXT REFERENCES products (sku), note TEXT);
        CREATE INDEX lines_note ON lines (note);
        INSERT INTO products VALUES ('SKU-1', 'One', '1.50'), ('SKU-2', 'Two', '2.25');
        INSERT INTO lines VALUES (10, 'SKU-1', 'first'), (11, 'SKU-2', NULL), (12, NULL, '');
    """)
    conn.commit()
    conn.close()
    path = job_file(tmp_path, f"""
        name: lite
        source: {{type: sqlite, path: src.db, tables: '*'}}
        destination: {{type: mysql, url: '{mysql_url}'}}
    """)
    the_plan = portl.plan(portl.load_job(path))
    try:
        assert any("MODIFY `sku` VARCHAR(255) NOT NULL" in s for s in the_plan.constraints)
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    assert report.counts.inserted == 5
    assert sql("SELECT sku, title, price FROM products ORDER BY sku") == [("SKU-1", "One", decimal.Decimal("1.50")),
                                                                         ("SKU-2", "Two", decimal.Decimal("2.25"))]
    assert sql("SELECT id, sku, note FROM `lines` ORDER BY id") == [(10, "SKU-1", "first"), (11, "SKU-2", None), (12, None, "")]
    sql("INSERT INTO `lines` (sku) VALUES ('SKU-2')")
    assert sql("SELECT MAX(id) FROM `lines`") == [(13,)]
