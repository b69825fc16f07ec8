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
from portl.connectors.postgres.index_names import shortened

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


# --- index names: per table in MySQL, per schema in Postgres ------------------------------------

LONG_TABLE = "customer_loyalty_programme_membership_history_by_region"  # 55 characters
LONG_INDEX = "idx_loyalty_programme_membership_history_by_region_and_tier_name"  # 64, MySQL's longest


def plan_and_run(tmp_path, source: str, destination: str, name: str = "copy"):
    """Plan a whole-database copy, run it, and return (the plan's DDL after the data, its
    warnings, the run report)."""
    job = tmp_path / f"{name}.yaml"
    job.write_text(f"name: {name}\nsource: {source}\ndestination: {destination}\n")
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        ddl, warnings = list(the_plan.constraints), list(the_plan.warnings)
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    return ddl, warnings, report


def planned_constraints(tmp_path, source: str, destination: str) -> list[str]:
    job = tmp_path / "again.yaml"
    job.write_text(f"name: again\nsource: {source}\ndestination: {destination}\n")
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        return list(the_plan.constraints)
    finally:
        the_plan.close()


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_indexes(target: Db) -> dict[str, tuple[str, str]]:
    """Every index of the public schema: name -> (table, definition)."""
    return {name: (table, definition) for name, table, definition in target.all(
        "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND left(tablename, 6) <> '_portl'")}


def test_mysql_indexes_sharing_a_name_arrive_in_postgres_under_unique_readable_names(tmp_path, mysql_url, pg_url):
    source = Db("mysql", mysql_url)
    source.script(f"""
        CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(100), tier VARCHAR(10));
        CREATE INDEX idx_name ON customers (name);
        CREATE UNIQUE INDEX {LONG_INDEX} ON customers (email, tier);
        CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, name VARCHAR(50));
        CREATE INDEX idx_name ON orders (customer_id, name);
        CREATE TABLE {LONG_TABLE} (id INT PRIMARY KEY, name VARCHAR(50));
        CREATE INDEX idx_name ON {LONG_TABLE} (name);
        INSERT INTO customers VALUES (1, 'ann', 'ann@example.com', 'gold'), (2, 'bob', 'bob@example.com', 'gold');
        INSERT INTO orders VALUES (10, 1, 'first'), (11, 2, 'second');
        INSERT INTO {LONG_TABLE} VALUES (1, 'north')
    """)
    source.close()
    src, dst = f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}"
    ddl, warnings, report = plan_and_run(tmp_path, src, dst)

    long_renamed = shortened(LONG_TABLE, "idx_name")  # too long: cut, the longer part first, and a hash added
    assert len(long_renamed.encode()) == 63
    assert long_renamed.startswith("customer_loyalty_programme_membership_history_idx_name_")
    expected = {
        "customers_idx_name": ("customers", "(name)"),
        "orders_idx_name": ("orders", "(customer_id, name)"),
        long_renamed: (LONG_TABLE, "(name)"),
        shortened(LONG_INDEX): ("customers", "(email, tier)"),  # unique, but longer than 63 bytes
    }
    for name in expected:
        assert any(f"INDEX IF NOT EXISTS {quoted(name)} ON" in statement for statement in ddl), "\n".join(ddl)
    renames = [w for w in warnings if " is created as " in w]
    assert sorted(renames) == sorted([
        "index idx_name of table customers is created as customers_idx_name: Postgres names indexes per schema, and "
        f"idx_name is also the name of an index of table {LONG_TABLE}, an index of table orders",
        "index idx_name of table orders is created as orders_idx_name: Postgres names indexes per schema, and "
        f"idx_name is also the name of an index of table {LONG_TABLE}, an index of table customers",
        f"index idx_name of table {LONG_TABLE} is created as {long_renamed}: Postgres names indexes per schema, and "
        "idx_name is also the name of an index of table customers, an index of table orders",
        f"index {LONG_INDEX} of table customers is created as {shortened(LONG_INDEX)}: {LONG_INDEX} is longer than "
        "the 63 bytes Postgres allows in a name",
    ])
    assert report.status == "succeeded" and set(renames) <= set(report.warnings)

    target = Db("postgres", pg_url)
    try:
        found = pg_indexes(target)
        for name, (table, columns) in expected.items():
            assert found[name][0] == table and found[name][1].endswith(columns), (name, found.get(name))
        assert "UNIQUE" in found[shortened(LONG_INDEX)][1]
        assert "idx_name" not in found
        assert {n for n in found if n.endswith("_pkey")} == {"customers_pkey", "orders_pkey", f"{LONG_TABLE}_pkey"}
    finally:
        target.close()
    # Planned again, the copy names every index the same way, and takes the indexes there as its own.
    again = [s for s in planned_constraints(tmp_path, src, dst) if " INDEX " in s]
    assert again == [s for s in ddl if " INDEX " in s]


