"""The column types of a typical old MySQL schema (unsigned integers at their maxima, YEAR, ENUM,
SET, the BLOB family, TIMESTAMP with ON UPDATE, zero dates, ZEROFILL, legacy utf8) are read value
for value, by the source and into PostgreSQL and SQLite, and each destination gets a column type
that holds them."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3

import psycopg
import pytest

import portl
from tests.integration.mysql.support import job_file, read_all

LEGACY = """CREATE TABLE legacy (
  id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  tiny tinyint(3) unsigned NOT NULL DEFAULT 0,
  small smallint(5) unsigned NOT NULL,
  medium mediumint(8) unsigned NOT NULL,
  regular int(10) unsigned NOT NULL,
  big bigint(20) unsigned NOT NULL,
  padded int(5) unsigned zerofill NULL,
  flag tinyint(1) NOT NULL DEFAULT 0,
  made year(4) NOT NULL,
  retired year NULL,
  status enum('new','paid','shipped','') NOT NULL DEFAULT 'new',
  tags set('red','green','blue') NOT NULL DEFAULT '',
  photo blob NULL,
  thumb tinyblob NOT NULL,
  scan mediumblob NULL,
  archive longblob NULL,
  price decimal(10,2) unsigned NOT NULL,
  ratio float unsigned NULL,
  born date NULL,
  seen datetime NULL,
  created timestamp NOT NULL DEFAULT current_timestamp(),
  changed timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  span time NULL,
  code char(4) NOT NULL,
  notes text NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3"""

# Each type at its maximum, at its minimum (zero dates where a permissive sql_mode lets them in),
# and a row of NULLs where the columns allow them.
ROWS = [
    {"id": 1, "tiny": 0, "small": 0, "medium": 0, "regular": 0, "big": decimal.Decimal(0), "padded": 0,
     "flag": False, "made": 0, "retired": 1901, "status": "", "tags": "", "photo": b"", "thumb": b"", "scan": b"",
     "archive": b"", "price": decimal.Decimal("0.00"), "ratio": 0.0, "born": "0000-00-00",
     "seen": "0000-00-00 00:00:00", "created": "0000-00-00 00:00:00", "changed": "1970-01-01 00:00:01",
     "span": "-838:59:59", "code": "", "notes": ""},
    {"id": 2, "tiny": 7, "small": 300, "medium": 70000, "regular": 3000000000, "big": decimal.Decimal(2**63),
     "padded": None, "flag": True, "made": 1999, "retired": None, "status": "paid", "tags": "red", "photo": None,
     "thumb": b"\xfd", "scan": None, "archive": None, "price": decimal.Decimal("12.50"), "ratio": None,
     "born": "2024-05-00", "seen": "2024-00-00 10:00:00", "created": "2024-02-29 12:00:00",
     "changed": "2024-03-01 08:30:00", "span": None, "code": "AB", "notes": "Grüße, Åse"},
    {"id": 4294967295, "tiny": 255, "small": 65535, "medium": 16777215, "regular": 4294967295,
     "big": decimal.Decimal("18446744073709551615"), "padded": 99999, "flag": True, "made": 2155, "retired": 2155,
     "status": "shipped", "tags": "red,green,blue", "photo": b"\x00\xff" * 100, "thumb": bytes(range(255)),
     "scan": b"\xfe" * 70000, "archive": b"\x00", "price": decimal.Decimal("99999999.99"), "ratio": 1.5,
     "born": "9999-12-31", "seen": "9999-12-31 23:59:59", "created": "2038-01-19 03:14:07",
     "changed": "2038-01-19 03:14:07", "span": "838:59:59", "code": "ZZZZ", "notes": "李小龙 ✓"},
]
DATES = ("born",)
TIMES = ("seen", "created", "changed")
ZERO = {"born": 2, "seen": 2, "created": 1}  # zero dates per column in ROWS


def read_back(row: dict) -> dict:
    """A row of ROWS as Portl reads it: dates as dates, zero dates as NULL."""
    out = dict(row)
    for name in DATES + TIMES:
        text = row[name]
        if text is None or text.startswith("0000") or "-00" in text:
            out[name] = None
        elif name in DATES:
            out[name] = dt.date.fromisoformat(text)
        else:
            out[name] = dt.datetime.fromisoformat(text)
    return out


EXPECTED = [read_back(r) for r in ROWS]
WARNINGS = [f"{n} zero date{'s' if n > 1 else ''} (such as 0000-00-00) became NULL in column {c}"
            for c, n in ZERO.items()]


@pytest.fixture
def legacy(sql):
    """Table ``legacy`` holding ROWS, inserted in UTC under a permissive sql_mode, as old data was."""
    sql("SET SESSION sql_mode = '', time_zone = '+00:00'")
    sql(LEGACY)
    for row in ROWS:
        sql(f"INSERT INTO legacy VALUES ({', '.join(['%s'] * len(row))})", tuple(row.values()))
    sql("UPDATE legacy SET changed = '2024-03-01 08:30:00' WHERE id = 2")  # ON UPDATE would set it to now
    return EXPECTED


def copy_job(tmp_path, mysql_url: str, destination: str, source: str = "table: legacy") -> tuple[portl.RunReport, bool]:
    """Run a job from the test's MySQL database; returns its report and whether it went the verbatim way."""
    path = job_file(tmp_path, f"name: copy\nsource: {{type: mysql, url: '{mysql_url}', {source}}}\n"
                              f"destination: {destination}\nbatch: {{size: 2}}\n")
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"))), the_plan.verbatim is not None
    finally:
        the_plan.close()


def test_the_rows_keep_the_timestamps_they_were_given_despite_on_update(legacy, sql):
    assert sql("SELECT CAST(changed AS CHAR) FROM legacy ORDER BY id") == [
        ("1970-01-01 00:00:01",), ("2024-03-01 08:30:00",), ("2038-01-19 03:14:07",)]


def test_legacy_types_read_as_the_documented_logical_types(legacy, source):
    from portl.types import logical_of

    s = source(table="legacy")
    assert {f.name: str(logical_of(f)) for f in s.schema()} == {
        "id": "bigint", "tiny": "int", "small": "int", "medium": "int", "regular": "bigint", "big": "decimal(20,0)",
        "padded": "bigint", "flag": "bool", "made": "int", "retired": "int", "status": "text", "tags": "text",
        "photo": "bytes", "thumb": "bytes", "scan": "bytes", "archive": "bytes", "price": "decimal(10,2)",
        "ratio": "float", "born": "date", "seen": "timestamp", "created": "timestamp", "changed": "timestamp",
        "span": "text", "code": "text", "notes": "text"}
    assert s.key == "id"


@pytest.mark.parametrize("how", ["table", "query"])
def test_legacy_types_are_read_value_for_value_at_their_limits(legacy, source, how):
    s = source(table="legacy") if how == "table" else source(query="SELECT * FROM legacy ORDER BY id")
    assert read_all(s, batch_rows=2) == legacy
    assert s.warnings() == WARNINGS


def test_partitions_of_an_unsigned_key_up_to_its_maximum_read_each_row_once(legacy, source):
    s = source(table="legacy")
    parts = s.partitions(3)
    assert len(parts) == 3
    ids = [r["id"] for part in parts for chunk in s.read(1, part) for r in chunk.data.to_pylist()]
    assert ids == [1, 2, 4294967295]


def test_a_bigint_unsigned_key_reads_and_resumes_past_2_to_the_63(sql, source):
    sql("CREATE TABLE big (id bigint unsigned NOT NULL PRIMARY KEY, v varchar(5) NOT NULL) DEFAULT CHARSET=utf8mb3")
    keys = [1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]
    for n, key in enumerate(keys):
        sql("INSERT INTO big VALUES (%s, %s)", (key, f"v{n}"))
    s = source(table="big")
    assert s.key == "id"
    chunks = list(s.read(2, None))
    assert [int(r["id"]) for c in chunks for r in c.data.to_pylist()] == keys
    resumed = [int(r["id"]) for c in s.read(2, chunks[0].checkpoint) for r in c.data.to_pylist()]
    assert resumed == keys[2:]
    split = [int(r["id"]) for part in s.partitions(4) for c in s.read(10, part) for r in c.data.to_pylist()]
    assert split == keys


def test_legacy_types_arrive_in_postgres_value_for_value_in_columns_that_hold_them(tmp_path, legacy, mysql_url, pg_url):
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: legacy}}")
    assert verbatim
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 3, 0)
    assert sorted(w for w in report.warnings if "zero date" in w) == sorted(WARNINGS)
    with psycopg.connect(pg_url) as pg:
        rows = pg.execute("SELECT * FROM legacy ORDER BY id").fetchall()
        types = dict(pg.execute("SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns "
                                "JOIN pg_attribute ON attrelid = 'legacy'::regclass AND attname = column_name "
                                "WHERE table_name = 'legacy'").fetchall())
    assert [dict(zip(legacy[0], r)) for r in rows] == legacy
    assert types == {
        "id": "bigint", "tiny": "integer", "small": "integer", "medium": "integer", "regular": "bigint",
        "big": "numeric(20,0)", "padded": "bigint", "flag": "boolean", "made": "integer", "retired": "integer",
        "status": "text", "tags": "text", "photo": "bytea", "thumb": "bytea", "scan": "bytea", "archive": "bytea",
        "price": "numeric(10,2)", "ratio": "double precision", "born": "date", "seen": "timestamp without time zone",
        "created": "timestamp without time zone", "changed": "timestamp without time zone", "span": "text",
        "code": "text", "notes": "text"}


