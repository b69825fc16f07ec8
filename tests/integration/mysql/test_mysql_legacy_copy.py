"""A whole-database copy of a typical old MySQL schema (unsigned keys, legacy utf8 and latin1
tables, ENUM, SET, YEAR, BLOBs, TIMESTAMP with ON UPDATE, foreign keys) comes out value for value
in PostgreSQL, and its tables one by one in SQLite."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3

import psycopg
import pytest

import portl
from tests.integration.mysql.support import job_file

SCHEMA = [
    """CREATE TABLE customer (
      id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
      name varchar(40) NOT NULL,
      kind enum('retail','trade','vip') NOT NULL DEFAULT 'retail',
      since year(4) NOT NULL,
      last_seen datetime NULL,
      changed timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3""",
    """CREATE TABLE product (
      sku char(8) NOT NULL PRIMARY KEY,
      title varchar(60) NOT NULL,
      stock mediumint(8) unsigned NOT NULL,
      image mediumblob NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci""",
    """CREATE TABLE orders (
      id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
      customer_id int(10) unsigned NOT NULL,
      sku char(8) CHARACTER SET latin1 NOT NULL,
      qty smallint(5) unsigned NOT NULL,
      flags set('gift','rush','fragile') NOT NULL DEFAULT '',
      serial bigint(20) unsigned NOT NULL,
      receipt blob NULL,
      note text NULL,
      KEY orders_customer (customer_id),
      CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customer (id),
      CONSTRAINT fk_product FOREIGN KEY (sku) REFERENCES product (sku)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
]
ROWS = {
    "customer": [
        {"id": 1, "name": "Åse Ærø", "kind": "trade", "since": 1999, "last_seen": None,
         "changed": dt.datetime(2024, 1, 2, 3, 4, 5)},
        {"id": 4294967295, "name": "Zoë 李小龙", "kind": "vip", "since": 2155,
         "last_seen": dt.datetime(2024, 5, 6, 7, 8, 9), "changed": dt.datetime(2038, 1, 19, 3, 14, 7)},
    ],
    "product": [
        {"sku": "SKU-1", "title": "Café crème", "stock": 16777215, "image": b"\xff\xd8\xff\xe0" + b"\x00" * 70000},
        {"sku": "ÑANDÚ-2", "title": "Straße «1» €", "stock": 0, "image": None},
    ],
    "orders": [
        {"id": 1, "customer_id": 1, "sku": "SKU-1", "qty": 65535, "flags": "gift,rush",
         "serial": decimal.Decimal("18446744073709551615"), "receipt": b"\x00\xff\xfd", "note": "first 😀"},
        {"id": 2, "customer_id": 4294967295, "sku": "ÑANDÚ-2", "qty": 0, "flags": "",
         "serial": decimal.Decimal(0), "receipt": None, "note": None},
    ],
}


@pytest.fixture
def shop(sql):
    """The old schema with ROWS; customer 1's last_seen is a zero date (read as NULL)."""
    sql("SET SESSION sql_mode = '', time_zone = '+00:00'")
    for statement in SCHEMA:
        sql(statement)
    for table, rows in ROWS.items():
        for row in rows:
            values = dict(row, last_seen="0000-00-00 00:00:00") if row.get("id") == 1 and table == "customer" else row
            sql(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(row))})", tuple(values.values()))
    return ROWS


def run(tmp_path, source: str, destination: str, name: str = "copy") -> portl.RunReport:
    path = job_file(tmp_path, f"name: {name}\nsource: {source}\ndestination: {destination}\n", name)
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()


def test_an_old_schema_copies_whole_into_postgres_value_for_value(tmp_path, shop, mysql_url, pg_url):
    report = run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}")
    assert report.status == "succeeded"
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (6, 6, 0)
    assert any("1 zero date" in w and "last_seen" in w for w in report.warnings)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        for table, rows in shop.items():
            got = pg.execute(f"SELECT {', '.join(rows[0])} FROM {table} ORDER BY 1").fetchall()
            assert [dict(zip(rows[0], r)) for r in got] == sorted(rows, key=lambda r: list(r.values())[0]), table
        types = pg.execute("SELECT table_name, column_name, format_type(atttypid, atttypmod), is_nullable "
                           "FROM information_schema.columns JOIN pg_attribute ON attrelid = table_name::regclass "
                           "AND attname = column_name WHERE table_schema = 'public' AND table_name IN "
                           "('customer', 'product', 'orders')").fetchall()
        assert {(t, c): (ty, n) for t, c, ty, n in types} == {
            ("customer", "id"): ("bigint", "NO"), ("customer", "name"): ("character varying(40)", "NO"),
            ("customer", "kind"): ("text", "NO"), ("customer", "since"): ("integer", "NO"),
            ("customer", "last_seen"): ("timestamp without time zone", "YES"),
            ("customer", "changed"): ("timestamp without time zone", "NO"),
            ("product", "sku"): ("character varying(8)", "NO"), ("product", "title"): ("character varying(60)", "NO"),
            ("product", "stock"): ("integer", "NO"), ("product", "image"): ("bytea", "YES"),
            ("orders", "id"): ("bigint", "NO"), ("orders", "customer_id"): ("bigint", "NO"),
            ("orders", "sku"): ("character varying(8)", "NO"), ("orders", "qty"): ("integer", "NO"),
            ("orders", "flags"): ("text", "NO"), ("orders", "serial"): ("numeric(20,0)", "NO"),
            ("orders", "receipt"): ("bytea", "YES"), ("orders", "note"): ("text", "YES")}
        # The keys hold: a new customer takes the next number, an order for no customer is refused.
        assert pg.execute("INSERT INTO customer (name, since) VALUES ('new', 2024) RETURNING id, kind").fetchall() == [
            (4294967296, "retail")]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            pg.execute("INSERT INTO orders (customer_id, sku, qty, serial) VALUES (7, 'SKU-1', 1, 1)")


