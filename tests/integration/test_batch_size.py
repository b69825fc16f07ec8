"""batch.size is the number of rows per batch as written, for every source connector, down to 1."""

from __future__ import annotations

import sqlite3
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import portl

ROWS = [(i, f"name {i}") for i in range(1, 11)]


def _run(tmp_path, source_yaml: str, size: int):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: batches
        source: {source_yaml}
        destination: {{type: sqlite, path: out.db, table: t}}
        batch: {{size: {size}}}
        """))
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    conn = sqlite3.connect(tmp_path / "out.db")
    try:
        # A CSV's columns arrive as text: compare the ids as numbers.
        loaded = [(int(i), n) for i, n in conn.execute("SELECT id, name FROM t ORDER BY CAST(id AS INTEGER)")]
    finally:
        conn.close()
    return report, loaded


def _csv(tmp_path) -> str:
    (tmp_path / "in.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in ROWS))
    return "{type: csv, path: in.csv}"


def _jsonl(tmp_path) -> str:
    (tmp_path / "in.jsonl").write_text("".join(f'{{"id": {i}, "name": "{n}"}}\n' for i, n in ROWS))
    return "{type: jsonl, path: in.jsonl}"


def _parquet(tmp_path) -> str:
    table = pa.table({"id": [i for i, _ in ROWS], "name": [n for _, n in ROWS]})
    pq.write_table(table, tmp_path / "in.parquet")
    return "{type: parquet, path: in.parquet}"


def _sqlite(tmp_path) -> str:
    conn = sqlite3.connect(tmp_path / "in.db")
    conn.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO src VALUES (?, ?)", ROWS)
    conn.commit()
    conn.close()
    return "{type: sqlite, path: in.db, table: src}"


FILE_SOURCES = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet, "sqlite": _sqlite}


@pytest.mark.parametrize("kind", sorted(FILE_SOURCES))
@pytest.mark.parametrize(("size", "batches"), [(3, 4), (1, 10), (4, 3), (10, 1)])
def test_batch_size_is_the_rows_per_batch_of_a_small_file_or_table(tmp_path, kind, size, batches):
    report, loaded = _run(tmp_path, FILE_SOURCES[kind](tmp_path), size)
    assert (report.status, report.counts.read, report.counts.inserted) == ("succeeded", 10, 10)
    assert report.counts.batches == batches
    assert loaded == ROWS


def test_batch_size_of_a_csv_with_line_breaks_in_quoted_values(tmp_path):
    (tmp_path / "in.csv").write_text("id,name\n" + "".join(f'{i},"{n}\nsecond line"\n' for i, n in ROWS))
    report, loaded = _run(tmp_path, "{type: csv, path: in.csv}", 3)
    assert (report.counts.read, report.counts.batches) == (10, 4)
    assert loaded == [(i, f"{n}\nsecond line") for i, n in ROWS]


def test_batch_size_of_a_postgres_table(tmp_path, pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE src (id int PRIMARY KEY, name text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO src VALUES (%s, %s)", ROWS)
    report, loaded = _run(tmp_path, f'{{type: postgres, url: "{pg_url}", table: src}}', 3)
    assert (report.counts.read, report.counts.batches) == (10, 4)
    assert loaded == ROWS


def test_batch_size_of_a_mysql_table(tmp_path, mysql_url):
    import pymysql

    from tests.services import MYSQL_HOST, MYSQL_PORT

    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="",
                           database=mysql_url.rsplit("/", 1)[1], autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id int PRIMARY KEY, name varchar(40))")
        cur.executemany("INSERT INTO src VALUES (%s, %s)", ROWS)
    conn.close()
    report, loaded = _run(tmp_path, f'{{type: mysql, url: "{mysql_url}", table: src}}', 3)
    assert (report.counts.read, report.counts.batches) == (10, 4)
    assert loaded == ROWS


def test_batch_size_across_parquet_row_groups(tmp_path):
    table = pa.table({"id": [i for i, _ in ROWS], "name": [n for _, n in ROWS]})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=4)
    report, loaded = _run(tmp_path, "{type: parquet, path: in.parquet}", 3)
    assert (report.counts.read, report.counts.batches) == (10, 4)
    assert loaded == ROWS