def test_legacy_types_arrive_in_sqlite_value_for_value(tmp_path, legacy, mysql_url):
    report, _ = copy_job(tmp_path, mysql_url, "{type: sqlite, path: out.db, table: legacy}")
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 3, 0)
    # SQLite's integers stop at 2^63-1: a bigint unsigned goes as a REAL, and the plan says so.
    assert any("column big: SQLite stores decimal(20,0) as a floating-point number" in w for w in report.warnings)
    conn = sqlite3.connect(tmp_path / "out.db")
    try:
        rows = [dict(zip(legacy[0], r)) for r in conn.execute("SELECT * FROM legacy ORDER BY id")]
    finally:
        conn.close()
    assert [float(r["big"]) for r in rows] == [float(r["big"]) for r in legacy]
    stored = [{**r, "big": None} for r in rows]
    wanted = [{**r, "big": None, "flag": int(r["flag"]), "price": float(r["price"]),
               **{c: None if r[c] is None else str(r[c]) for c in DATES},
               **{c: None if r[c] is None else r[c].strftime("%Y-%m-%d %H:%M:%S.%f") for c in TIMES}} for r in legacy]
    assert stored == wanted


@pytest.fixture
def impossible_dates(sql):
    """Days their month does not have, which MySQL before 5.0.2 (and ALLOW_INVALID_DATES) stored."""
    sql("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
    sql("CREATE TABLE old (id int unsigned NOT NULL PRIMARY KEY, due date NULL, booked datetime NULL)")
    sql("INSERT INTO old VALUES (1, '2024-02-30', '2023-02-29 10:00:00'), (2, '2024-04-31', '2024-02-29 23:59:59'), "
        "(3, '2024-02-29', '0000-00-00 00:00:00'), (4, NULL, '2024-06-31 08:00:00')")


IMPOSSIBLE_READ = [{"id": 1, "due": None, "booked": None},
                   {"id": 2, "due": None, "booked": dt.datetime(2024, 2, 29, 23, 59, 59)},
                   {"id": 3, "due": dt.date(2024, 2, 29), "booked": None},
                   {"id": 4, "due": None, "booked": None}]
IMPOSSIBLE_WARNINGS = ["2 impossible dates (such as 2024-02-30) became NULL in column due",
                       "2 impossible dates (such as 2024-02-30) became NULL in column booked",
                       "1 zero date (such as 0000-00-00) became NULL in column booked"]


@pytest.mark.parametrize("how", ["table", "query"])
def test_impossible_dates_become_null_and_are_counted_like_zero_dates(impossible_dates, source, how):
    s = source(table="old") if how == "table" else source(query="SELECT * FROM old ORDER BY id")
    assert read_all(s) == IMPOSSIBLE_READ
    assert sorted(s.warnings()) == sorted(IMPOSSIBLE_WARNINGS)
    assert any("impossible ones (2024-02-30) are read as NULL" in note for note in s.notes)


def test_impossible_dates_arrive_in_postgres_as_null_with_the_run_reporting_them(tmp_path, impossible_dates, mysql_url,
                                                                                 pg_url):
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: old}}",
                                source="table: old")
    assert verbatim and (report.counts.read, report.counts.inserted, report.counts.rejected) == (4, 4, 0)
    assert sorted(w for w in report.warnings if " date" in w) == sorted(IMPOSSIBLE_WARNINGS)
    with psycopg.connect(pg_url) as pg:
        rows = pg.execute("SELECT id, due, booked FROM old ORDER BY id").fetchall()
    assert [dict(zip(("id", "due", "booked"), r)) for r in rows] == IMPOSSIBLE_READ


def test_a_two_digit_year_column_reads_as_its_four_digit_year(sql, source, tmp_path, mysql_url, pg_url):
    sql("CREATE TABLE season (id int unsigned NOT NULL PRIMARY KEY, short year(2) NULL, full_ year(4) NULL)")
    assert sql("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
               "AND COLUMN_NAME = 'short'") == [("year(2)",)]
    sql("INSERT INTO season VALUES (1, 1970, 1970), (2, 1999, 1999), (3, 2000, 2000), (4, 2069, 2069), (5, NULL, NULL)")
    expected = [{"id": i, "short": y, "full_": y} for i, y in enumerate([1970, 1999, 2000, 2069, None], 1)]
    assert read_all(source(table="season")) == expected
    assert read_all(source(query="SELECT * FROM season ORDER BY id")) == expected
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: season}}",
                                source="table: season")
    assert verbatim and report.counts.inserted == 5
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT id, short, full_ FROM season ORDER BY id").fetchall() == [
            tuple(r.values()) for r in expected]
