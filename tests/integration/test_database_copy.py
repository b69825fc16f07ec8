"""Whole-database copies between real servers: tables, data, keys, indexes, foreign keys and
identity counters all arrive, as pgloader would leave them."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import textwrap
from urllib.parse import urlparse

import pytest

import portl

LONG = "lorem ipsum dolor sit amet " * 4000  # ~108 KB
NAMES = ["Zoë Ñandú", "李小龙", "Emoji 😀 Person", "O'Brien \"Quote\"", "plain"]

DDL = {
    "sqlite": """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, name TEXT,
                                country CHAR(2), created_at TIMESTAMP);
        CREATE TABLE products (sku VARCHAR(32) PRIMARY KEY, title TEXT, price DECIMAL(10,2) NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
                             placed_at TIMESTAMP, note TEXT);
        CREATE INDEX orders_customer ON orders (customer_id);
        CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders (id), line_no INTEGER NOT NULL,
                                  sku VARCHAR(32) REFERENCES products (sku), qty INTEGER, amount DECIMAL(12,2),
                                  PRIMARY KEY (order_id, line_no));
    """,
    "postgres": """
        CREATE TABLE customers (id serial PRIMARY KEY, email varchar(200) NOT NULL UNIQUE, name text,
                                country char(2), created_at timestamp);
        CREATE TABLE products (sku varchar(32) PRIMARY KEY, title text, price numeric(10,2) NOT NULL);
        CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
                             placed_at timestamp, note text);
        CREATE INDEX orders_customer ON orders (customer_id);
        CREATE TABLE order_lines (order_id integer NOT NULL REFERENCES orders (id), line_no integer NOT NULL,
                                  sku varchar(32) REFERENCES products (sku), qty integer, amount numeric(12,2),
                                  PRIMARY KEY (order_id, line_no));
    """,
    "mysql": """
        CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, name TEXT,
                                country CHAR(2), created_at DATETIME(6)) ENGINE=InnoDB;
        CREATE TABLE products (sku VARCHAR(32) PRIMARY KEY, title TEXT, price DECIMAL(10,2) NOT NULL) ENGINE=InnoDB;
        CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, placed_at DATETIME(6), note LONGTEXT,
                             CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE) ENGINE=InnoDB;
        CREATE INDEX orders_customer ON orders (customer_id);
        CREATE TABLE order_lines (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(32), qty INT, amount DECIMAL(12,2),
                                  PRIMARY KEY (order_id, line_no),
                                  FOREIGN KEY (order_id) REFERENCES orders (id), FOREIGN KEY (sku) REFERENCES products (sku)) ENGINE=InnoDB;
    """,
}


def rows():
    base = dt.datetime(2024, 5, 1, 12, 30, 15, 123456)
    customers = [(i, f"user{i}@example.com", NAMES[i % len(NAMES)], None if i % 7 == 0 else "GB",
                  base + dt.timedelta(days=i, microseconds=i)) for i in range(1, 41)]
    products = [(f"SKU-{n:03d}", f"Product {n} ✓", decimal.Decimal(f"{n * 3}.{n % 100:02d}")) for n in range(1, 11)]
    orders = [(i, (i % 40) + 1, base + dt.timedelta(hours=i), LONG if i == 3 else ("" if i % 5 == 0 else None if i % 2 else f"note {i}"))
              for i in range(1, 61)]
    lines = [(o, n, f"SKU-{(o + n) % 10 + 1:03d}", n, decimal.Decimal(f"{o * n}.{(o + n) % 100:02d}"))
             for o in range(1, 61) for n in range(1, 4)]
    return {"customers": customers, "products": products, "orders": orders, "order_lines": lines}


class Db:
    """A tiny driver-neutral handle on one test database."""

    def __init__(self, kind: str, location: str):
        self.kind, self.location = kind, location
        if kind == "sqlite":
            sqlite3.register_adapter(decimal.Decimal, str)
            self.conn = sqlite3.connect(location)
            self.mark = "?"
        elif kind == "postgres":
            import psycopg

            self.conn = psycopg.connect(location, autocommit=True)
            self.mark = "%s"
        else:
            import pymysql

            u = urlparse(location)
            self.conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root", password="",
                                        database=u.path.lstrip("/"), autocommit=True, charset="utf8mb4")
            self.mark = "%s"

    def script(self, text: str) -> None:
        for statement in [s.strip() for s in textwrap.dedent(text).split(";") if s.strip()]:
            self.execute(statement)
        if self.kind == "sqlite":
            self.conn.commit()

    def execute(self, sql: str, params=()):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur

    def fill(self) -> None:
        for table, data in rows().items():
            marks = ", ".join([self.mark] * len(data[0]))
            self.conn.cursor().executemany(f"INSERT INTO {table} VALUES ({marks})", data)
        if self.kind == "sqlite":
            self.conn.commit()

    def all(self, sql: str):
        return self.execute(sql).fetchall()

    def scalar(self, sql: str):
        return self.all(sql)[0][0]

    def constraint_count(self, kind: str) -> int:
        schema = "current_schema()" if self.kind == "postgres" else "database()"
        return self.scalar(f"SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = {schema} "
                           f"AND constraint_type = '{kind}' AND left(table_name, 6) <> '_portl'")

    def close(self) -> None:
        self.conn.close()


def source_yaml(kind: str, location: str) -> str:
    if kind == "sqlite":
        return "{type: sqlite, path: src.db, tables: '*'}"
    return f"{{type: {kind}, url: '{location}', tables: '*'}}"


def destination_yaml(kind: str, location: str) -> str:
    return f"{{type: {kind}, url: '{location}'}}"


PAIRS = [("sqlite", "postgres"), ("sqlite", "mysql"), ("postgres", "postgres"), ("mysql", "postgres"), ("postgres", "mysql")]


@pytest.mark.parametrize("source_kind,target_kind", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_a_whole_database_arrives_with_its_keys_indexes_and_counters(tmp_path, request, source_kind, target_kind):
    if source_kind == "sqlite":
        source_location = str(tmp_path / "src.db")
    else:
        source_location = request.getfixturevalue("pg_url" if source_kind == "postgres" else "mysql_url")
    if target_kind == source_kind:  # postgres -> postgres: a second database
        import psycopg

        from tests.services import PG_ADMIN, unique_name

        name = unique_name()
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        request.addfinalizer(lambda: (admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), admin.close()))
        target_location = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        target_location = request.getfixturevalue("pg_url" if target_kind == "postgres" else "mysql_url")

    source = Db(source_kind, source_location)
    source.script(DDL[source_kind])
    source.fill()
    source.close()

    job = tmp_path / "copy.yaml"
    job.write_text(f"name: copy\nsource: {source_yaml(source_kind, source_location)}\n"
                   f"destination: {destination_yaml(target_kind, target_location)}\nparallel: {{workers: 2}}\n")
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        ddl = "\n".join(the_plan.constraints)
        assert "FOREIGN KEY" in ddl.upper() and "PRIMARY KEY" in ddl.upper()
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    expected = rows()
    assert report.status == "succeeded"
    assert report.counts.read == report.counts.inserted == sum(len(v) for v in expected.values())

    target = Db(target_kind, target_location)
    try:
        for table, data in expected.items():
            assert target.scalar(f"SELECT count(*) FROM {table}") == len(data), table
        names = {r[0] for r in target.all("SELECT name FROM customers")}
        assert set(NAMES) <= names
        assert target.scalar("SELECT sum(amount) FROM order_lines") == sum(r[4] for r in expected["order_lines"])
        notes = dict(target.all("SELECT id, note FROM orders"))
        assert len(notes[3]) == len(LONG) and notes[5] == "" and notes[1] is None and notes[2] == "note 2"
        stamp = target.scalar("SELECT created_at FROM customers WHERE id = 2")
        assert stamp == expected["customers"][1][4]
        assert target.constraint_count("PRIMARY KEY") == 4
        assert target.constraint_count("FOREIGN KEY") == 3
        with pytest.raises(Exception):  # the foreign key is enforced
            target.execute("INSERT INTO orders (id, customer_id) VALUES (9999, 123456)")
        target.execute("INSERT INTO customers (email) VALUES ('new@example.com')")
        assert target.scalar("SELECT id FROM customers WHERE email = 'new@example.com'") == 41
    finally:
        target.close()
