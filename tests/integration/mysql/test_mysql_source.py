"""Reading MySQL: zero dates, queries, partitions and resuming from a checkpoint."""

from __future__ import annotations

import datetime as dt
import decimal
import time

import pytest

from portl.errors import SourceError
from tests.integration.mysql.support import read_all


@pytest.fixture
def zero_dates(sql):
    """A table holding MySQL's zero dates, which only a permissive sql_mode lets in."""
    sql("SET SESSION sql_mode = ''")
    sql("CREATE TABLE t (id INT PRIMARY KEY, born DATE, seen DATETIME, ok DATE)")
    sql("INSERT INTO t VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '2024-01-31'), "
        "(2, '2024-05-00', '2024-01-02 03:04:05', '2024-02-01'), (3, '1999-12-31', NULL, NULL)")


def test_zero_dates_become_null_and_the_source_counts_them_per_column(zero_dates, source):
    s = source(table="t")
    rows = read_all(s)
    assert [r["born"] for r in rows] == [None, None, dt.date(1999, 12, 31)]
    assert [r["seen"] for r in rows] == [None, dt.datetime(2024, 1, 2, 3, 4, 5), None]
    assert [r["ok"] for r in rows] == [dt.date(2024, 1, 31), dt.date(2024, 2, 1), None]
    assert s.warnings() == ["2 zero dates (such as 0000-00-00) became NULL in column born",
                            "1 zero date (such as 0000-00-00) became NULL in column seen"]
    assert any("zero dates" in note for note in s.notes)


def test_a_second_read_of_a_partition_replaces_the_count_of_the_first(zero_dates, source):
    s = source(table="t")
    read_all(s, batch_rows=1)  # the plan's preview reads the same rows first
    read_all(s)
    assert s.warnings()[0].startswith("2 zero dates")


def test_zero_dates_reach_the_run_report_of_a_job(zero_dates, mysql_url, tmp_path):
    from tests.integration.mysql.support import job_file, run_job

    path = job_file(tmp_path, f"""
        name: dates
        source: {{type: mysql, url: '{mysql_url}', table: t}}
        destination: {{type: csv, path: out.csv}}
    """)
    report = run_job(path, tmp_path / "state")
    assert "2 zero dates (such as 0000-00-00) became NULL in column born" in report.warnings
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("1,,,2024-01-31")


def test_a_query_source_reads_its_result_with_its_types(sql, source):
    sql("CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(8,2), paid TINYINT(1))")
    sql("INSERT INTO orders VALUES (1, 10.50, 1), (2, 3.25, 0), (3, 99.99, 1)")
    s = source(query="SELECT id, amount * 2 AS doubled, paid FROM orders WHERE paid = 1 ORDER BY id DESC;")
    assert [str(f.type) for f in s.schema()] == ["int32", "decimal128(9, 2)", "bool"]
    assert read_all(s) == [{"id": 3, "doubled": decimal.Decimal("199.98"), "paid": True},
                           {"id": 1, "doubled": decimal.Decimal("21.00"), "paid": True}]
    assert s.estimate().rows is None


def test_a_query_with_two_columns_of_one_name_is_refused_with_advice(sql, source):
    sql("CREATE TABLE a (id INT)")
    with pytest.raises(SourceError, match="more than one column named id; give each a distinct name with AS"):
        source(query="SELECT a.id, b.id FROM a JOIN a AS b")


def test_partitions_of_an_integer_key_cover_every_row_exactly_once(sql, source):
    sql("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10))")
    ids = [1, 2, 3, 50, 51, 400, 401, 402, 999, 1000, 5000]
    sql("INSERT INTO t VALUES " + ", ".join(f"({i}, 'v{i}')" for i in ids))
    s = source(table="t")
    parts = s.partitions(3)
    assert len(parts) == 3
    seen = [r["id"] for p in parts for r in read_all(s, 2, p)]
    assert sorted(seen) == ids and len(seen) == len(set(seen))


def test_a_table_without_an_integer_key_is_one_partition(sql, source):
    sql("CREATE TABLE t (code VARCHAR(10) PRIMARY KEY)")
    sql("INSERT INTO t VALUES ('a'), ('b')")
    assert len(source(table="t").partitions(4)) == 1


def test_resuming_a_keyed_table_reads_exactly_the_remaining_rows(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i * 10}, {i})" for i in range(1, 26)))
    s = source(table="t")
    chunks = s.read(10, None)
    next(chunks)
    second = next(chunks)
    chunks.close()
    assert second.checkpoint.position["after"] == 200 and second.checkpoint.rows == 20
    rest = [r["id"] for chunk in s.read(10, second.checkpoint) for r in chunk.data.to_pylist()]
    assert rest == [i * 10 for i in range(21, 26)]


def test_resuming_a_table_without_a_key_skips_the_rows_already_read(sql, source):
    sql("CREATE TABLE t (v INT)")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(1, 8)))
    s = source(table="t")
    assert any("no primary key" in note for note in s.notes)
    first = next(iter(s.read(3, None)))
    rest = [r["v"] for chunk in s.read(3, first.checkpoint) for r in chunk.data.to_pylist()]
    assert [r["v"] for r in first.data.to_pylist()] + rest == list(range(1, 8))


def test_resuming_a_query_skips_the_rows_already_read_in_its_own_order(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY)")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(1, 11)))
    s = source(query="SELECT id FROM t ORDER BY id DESC")
    first = next(iter(s.read(4, None)))
    assert first.checkpoint.position["offset"] == 4
    assert [r["id"] for r in read_all(s, 4, first.checkpoint)] == [6, 5, 4, 3, 2, 1]


def test_the_estimate_comes_from_information_schema(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY)")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(1, 101)))
    sql("ANALYZE TABLE t")
    estimate = source(table="t").estimate()
    assert estimate.rows == 100 and not estimate.exact


def test_a_missing_source_table_names_the_table_and_database(source, database):
    with pytest.raises(SourceError, match=f"table 'nope' not found in MySQL database {database}"):
        source(table="nope")


@pytest.mark.parametrize("kind", ["table", "query"])
def test_a_stopped_reader_leaves_the_rest_of_a_large_table_unread(sql, source, kind):
    sql("CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200))")
    sql("INSERT INTO t VALUES (1, REPEAT('x', 200))")
    for _ in range(18):  # doubling: 262,144 rows of about 200 bytes
        sql("INSERT INTO t SELECT id + (SELECT MAX(id) FROM t), pad FROM t")
    s = source(table="t") if kind == "table" else source(query="SELECT * FROM t")
    started = time.perf_counter()
    assert read_all(s, 50_000)[-1]["id"] == 262_144
    whole = time.perf_counter() - started
    started = time.perf_counter()
    reader = s.read(5, None)  # as the plan's preview does
    assert len(next(reader).data) == 5
    reader.close()
    assert time.perf_counter() - started < whole / 5
