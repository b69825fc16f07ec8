"""Type fidelity: every logical type and its edge values, through every pair of CSV, Parquet,
SQLite, PostgreSQL and MySQL, arrives exactly, or converted as docs/connectors.md documents it
with a warning in the run report."""

from __future__ import annotations

import csv
import datetime as dt
import textwrap
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

import portl
from tests.integration.fidelity import expected
from tests.integration.fidelity.systems import (
    KINDS, Place, csv_mapping, destination_yaml, mysql_connect, read_back, seed, source_yaml,
)
from tests.integration.fidelity.table import ROWS

PAIRS = [(s, d) for s in KINDS for d in KINDS]


def place_for(request, tmp_path, *kinds: str) -> Place:
    """The test's folder, and a database of its own on each server the kinds need."""
    place = Place(tmp_path)
    if "postgres" in kinds:
        place.pg_url = request.getfixturevalue("pg_url")
    if "mysql" in kinds:
        place.mysql_url = request.getfixturevalue("mysql_url")
    return place


def run_job(place: Place, text: str) -> portl.RunReport:
    path = place.folder / "job.yaml"
    path.write_text(textwrap.dedent(text))
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(place.folder / "state")))
    finally:
        the_plan.close()


@pytest.mark.parametrize("source,destination", PAIRS, ids=[f"{s}-to-{d}" for s, d in PAIRS])
def test_every_value_arrives_exactly_or_as_documented(request, tmp_path, source, destination):
    place = place_for(request, tmp_path, source, destination)
    seed(source, place)
    job = (f"name: fidelity\nsource: {source_yaml(source, place)}\n"
           f"destination: {destination_yaml(destination, place)}\n")
    if source == "csv":
        job += csv_mapping()
    report = run_job(place, job)

    assert report.status == "succeeded", report.error
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (len(ROWS), len(ROWS), 0), \
        f"rejected rows are in {report.reject_path}"
    rows, declared = read_back(destination, place)
    problems = expected.mismatches(source, destination, list(ROWS), rows, declared)
    assert not problems, f"{source} -> {destination}, values that did not arrive as documented:\n  " + \
        "\n  ".join(problems)
    wanted = expected.warnings(source, destination)
    missing = [w for w in wanted if not any(w in given for given in report.warnings)]
    unexplained = [w for w in report.warnings if not any(known in w for known in wanted + expected.NOT_ABOUT_VALUES)]
    assert not missing and not unexplained, (f"{source} -> {destination}: the run report lacks the warnings {missing} "
                                             f"and has warnings no conversion explains: {unexplained}")


# --- MySQL's own types -------------------------------------------------------------------------------


def mysql_source(request, tmp_path, ddl: str, rows: list[tuple], sql_mode: str | None = None) -> Place:
    """A MySQL table ``t`` holding ``rows``, inserted with ``sql_mode`` when given (MySQL refuses
    zero dates under its default one)."""
    place = place_for(request, tmp_path, "mysql")
    conn = mysql_connect(place.mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute(ddl)
            if sql_mode is not None:
                cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
            marks = ", ".join(["%s"] * len(rows[0]))
            cur.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    finally:
        conn.close()
    return place


def mysql_job(place: Place, destination: str, extra: str = "") -> portl.RunReport:
    return run_job(place, f"name: mysql_types\nsource: {{type: mysql, url: '{place.mysql_url}', table: t}}\n"
                          f"destination: {destination}\n{extra}")


def test_mysql_zero_dates_arrive_as_null_and_the_run_report_counts_them(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, born DATE, seen DATETIME(6))",
                         [(1, "0000-00-00", "0000-00-00 00:00:00"), (2, "2024-05-00", "2024-05-01 10:00:00.5"),
                          (3, "2024-05-01", None)], sql_mode="")
    report = mysql_job(place, "{type: parquet, path: out.parquet}")

    assert (report.status, report.counts.read, report.counts.inserted) == ("succeeded", 3, 3)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("born").to_pylist() == [None, None, dt.date(2024, 5, 1)]
    assert table.column("seen").to_pylist() == [None, dt.datetime(2024, 5, 1, 10, 0, 0, 500000), None]
    assert "2 zero dates (such as 0000-00-00) became NULL in column born" in report.warnings
    assert "1 zero date (such as 0000-00-00) became NULL in column seen" in report.warnings


def test_mysql_enum_and_set_arrive_in_postgres_as_their_labels(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, size ENUM('small', 'large'), "
                         "tags SET('a', 'b', 'c'))", [(1, "large", "a,c"), (2, "small", ""), (3, None, None)])
    place.pg_url = request.getfixturevalue("pg_url")
    report = mysql_job(place, f"{{type: postgres, url: '{place.pg_url}', table: sizes}}")

    assert (report.status, report.counts.inserted) == ("succeeded", 3)
    rows, declared = read_postgres_table(place.pg_url, "sizes")
    assert rows == [(1, "large", "a,c"), (2, "small", ""), (3, None, None)]
    assert (declared["size"], declared["tags"]) == ("text", "text")


