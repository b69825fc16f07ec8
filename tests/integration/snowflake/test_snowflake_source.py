"""Reading Snowflake through fakesnow: tables and queries as Arrow batches of the job's size,
Snowflake's types as logical types, a resumed read, and names as Snowflake writes them."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

import portl
from portl.connectors import registry
from portl.connectors.base import Checkpoint
from portl.connectors.snowflake.config import Config
from portl.types import logical_of
from tests.integration.snowflake.helpers import run_job



TYPES_DDL = """CREATE TABLE "types" ("small" NUMBER(9,0), "big" NUMBER(18,0), "int" INT, "money" NUMBER(12,2),
    "f" FLOAT, "wide" NUMBER(19,0), "b" BOOLEAN, "s" VARCHAR, "bin" BINARY, "d" DATE, "t" TIME, "ntz" TIMESTAMP_NTZ, "tz" TIMESTAMP_TZ,
    "ltz" TIMESTAMP_LTZ, "v" VARIANT)"""


def source(place, **options):
    config = Config.model_validate({"type": "snowflake", **place.kwargs, "database": place.database,
                                    "schema": place.schema, **options})
    return registry.open_source(config, ".")


def seed_numbers(place, count: int) -> None:
    place.query('CREATE TABLE "numbers" ("id" NUMBER(10,0), "label" VARCHAR)')
    place.query('INSERT INTO "numbers" SELECT seq4() + 1, \'n\' || (seq4() + 1) FROM TABLE(GENERATOR(ROWCOUNT => %s))'
                % count)


def test_snowflake_types_read_as_logical_types(snowflake_place):
    snowflake_place.query(TYPES_DDL)
    src = source(snowflake_place, table="types")
    try:
        kinds = {f.name: str(logical_of(f)) for f in src.schema()}
    finally:
        src.close()
    assert kinds == {"small": "int", "big": "bigint", "int": "decimal(38,0)", "money": "decimal(12,2)", "f": "float", "wide": "bigint",
                     "b": "bool", "s": "text", "bin": "bytes", "d": "date", "t": "text", "ntz": "timestamp",
                     "tz": "timestamptz", "ltz": "timestamptz", "v": "json"}


def test_values_arrive_in_their_logical_types(snowflake_place):
    snowflake_place.query(TYPES_DDL)
    snowflake_place.query("""INSERT INTO "types" SELECT 7, 9000000000, 123, 12.34, 1.5, -9223372036854775808, true, 'héllo',
        TO_BINARY('00ff', 'HEX'), '2024-02-29', '10:11:12.5', '2024-01-02 03:04:05.123456',
        '2024-01-02 03:04:05.5+00:00', '2024-01-02 03:04:05', PARSE_JSON('{"a": [1, 2]}')""")
    src = source(snowflake_place, table="types")
    try:
        (row,) = [r for chunk in src.read(100, None) for r in chunk.data.to_pylist()]
    finally:
        src.close()
    assert row["small"] == 7 and row["big"] == 9000000000 and row["int"] == Decimal("123")
    assert row["wide"] == -9223372036854775808
    assert row["money"] == Decimal("12.34") and row["f"] == 1.5 and row["b"] is True and row["s"] == "héllo"
    assert row["d"] == dt.date(2024, 2, 29) and row["t"] == "10:11:12.500000"
    assert row["ntz"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert row["tz"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=dt.timezone.utc)
    assert row["v"].replace(" ", "").replace("\n", "") == '{"a":[1,2]}'


def test_a_table_is_read_in_batches_of_the_jobs_size_with_exact_checkpoints(snowflake_place):
    seed_numbers(snowflake_place, 25)
    src = source(snowflake_place, table="numbers", order_by=["id"])
    try:
        chunks = list(src.read(10, None))
    finally:
        src.close()
    assert [c.data.num_rows for c in chunks] == [10, 10, 5]
    assert [c.checkpoint.position["offset"] for c in chunks] == [10, 20, 25]
    assert [c.first_record for c in chunks] == [1, 11, 21]
    assert pa.concat_arrays([c.data.column(0) for c in chunks]).to_pylist() == list(range(1, 26))


def test_a_resumed_read_skips_exactly_the_rows_already_loaded(snowflake_place):
    seed_numbers(snowflake_place, 25)
    src = source(snowflake_place, table="numbers")  # no order_by: ordered by every column
    try:
        first = list(src.read(10, None))[:2]
        rest = list(src.read(10, Checkpoint("0", {"offset": 20}, 20)))
    finally:
        src.close()
    seen = [r["id"] for c in first + rest for r in c.data.to_pylist()]
    assert sorted(seen) == list(range(1, 26)) and len(seen) == 25
    assert rest[-1].checkpoint.rows == 25


def test_a_query_is_read_to_a_file(tmp_path, snowflake_job, snowflake_place):
    seed_numbers(snowflake_place, 5)
    path = snowflake_job("""
        name: back
        source: {type: snowflake, {snowflake}, query: 'SELECT "id", "label" FROM "numbers" WHERE "id" > 2'}
        destination: {type: csv, path: out.csv}
    """)
    report = run_job(path)
    assert (report.counts.read, report.counts.inserted) == (3, 3)
    with open(tmp_path / "out.csv", newline="") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == ["n3", "n4", "n5"]


def test_a_name_in_lower_case_finds_a_table_created_without_quotes(snowflake_place):
    snowflake_place.query("CREATE TABLE ORDERS (ID NUMBER(10,0))")
    snowflake_place.query("INSERT INTO ORDERS VALUES (1), (2)")
    src = source(snowflake_place, table="orders")
    try:
        assert [r for c in src.read(10, None) for r in c.data.to_pylist()] == [{"ID": 1}, {"ID": 2}]
    finally:
        src.close()


def test_a_missing_table_is_named_with_the_tables_there_are(snowflake_place):
    seed_numbers(snowflake_place, 1)
    with pytest.raises(portl.PortlError, match=r"table numbrs does not exist in Snowflake .*did you mean 'numbers'"):
        source(snowflake_place, table="numbrs")


def test_a_value_past_the_range_its_number_type_reads_as_is_named(snowflake_place):
    snowflake_place.query('CREATE TABLE "wide" ("id" NUMBER(10,0))')
    snowflake_place.query('INSERT INTO "wide" VALUES (1), (9999999999)')
    src = source(snowflake_place, table="wide")
    try:
        with pytest.raises(portl.PortlError, match=r"column id holds a value that does not fit int .*cast"):
            list(src.read(10, None))
    finally:
        src.close()


def test_an_empty_table_is_read_as_no_rows(tmp_path, snowflake_job, snowflake_place):
    snowflake_place.query('CREATE TABLE "numbers" ("id" NUMBER(10,0), "label" VARCHAR)')
    path = snowflake_job("""
        name: back
        source: {type: snowflake, {snowflake}, table: numbers}
        destination: {type: csv, path: out.csv}
    """)
    report = run_job(path)
    assert (report.status, report.counts.read, report.counts.inserted) == ("succeeded", 0, 0)


def test_a_schema_and_table_named_in_lower_case_find_those_created_without_quotes(snowflake_place):
    snowflake_place.query(f"CREATE SCHEMA {snowflake_place.database}.SALES")
    snowflake_place.query(f"CREATE TABLE {snowflake_place.database}.SALES.ORDERS (ID NUMBER(10,0))")
    snowflake_place.query(f"INSERT INTO {snowflake_place.database}.SALES.ORDERS VALUES (7)")
    src = source(snowflake_place, table="sales.orders")
    try:
        assert [r for c in src.read(10, None) for r in c.data.to_pylist()] == [{"ID": 7}]
    finally:
        src.close()


def test_a_resumed_read_with_an_order_by_that_is_not_unique_skips_exactly_the_rows_loaded(snowflake_place):
    snowflake_place.query('CREATE TABLE "tied" ("grp" NUMBER(10,0), "id" NUMBER(10,0))')
    snowflake_place.query('INSERT INTO "tied" SELECT 1, seq4() + 1 FROM TABLE(GENERATOR(ROWCOUNT => 25))')
    src = source(snowflake_place, table="tied", order_by=["grp"])  # every row ties on grp
    try:
        assert 'ORDER BY "grp", 1, 2' in src.statement(20, [])
        first = list(src.read(10, None))[:2]
        rest = list(src.read(10, Checkpoint("0", {"offset": 20}, 20)))
    finally:
        src.close()
    seen = [r["id"] for c in first + rest for r in c.data.to_pylist()]
    assert sorted(seen) == list(range(1, 26)) and len(seen) == 25
