"""MySQL tables into PostgreSQL on the verbatim path: the server writes each row as a CSV line,
COPY loads the lines as they are, and the values come out as the Arrow path would write them."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

import portl
from tests.integration.mysql.support import job_file

@pytest.fixture
def pg(pg_url):
    import psycopg

    conn = psycopg.connect(pg_url, autocommit=True)
    yield conn
    conn.close()


def copy_job(tmp_path, mysql_url, pg_url, body: str = "") -> str:
    return job_file(tmp_path, f"name: copy\nsource: {{type: mysql, url: \"{mysql_url}\", table: src}}\n"
                              f"destination: {{type: postgres, url: \"{pg_url}\", table: dst}}\n{body}")


def run(path, tmp_path, **options):
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), **options)), the_plan.verbatim
    finally:
        the_plan.close()


def test_a_mysql_table_goes_verbatim_with_its_values_intact(tmp_path, sql, mysql_url, pg, pg_url):
    sql("CREATE TABLE src (id BIGINT PRIMARY KEY, n INT, amount DECIMAL(12,3), x DOUBLE, on_ TINYINT(1), d DATE, "
        "ts DATETIME(6), raw VARBINARY(8), t TEXT, e ENUM('a','b'), bits BIT(8)) ENGINE=InnoDB")
    sql("INSERT INTO src VALUES (1, -5, 12.345, 0.1, 1, '2024-02-29', '2024-01-02 03:04:05.678901', X'00FF5C', "
        "'line\\nbreak, \"quoted\"', 'b', b'101'), (2, NULL, NULL, NULL, 0, NULL, NULL, NULL, '', NULL, NULL), "
        "(3, 7, -0.5, 1e300, NULL, '0999-12-31', NULL, X'', NULL, 'a', b'0')")
    report, verbatim = run(copy_job(tmp_path, mysql_url, pg_url), tmp_path)
    assert verbatim is not None
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 3, 0)
    assert pg.execute("SELECT id, n, amount, x, on_, d, ts, raw, t, e, bits FROM dst ORDER BY id").fetchall() == [
        (1, -5, decimal.Decimal("12.345"), 0.1, True, dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
         b"\x00\xff\\", 'line\nbreak, "quoted"', "b", 5),
        (2, None, None, None, False, None, None, None, "", None, None),
        (3, 7, decimal.Decimal("-0.500"), 1e300, None, dt.date(999, 12, 31), None, b"", None, "a", 0),
    ]


def test_a_zero_date_sends_its_block_the_arrow_way_and_becomes_null_with_a_warning(tmp_path, sql, mysql_url, pg, pg_url):
    sql("SET SESSION sql_mode = ''")
    sql("CREATE TABLE src (id INT PRIMARY KEY, d DATE, flag TINYINT(1)) ENGINE=InnoDB")
    sql("INSERT INTO src VALUES (1, '2024-01-05', 1), (2, '0000-00-00', 2), (3, '2024-01-06', 0)")
    report, verbatim = run(copy_job(tmp_path, mysql_url, pg_url), tmp_path)
    assert verbatim is not None and report.counts.inserted == 3
    assert pg.execute("SELECT id, d, flag FROM dst ORDER BY id").fetchall() == [
        (1, dt.date(2024, 1, 5), True), (2, None, True), (3, dt.date(2024, 1, 6), False)]
    assert any("zero date" in w and "column d" in w for w in report.warnings)


def test_a_resumed_mysql_copy_loads_each_row_once(tmp_path, sql, mysql_url, pg, pg_url, crash_hook):
    sql("CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB")
    sql("INSERT INTO src (id, v) VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 1001)))
    path = copy_job(tmp_path, mysql_url, pg_url, "batch: {size: 150}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run(path, tmp_path)
    crash_hook.disarm()
    report, verbatim = run(path, tmp_path, resume=True)
    assert verbatim is not None and report.resumed and report.counts.inserted == 1000
    assert pg.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM dst").fetchall() == [(1000, 1000, 500500)]


def test_a_query_source_is_read_the_arrow_way(tmp_path, sql, mysql_url, pg_url):
    sql("CREATE TABLE src (id INT PRIMARY KEY) ENGINE=InnoDB")
    path = job_file(tmp_path, f"name: q\nsource: {{type: mysql, url: \"{mysql_url}\", query: 'SELECT id FROM src'}}\n"
                              f"destination: {{type: postgres, url: \"{pg_url}\", table: dst}}\n")
    the_plan = portl.plan(portl.load_job(path))
    try:
        assert the_plan.verbatim is None
    finally:
        the_plan.close()


def test_rows_of_every_length_are_read_whole(tmp_path, sql, mysql_url, pg, pg_url):
    # Row packets carry their value's length in 1, 3 or 4 bytes: 250, 251 and 65,536 bytes cross
    # from one to the next; the packed read and the CSV-line read both go through them.
    sql("CREATE TABLE src (id INT PRIMARY KEY, t MEDIUMTEXT, b MEDIUMBLOB) ENGINE=InnoDB")
    sizes = [0, 1, 240, 250, 251, 300, 65_530, 65_536, 70_000]
    for i, size in enumerate(sizes, 1):
        sql("INSERT INTO src VALUES (%s, %s, %s)", (i, "x" * size, b"\x01" * size))
    sql("INSERT INTO src VALUES (100, NULL, NULL)")
    report, verbatim = run(copy_job(tmp_path, mysql_url, pg_url), tmp_path)
    assert verbatim is not None and report.counts.inserted == len(sizes) + 1
    assert pg.execute("SELECT id, length(t), length(b) FROM dst ORDER BY id").fetchall() == [
        (i, size, size) for i, size in enumerate(sizes, 1)] + [(100, None, None)]
    from portl.connectors.mysql import Config
    from portl.connectors.mysql.source import MysqlSource

    source = MysqlSource(Config(type="mysql", url=mysql_url, table="src"), ".")
    values = [r for chunk in source.read(4, None) for r in chunk.data.to_pylist()]
    assert [(r["id"], len(r["t"] or ""), len(r["b"] or b"")) for r in values] == [
        (i, size, size) for i, size in enumerate(sizes, 1)] + [(100, 0, 0)]