def test_mysql_enum_labels_load_into_an_existing_enum_column(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, size ENUM('small', 'large'))",
                         [(1, "large"), (2, "small"), (3, None)])
    conn = mysql_connect(place.mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE copied (id INT PRIMARY KEY, size ENUM('small', 'large'))")
        report = mysql_job(place, f"{{type: mysql, url: '{place.mysql_url}', table: copied}}")
        with conn.cursor() as cur:
            cur.execute("SELECT id, size, size + 0 FROM copied ORDER BY id")  # size + 0: the enum's index
            rows = cur.fetchall()
    finally:
        conn.close()

    assert (report.status, report.counts.inserted) == ("succeeded", 3)
    assert rows == ((1, "large", 2), (2, "small", 1), (3, None, None))


def test_a_label_an_existing_enum_column_lacks_is_rejected_with_its_row_instead_of_becoming_empty(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, size ENUM('small', 'large', 'huge'))",
                         [(1, "large"), (2, "huge")])
    conn = mysql_connect(place.mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE copied (id INT PRIMARY KEY, size ENUM('small', 'large'))")
        report = mysql_job(place, f"{{type: mysql, url: '{place.mysql_url}', table: copied}}")
        with conn.cursor() as cur:
            cur.execute("SELECT id, size FROM copied")
            rows = cur.fetchall()
    finally:
        conn.close()

    assert (report.counts.inserted, report.counts.rejected) == (1, 1)
    assert rows == ((1, "large"),)  # the refused row is not loaded as an empty label
    with open(report.reject_path, newline="", encoding="utf-8") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert "Data truncated for column 'size'" in reject["error"] and reject["value"] == "huge", reject


def test_mysql_tinyint_1_arrives_in_postgres_as_boolean(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, paid TINYINT(1), level TINYINT)",
                         [(1, 1, 1), (2, 0, 0), (3, None, None), (4, -1, 7)])
    place.pg_url = request.getfixturevalue("pg_url")
    report = mysql_job(place, f"{{type: postgres, url: '{place.pg_url}', table: paid}}")

    assert (report.status, report.counts.inserted) == ("succeeded", 4)
    rows, declared = read_postgres_table(place.pg_url, "paid")
    assert rows == [(1, True, 1), (2, False, 0), (3, None, None), (4, True, 7)]  # any value but 0 is true
    assert (declared["paid"], declared["level"]) == ("boolean", "integer")


def test_mysql_unsigned_bigint_above_the_signed_range_arrives_in_postgres_as_numeric_20_0(request, tmp_path):
    values = [0, 2**63 - 1, 2**63, 2**64 - 1]
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, n BIGINT UNSIGNED)",
                         [(i, v) for i, v in enumerate(values, 1)] + [(5, None)])
    place.pg_url = request.getfixturevalue("pg_url")
    report = mysql_job(place, f"{{type: postgres, url: '{place.pg_url}', table: counters}}")

    assert (report.status, report.counts.inserted) == ("succeeded", 5)
    rows, declared = read_postgres_table(place.pg_url, "counters")
    assert [r[1] for r in rows] == [Decimal(v) for v in values] + [None]
    assert declared["n"] == "numeric(20,0)"


def test_mysql_unsigned_bigint_beyond_a_postgres_bigint_column_rejects_its_rows(request, tmp_path):
    place = mysql_source(request, tmp_path, "CREATE TABLE t (id INT PRIMARY KEY, n BIGINT UNSIGNED)",
                         [(1, 2**63 - 1), (2, 2**63), (3, 2**64 - 1), (4, 5)])
    place.pg_url = request.getfixturevalue("pg_url")
    import psycopg

    with psycopg.connect(place.pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE counters (id integer PRIMARY KEY, n bigint)")
    report = mysql_job(place, f"{{type: postgres, url: '{place.pg_url}', table: counters}}")

    assert (report.status, report.counts.inserted, report.counts.rejected) == ("succeeded", 2, 2)
    rows, _ = read_postgres_table(place.pg_url, "counters")
    assert rows == [(1, 2**63 - 1), (4, 5)]
    with open(report.reject_path, newline="", encoding="utf-8") as f:
        rejects = list(csv.DictReader(f))
    assert [(r["record"], r["column"], r["error"]) for r in rejects] == [
        ("2", "n", "value 9223372036854775808 is out of range for bigint"),
        ("3", "n", "value 18446744073709551615 is out of range for bigint"),
    ]


def read_postgres_table(url: str, table: str) -> tuple[list[tuple], dict[str, str]]:
    """A table's rows in key order, and its columns' declared types."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
        declared = dict(conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                     "WHERE attrelid = %s::regclass AND attnum > 0", (table,)).fetchall())
    return rows, declared