def test_an_index_named_like_another_tables_primary_key_leaves_the_key_its_name(tmp_path, mysql_url, pg_url):
    source = Db("mysql", mysql_url)
    source.script("""
        CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50));
        CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT);
        CREATE INDEX customers_pkey ON orders (customer_id);
        INSERT INTO customers VALUES (1, 'ann');
        INSERT INTO orders VALUES (10, 1)
    """)
    source.close()
    ddl, warnings, report = plan_and_run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}",
                                         f"{{type: postgres, url: '{pg_url}'}}")
    assert 'ALTER TABLE "public"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("id")' in ddl
    assert ("index customers_pkey of table orders is created as orders_customers_pkey: Postgres names indexes per "
            "schema, and customers_pkey is also the name of the primary key of table customers") in warnings
    assert report.status == "succeeded"
    target = Db("postgres", pg_url)
    try:
        found = pg_indexes(target)
        assert found["customers_pkey"][0] == "customers" and "UNIQUE" in found["customers_pkey"][1]
        assert found["orders_customers_pkey"][0] == "orders" and found["orders_customers_pkey"][1].endswith("(customer_id)")
    finally:
        target.close()


def test_an_index_name_taken_in_the_destination_schema_is_not_skipped(tmp_path, mysql_url, pg_url):
    source = Db("mysql", mysql_url)
    source.script("""
        CREATE TABLE orders (id INT PRIMARY KEY, placed DATE);
        CREATE INDEX idx_placed ON orders (placed);
        INSERT INTO orders VALUES (1, '2024-05-01')
    """)
    source.close()
    target = Db("postgres", pg_url)
    target.execute("CREATE TABLE unrelated (placed date)")
    target.execute("CREATE INDEX idx_placed ON unrelated (placed)")
    try:
        _ddl, warnings, report = plan_and_run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}",
                                              f"{{type: postgres, url: '{pg_url}'}}")
        assert report.status == "succeeded"
        assert ("index idx_placed of table orders is created as orders_idx_placed: schema public already has an "
                "index idx_placed on table unrelated") in warnings
        found = pg_indexes(target)
        assert found["orders_idx_placed"][0] == "orders" and found["idx_placed"][0] == "unrelated"
    finally:
        target.close()