def test_the_tables_of_an_old_schema_copy_one_by_one_into_sqlite_value_for_value(tmp_path, shop, mysql_url):
    for table in shop:
        report = run(tmp_path, f"{{type: mysql, url: '{mysql_url}', table: {table}}}",
                     f"{{type: sqlite, path: out.db, table: {table}}}", name=table)
        assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (2, 2, 0)
        if table == "orders":  # SQLite's integers stop at 2^63-1: a bigint unsigned goes as a REAL, and the plan says so
            assert any("column serial: SQLite stores decimal(20,0) as a floating-point number" in w
                       for w in report.warnings)
    conn = sqlite3.connect(tmp_path / "out.db")
    try:
        for table, rows in shop.items():
            got = [dict(zip(rows[0], r)) for r in conn.execute(f"SELECT {', '.join(rows[0])} FROM {table} ORDER BY 1")]
            wanted = [{k: (v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime) else
                           float(v) if isinstance(v, decimal.Decimal) else v) for k, v in r.items()}
                      for r in sorted(rows, key=lambda r: list(r.values())[0])]
            assert got == wanted, table
    finally:
        conn.close()


# What the whole-database copy (engine/copy.py and the catalogs) does with what an old schema has
# and Postgres lacks; the reader reads each of these tables value for value
# (tests/integration/mysql/test_mysql_legacy_types.py).


def test_a_bigint_unsigned_auto_increment_key_copies_into_postgres(tmp_path, sql, mysql_url, pg_url):
    sql("CREATE TABLE post (id bigint(20) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, title varchar(20) NOT NULL) "
        "DEFAULT CHARSET=utf8mb3")
    sql("INSERT INTO post VALUES (1, 'one'), (41, 'forty-one')")
    report = run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}")
    assert report.status == "succeeded" and report.counts.inserted == 2
    with psycopg.connect(pg_url, autocommit=True) as pg:
        assert pg.execute("INSERT INTO post (title) VALUES ('next') RETURNING id").fetchall() == [(42,)]


def test_a_zero_date_default_does_not_stop_a_copy_into_postgres(tmp_path, sql, mysql_url, pg_url):
    sql("SET SESSION sql_mode = ''")
    sql("CREATE TABLE visit (id int unsigned NOT NULL PRIMARY KEY, seen datetime NOT NULL DEFAULT '0000-00-00 00:00:00')")
    sql("INSERT INTO visit VALUES (1, '2024-01-02 03:04:05')")
    report = run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}")
    assert report.status == "succeeded" and report.counts.inserted == 1
    assert ("the default '0000-00-00 00:00:00' of column seen of table visit is not copied: '0000-00-00 00:00:00' "
            "is MySQL's zero date, which is not a date") in report.warnings


def test_zero_dates_in_a_not_null_column_do_not_stop_a_copy_into_postgres(tmp_path, sql, mysql_url, pg_url):
    sql("SET SESSION sql_mode = ''")
    sql("CREATE TABLE visit (id int unsigned NOT NULL PRIMARY KEY, seen datetime NOT NULL)")
    sql("INSERT INTO visit VALUES (1, '0000-00-00 00:00:00'), (2, '2024-01-02 03:04:05')")
    report = run(tmp_path, f"{{type: mysql, url: '{mysql_url}', tables: '*'}}", f"{{type: postgres, url: '{pg_url}'}}")
    assert report.status == "succeeded" and report.counts.inserted == 2
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT id, seen FROM visit ORDER BY id").fetchall() == [
            (1, None), (2, dt.datetime(2024, 1, 2, 3, 4, 5))]
    assert ("column seen of table visit stays nullable: 1 row has NULL there, though the source declares it NOT NULL"
            in report.warnings)
