"""Values keep their type and their exact value through MySQL, read and written."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pyarrow as pa

from portl.types import META_KEY, logical_of
from tests.integration.mysql.support import append, read_all

EMOJI = "grinning 😀, Zoë, 李小龙"


def logical_types(s) -> dict[str, str]:
    return {f.name: str(logical_of(f)) for f in s.schema()}


def test_tinyint_1_reads_as_bool_and_other_integers_as_int(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY, flag TINYINT(1), small TINYINT, medium MEDIUMINT, plain INT, "
        "wide INT UNSIGNED, year_ YEAR)")
    sql("INSERT INTO t VALUES (1, 1, -5, 100, -7, 4294967295, 2024), (2, 0, 5, 0, 7, 0, 1901), "
        "(3, NULL, NULL, NULL, NULL, NULL, NULL)")
    s = source(table="t")
    assert logical_types(s) == {"id": "int", "flag": "bool", "small": "int", "medium": "int", "plain": "int",
                                "wide": "bigint", "year_": "int"}
    rows = read_all(s)
    assert [r["flag"] for r in rows] == [True, False, None]
    assert [r["wide"] for r in rows] == [4294967295, 0, None]
    assert [r["year_"] for r in rows] == [2024, 1901, None]


def test_unsigned_bigint_max_value_survives_as_decimal_20_0(sql, source):
    sql("CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, n BIGINT)")
    sql("INSERT INTO t VALUES (18446744073709551615, -9223372036854775808), (1, 9223372036854775807)")
    s = source(table="t")
    assert s.schema().field("id").type == pa.decimal128(20, 0)
    assert any("bigint unsigned" in note for note in s.notes)
    rows = read_all(s)
    assert rows == [{"id": decimal.Decimal(1), "n": 9223372036854775807},
                    {"id": decimal.Decimal("18446744073709551615"), "n": -9223372036854775808}]


def test_decimal_keeps_its_scale_both_ways(sql, sink, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY, amount DECIMAL(12,4))")
    values = [decimal.Decimal("12.3400"), decimal.Decimal("-0.0001"), decimal.Decimal("99999999.9999"), None]
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2, 3, 4], pa.int32()),
                                        "amount": pa.array(values, pa.decimal128(12, 4))})
    append(sink("t"), batch)
    assert [r[0] for r in sql("SELECT CAST(amount AS CHAR) FROM t ORDER BY id")] == ["12.3400", "-0.0001",
                                                                                      "99999999.9999", None]
    s = source(table="t")
    assert s.schema().field("amount").type == pa.decimal128(12, 4)
    assert [r["amount"] for r in read_all(s)] == values


def test_datetime_6_keeps_microseconds_and_timestamp_columns_read_in_utc(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY, at DATETIME(6), stamped TIMESTAMP(3) NULL, day DATE)")
    sql("SET time_zone = '+02:00'")
    sql("INSERT INTO t VALUES (1, '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00.250', '2024-02-29')")
    rows = read_all(source(table="t"))
    assert rows == [{"id": 1, "at": dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
                     "stamped": dt.datetime(2024, 6, 1, 10, 0, 0, 250000), "day": dt.date(2024, 2, 29)}]


def test_four_byte_utf8_characters_survive_a_write_and_a_read(sink, source, sql):
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int32()), "name": [EMOJI]})
    append(sink("t"), batch)
    assert sql("SELECT name, CHAR_LENGTH(name) FROM t") == [(EMOJI, len(EMOJI))]
    assert read_all(source(table="t")) == [{"id": 1, "name": EMOJI}]


def test_json_is_created_as_json_and_reads_back_tagged_json(sink, source, sql):
    documents = ['{"a": [1, 2, {"b": null}]}', "1e5", '"text"', None]
    field = pa.field("doc", pa.string(), metadata={META_KEY: b"json"})
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2, 3, 4], pa.int32()), pa.array(documents)],
                                       schema=pa.schema([pa.field("id", pa.int32()), field]))
    append(sink("t"), batch)
    s = source(table="t")
    assert logical_types(s)["doc"] == "json"
    read = [r["doc"] for r in read_all(s)]
    assert [None if d is None else json.loads(d) for d in read] == [None if d is None else json.loads(d) for d in documents]
    assert sql("SELECT JSON_VALID(doc) FROM t WHERE id = 1") == [(1,)]


def test_bytes_round_trip_exactly_including_nul_tab_newline_and_0xff(sink, source, sql):
    payloads = [b"\x00\x01\xff\xfe", b"tab\there\nnewline\\", b"", None, bytes(range(256))]
    batch = pa.RecordBatch.from_pydict({"id": pa.array(range(1, 6), pa.int32()), "data": pa.array(payloads, pa.binary())})
    append(sink("t"), batch)
    assert [r[0] for r in sql("SELECT data FROM t ORDER BY id")] == payloads
    assert sql("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'data'") == [("longblob",)]
    s = source(table="t")
    assert s.schema().field("data").type == pa.binary()
    assert [r["data"] for r in read_all(s)] == payloads


def test_enum_and_set_read_as_text(sql, source):
    sql("CREATE TABLE t (id INT PRIMARY KEY, size ENUM('small','large'), tags SET('a','b','c'))")
    sql("INSERT INTO t VALUES (1, 'large', 'a,c'), (2, NULL, '')")
    s = source(table="t")
    assert logical_types(s) == {"id": "int", "size": "text", "tags": "text"}
    assert read_all(s) == [{"id": 1, "size": "large", "tags": "a,c"}, {"id": 2, "size": None, "tags": ""}]


def test_null_and_empty_string_stay_distinct_both_ways(sink, source, sql):
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2, 3], pa.int32()), "note": ["", None, "\\N"]})
    append(sink("t"), batch)
    assert sql("SELECT id, note, note IS NULL FROM t ORDER BY id") == [(1, "", 0), (2, None, 1), (3, "\\N", 0)]
    assert [r["note"] for r in read_all(source(table="t"))] == ["", None, "\\N"]


def test_every_logical_type_is_created_with_the_documented_column_type(sink, sql):
    schema = pa.schema([
        pa.field("i", pa.int32()), pa.field("b", pa.int64()), pa.field("f", pa.float64()),
        pa.field("d", pa.decimal128(10, 2)), pa.field("t", pa.string()), pa.field("ok", pa.bool_()),
        pa.field("day", pa.date32()), pa.field("at", pa.timestamp("us")), pa.field("atz", pa.timestamp("us", tz="UTC")),
        pa.field("j", pa.string(), metadata={META_KEY: b"json"}), pa.field("u", pa.string(), metadata={META_KEY: b"uuid"}),
        pa.field("raw", pa.binary()),
    ])
    row = [1, 2**40, 0.5, decimal.Decimal("1.25"), "x", True, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
           dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "{}", "0b0e3b8a-5c1e-4d38-9f2e-1d6f7c2a9b10", b"\x01"]
    batch = pa.RecordBatch.from_arrays([pa.array([v], f.type) for v, f in zip(row, schema)], schema=schema)
    append(sink("t"), batch)
    declared = dict(sql("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = 't'"))
    assert declared == {"i": "int(11)", "b": "bigint(20)", "f": "double", "d": "decimal(10,2)", "t": "longtext",
                        "ok": "tinyint(1)", "day": "date", "at": "datetime(6)", "atz": "datetime(6)",
                        "j": "longtext", "u": "char(36)", "raw": "longblob"}  # MariaDB: JSON is LONGTEXT + check
    assert sql("SELECT i, b, f, d, t, ok, day, at, atz, u FROM t") == [
        (1, 2**40, 0.5, decimal.Decimal("1.25"), "x", 1, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
         dt.datetime(2024, 1, 2, 3, 4, 5), "0b0e3b8a-5c1e-4d38-9f2e-1d6f7c2a9b10")]


def test_a_zoned_timestamp_is_stored_as_its_utc_time_and_the_plan_says_the_zone_is_lost(sink, sql):
    from portl.connectors.base import WriteMode, WriteSpec

    stamp = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    batch = pa.RecordBatch.from_pydict({"at": pa.array([stamp], pa.timestamp("us", tz="UTC"))})
    s = sink("t")
    plan = s.plan(batch.schema, WriteSpec(WriteMode.APPEND))
    assert any("keeps no time zone" in note and "at" in note for note in plan.notes)
    append(s, batch)
    assert sql("SELECT at FROM t") == [(dt.datetime(2024, 3, 1, 7, 0),)]