def test_a_sqlite_copy_into_postgres_keeps_its_index_names(tmp_path, pg_url):
    # SQLite, like Postgres, names indexes per database: nothing can collide, nothing is renamed.
    source = Db("sqlite", str(tmp_path / "src.db"))
    source.script("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE);
        CREATE INDEX customers_by_name ON customers (name);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id), name TEXT);
        CREATE INDEX orders_by_name ON orders (customer_id, name);
        INSERT INTO customers VALUES (1, 'ann', 'ann@example.com');
        INSERT INTO orders VALUES (10, 1, 'first')
    """)
    source.close()
    _ddl, warnings, report = plan_and_run(tmp_path, "{type: sqlite, path: src.db, tables: '*'}",
                                          f"{{type: postgres, url: '{pg_url}'}}")
    assert report.status == "succeeded"
    assert not [w for w in warnings + report.warnings if " is created as " in w]
    target = Db("postgres", pg_url)
    try:
        assert set(pg_indexes(target)) == {"customers_pkey", "customers_email_key", "customers_by_name", "orders_pkey",
                                           "orders_by_name"}
        assert target.all("SELECT conname FROM pg_constraint WHERE contype = 'f'") == [("orders_customer_id_fkey",)]
    finally:
        target.close()


def test_a_postgres_copy_into_mysql_keeps_its_index_names(tmp_path, pg_url, mysql_url):
    # MySQL names indexes per table: the names Postgres made unique per schema stay unique.
    source = Db("postgres", pg_url)
    source.script("""
        CREATE TABLE customers (id integer PRIMARY KEY, name text, email varchar(100) UNIQUE);
        CREATE INDEX customers_by_name ON customers (name);
        CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer CONSTRAINT orders_customer_fk REFERENCES customers (id),
                             name varchar(50));
        CREATE INDEX orders_by_name ON orders (customer_id, name);
        INSERT INTO customers VALUES (1, 'ann', 'ann@example.com');
        INSERT INTO orders VALUES (10, 1, 'first')
    """)
    source.close()
    _ddl, warnings, report = plan_and_run(tmp_path, f"{{type: postgres, url: '{pg_url}', tables: '*'}}",
                                          f"{{type: mysql, url: '{mysql_url}'}}")
    assert report.status == "succeeded"
    assert not [w for w in warnings + report.warnings if " is created as " in w]
    target = Db("mysql", mysql_url)
    try:
        found = set(target.all("SELECT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS "
                               "WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, 6) <> '_portl'"))
        assert found == {("customers", "PRIMARY"), ("customers", "customers_email_key"), ("customers", "customers_by_name"),
                         ("orders", "PRIMARY"), ("orders", "orders_by_name")}  # the foreign key uses orders_by_name
        assert target.all("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                          "WHERE CONSTRAINT_SCHEMA = DATABASE()") == (("orders_customer_fk",),)
    finally:
        target.close()


def test_foreign_key_names_postgres_repeats_across_tables_are_made_unique_in_mysql(tmp_path, pg_url, mysql_url):
    # Postgres names foreign keys per table, MySQL per database: the second fk_parent and the
    # name the destination has already would otherwise fail as "already there" and be skipped.
    source = Db("postgres", pg_url)
    source.script("""
        CREATE TABLE parent (id integer PRIMARY KEY);
        CREATE TABLE a (id integer PRIMARY KEY, parent_id integer CONSTRAINT fk_parent REFERENCES parent (id));
        CREATE TABLE b (id integer PRIMARY KEY, parent_id integer CONSTRAINT fk_parent REFERENCES parent (id),
                        owner_id integer CONSTRAINT fk_owner REFERENCES parent (id));
        INSERT INTO parent VALUES (1);
        INSERT INTO a VALUES (1, 1);
        INSERT INTO b VALUES (1, 1, 1)
    """)
    source.close()
    target = Db("mysql", mysql_url)
    target.script("""
        CREATE TABLE owners (id INT PRIMARY KEY) ENGINE=InnoDB;
        CREATE TABLE pets (id INT PRIMARY KEY, owner_id INT, CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES owners (id))
            ENGINE=InnoDB
    """)
    try:
        _ddl, warnings, report = plan_and_run(tmp_path, f"{{type: postgres, url: '{pg_url}', tables: [parent, a, b]}}",
                                              f"{{type: mysql, url: '{mysql_url}'}}")
        assert report.status == "succeeded"
        assert sorted(w for w in warnings if " is created as " in w) == [
            "foreign key fk_owner of table b is created as b_fk_owner: the database has a foreign key fk_owner already, "
            "and MySQL names foreign keys per database",
            "foreign key fk_parent of table b is created as b_fk_parent: table a has a foreign key fk_parent too, and "
            "MySQL names foreign keys per database",
        ]
        found = set(target.all("SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                               "WHERE CONSTRAINT_SCHEMA = DATABASE()"))
        assert found == {("pets", "fk_owner"), ("a", "fk_parent"), ("b", "b_fk_parent"), ("b", "b_fk_owner")}
    finally:
        target.close()


def test_a_mysql_foreign_key_name_too_long_for_postgres_is_shortened_once(tmp_path, mysql_url, pg_url):
    long_fk = "fk_order_lines_reference_the_order_they_belong_to_by_its_order_id"[:64]
    source = Db("mysql", mysql_url)
    source.script(f"""
        CREATE TABLE orders (id INT PRIMARY KEY) ENGINE=InnoDB;
        CREATE TABLE order_lines (id INT PRIMARY KEY, order_id INT,
                                  CONSTRAINT {long_fk} FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;
        INSERT INTO orders VALUES (1);
        INSERT INTO order_lines VALUES (1, 1)
    """)
    source.close()
    src, dst = f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}"
    ddl, warnings, report = plan_and_run(tmp_path, src, dst)
    assert report.status == "succeeded"
    assert (f"foreign key {long_fk} of table order_lines is created as {shortened(long_fk)}: {long_fk} is longer than "
            "the 63 bytes Postgres allows in a name") in warnings
    target = Db("postgres", pg_url)
    try:
        assert target.all("SELECT conname FROM pg_constraint WHERE contype = 'f'") == [(shortened(long_fk),)]
    finally:
        target.close()
    # Planned again, the copy finds its foreign key under the shortened name and adds none.
    assert not [s for s in planned_constraints(tmp_path, src, dst) if "FOREIGN KEY" in s]
    assert any("FOREIGN KEY" in s for s in ddl)
