"""Reading PostgreSQL tables and queries: types, NULLs, partitions, resume."""

from __future__ import annotations

import datetime
import decimal

import pyarrow as pa
import pytest

from portl.connectors.base import Checkpoint
from portl.errors import SourceError
from portl.types import logical_of
from tests.integration.postgres.helpers import read_all

ALL_TYPES = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE t (
    id bigint PRIMARY KEY, small smallint, n integer, price numeric(12,3), ratio real, score double precision,
    ok boolean, name text, code varchar(5), letter char(2), day date, at timestamp, at_tz timestamptz,
    doc jsonb, doc_json json, raw bytea, ident uuid, feeling mood, tags text[], pos positive, span interval
);
INSERT INTO t VALUES
 (1, -2, 7, 12345.678, 1.5, 0.1, true, 'Zoë "quoted", comma', 'ab', 'x', '2024-02-29', '2024-01-02 03:04:05.123456',
  '2024-01-02 03:04:05.5+02', '{"a": [1, 2]}', '{"b":1}', '\\x00ff0a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  'happy', '{a,b}', 3, '1 day'),
 (2, NULL, NULL, NULL, NULL, 'NaN', false, '', '', NULL, NULL, NULL, NULL, NULL, NULL, '\\x', NULL, NULL, '{}',
  NULL, NULL),
 (3, NULL, NULL, -0.001, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'null', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, E'two\\nlines', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
"""


def test_every_postgres_type_reads_as_its_logical_type(pg, source):
    pg.execute(ALL_TYPES)
    types = {f.name: str(logical_of(f)) for f in source(table="t").schema()}
    assert types == {
        "id": "bigint", "small": "int", "n": "int", "price": "decimal(12,3)", "ratio": "float", "score": "float",
        "ok": "bool", "name": "text", "code": "text", "letter": "text", "day": "date", "at": "timestamp",
        "at_tz": "timestamptz", "doc": "json", "doc_json": "json", "raw": "bytes", "ident": "uuid",
        "feeling": "text", "tags": "text", "pos": "int", "span": "text",
    }


def test_values_round_trip_with_their_types(pg, source):
    pg.execute(ALL_TYPES)
    first = read_all(source(table="t"))[0]
    assert first == {
        "id": 1, "small": -2, "n": 7, "price": decimal.Decimal("12345.678"), "ratio": 1.5, "score": 0.1, "ok": True,
        "name": 'Zoë "quoted", comma', "code": "ab", "letter": "x ", "day": datetime.date(2024, 2, 29),
        "at": datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "at_tz": datetime.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=datetime.timezone.utc),
        "doc": '{"a": [1, 2]}', "doc_json": '{"b":1}', "raw": b"\x00\xff\n",
        "ident": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "feeling": "happy", "tags": "{a,b}", "pos": 3,
        "span": "1 day",
    }


def test_null_and_empty_string_stay_distinct(pg, source):
    pg.execute(ALL_TYPES)
    rows = {r["id"]: r for r in read_all(source(table="t"))}
    assert (rows[2]["name"], rows[2]["code"], rows[3]["name"]) == ("", "", None)
    assert rows[2]["raw"] == b"" and rows[3]["raw"] is None
    assert rows[2]["ok"] is False and rows[3]["ok"] is None
    assert rows[3]["doc"] == "null"  # the JSON document null, not SQL NULL
    assert rows[4]["name"] == "two\nlines"


def test_special_floats_and_small_decimals_survive(pg, source):
    pg.execute(ALL_TYPES)
    rows = {r["id"]: r for r in read_all(source(table="t"))}
    assert rows[2]["score"] != rows[2]["score"]  # NaN
    assert rows[3]["score"] == float("-inf")
    assert rows[3]["price"] == decimal.Decimal("-0.001")


def test_a_query_is_read_with_types_from_its_description(pg, source):
    pg.execute("CREATE TABLE t (id int, name text, price numeric(8,2)); "
               "INSERT INTO t VALUES (1, 'a%', 2.50), (2, 'b', NULL), (3, 'a-z', 1)")
    s = source(query="SELECT id, upper(name) AS name, price, price * 2 AS doubled FROM t WHERE name LIKE 'a%' ORDER BY id;")
    assert [(f.name, str(logical_of(f))) for f in s.schema()] == [
        ("id", "int"), ("name", "text"), ("price", "decimal(8,2)"), ("doubled", "decimal(38,10)")]
    assert read_all(s) == [
        {"id": 1, "name": "A%", "price": decimal.Decimal("2.50"), "doubled": decimal.Decimal("5.0000000000")},
        {"id": 3, "name": "A-Z", "price": decimal.Decimal("1.00"), "doubled": decimal.Decimal("2.0000000000")},
    ]


def test_numeric_without_precision_is_rounded_warned_about_and_nan_rejected(pg, source):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, x numeric); "
               "INSERT INTO t VALUES (1, 1.123456789012345), (2, 'NaN'), (3, 42)")
    s = source(table="t")
    assert str(logical_of(s.schema().field("x"))) == "decimal(38,10)"
    assert any("numeric without a precision" in n and "rounded to 10 decimal places" in n for n in s.notes)
    chunks = list(s.read(100, None))
    assert chunks[0].data.to_pylist() == [{"id": 1, "x": decimal.Decimal("1.1234567890")},
                                          {"id": 3, "x": decimal.Decimal("42.0000000000")}]
    (reject,) = chunks[0].rejects
    assert (reject.record, reject.column, reject.value) == (2, "x", "NaN")
    assert "does not fit column x (decimal(38,10))" in reject.error
    assert chunks[0].rows_read == 3


def test_table_without_primary_key_reads_every_row_with_a_note(pg, source):
    pg.execute("CREATE TABLE t (name text); INSERT INTO t SELECT 'n' || g FROM generate_series(1, 250) g")
    s = source(table="t")
    assert [r["name"] for r in read_all(s, 100)] == [f"n{i}" for i in range(1, 251)]
    assert any("no primary key" in n for n in s.notes)


def test_partitions_split_the_key_range_and_cover_every_row_once(pg, source):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); "
               "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g WHERE g % 7 <> 0")
    s = source(table="t")
    parts = s.partitions(3)
    assert len(parts) == 3
    seen = [r["id"] for p in parts for r in read_all(s, 50, p)]
    assert sorted(seen) == [g for g in range(1, 1001) if g % 7]
    assert len(seen) == len(set(seen))


def test_batches_carry_keyset_checkpoints_and_resume_reads_exactly_the_rest(pg, source):
    pg.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text); "
               "INSERT INTO t SELECT g * 10, 'v' || g FROM generate_series(1, 95) g")
    s = source(table="t")
    chunks = list(s.read(20, None))
    assert [c.data.num_rows for c in chunks] == [20, 20, 20, 20, 15]
    third = chunks[2].checkpoint
    assert third.position["after"] == 600 and third.rows == 60
    pg.execute("DELETE FROM t WHERE id = 100")  # a row before the checkpoint: keyset resume does not shift
    resumed = list(s.read(20, Checkpoint.from_json(third.to_json())))
    assert [r["id"] for c in resumed for r in c.data.to_pylist()] == [g * 10 for g in range(61, 96)]
    assert resumed[0].first_record == 61 and resumed[-1].checkpoint.rows == 95


def test_a_query_resumes_by_row_count(pg, source):
    pg.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50)")
    s = source(query="SELECT id FROM t ORDER BY id DESC")
    chunks = list(s.read(15, None))
    assert s.partitions(4) == [Checkpoint("0", {"after": None, "end": None, "offset": 0})]
    rest = read_all(s, 15, chunks[1].checkpoint)
    assert [r["id"] for r in rest] == list(range(20, 0, -1))


def test_estimate_is_exact_for_a_small_table(pg, source):
    pg.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 123)")
    estimate = source(table="t").estimate()
    assert (estimate.rows, estimate.exact) == (123, True)


def test_a_table_in_another_schema_reads(pg, source):
    pg.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders VALUES (5)")
    assert read_all(source(table="sales.orders")) == [{"id": 5}]
    assert read_all(source(table="orders", schema="sales")) == [{"id": 5}]


def test_a_missing_table_is_a_source_error_naming_it(pg, source, pg_url):
    database = pg_url.rsplit("/", 1)[1]
    with pytest.raises(SourceError, match=rf"table public\.nope does not exist in PostgreSQL database {database} at 127\.0\.0\.1:5432"):
        source(table="nope")


def test_an_empty_table_reads_no_batches(pg, source):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    s = source(table="t")
    assert list(s.read(10, None)) == []
    assert s.partitions(4)[0].position == {"after": None, "end": None, "offset": 0}


def test_bytes_in_many_rows_decode_exactly(pg, source):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, raw bytea); "
               "INSERT INTO t SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE decode(repeat(lpad(to_hex(g % 256), 2, '0'), g % 9), 'hex') END "
               "FROM generate_series(1, 300) g")
    got = read_all(s := source(table="t"), 64)
    assert s.schema().field("raw").type == pa.binary()
    assert got[4]["raw"] is None
    assert got[10]["raw"] == bytes([11]) * 2
    assert all(r["raw"] is None or r["raw"] == bytes([r["id"] % 256]) * (r["id"] % 9) for r in got)


def test_estimate_of_a_view_comes_from_the_planner_and_is_not_exact(pg, source):
    pg.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500); ANALYZE t; "
               "CREATE VIEW v AS SELECT id FROM t WHERE id > 0")
    estimate = source(table="v").estimate()
    assert estimate.exact is False and 100 <= estimate.rows <= 1000


def test_a_composite_key_table_reads_in_key_order_in_one_partition_and_resumes_by_count(pg, source):
    pg.execute("CREATE TABLE t (a int, b text, PRIMARY KEY (a, b)); "
               "INSERT INTO t SELECT g % 10, 'x' || g FROM generate_series(1, 100) g")
    s = source(table="t")
    assert len(s.partitions(4)) == 1
    every = read_all(s, 30)
    assert every == sorted(every, key=lambda r: (r["a"], r["b"]))
    middle = list(s.read(30, None))[1].checkpoint
    assert middle.position["offset"] == 60
    assert read_all(s, 30, middle) == every[60:]
