"""The Snowflake connector's pieces that need no server: its settings, the CSV files COPY loads,
the MERGE of each strategy, and Snowflake types as logical types."""

from __future__ import annotations

import gzip
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from portl.connectors.base import ConflictStrategy
from portl.connectors.snowflake import csvparts
from portl.connectors.snowflake.config import Config
from portl.connectors.snowflake.typemap import DIALECT, FIXED, TIME, TIMESTAMP_LTZ, VARIANT, logical_of_column
from portl.connectors.sql import dialect as sql
from portl.errors import TerminalError


def config(**options) -> Config:
    return Config.model_validate({"type": "snowflake", "account": "acme-eu", "user": "LOADER", "password": "s3cret!",
                                  "database": "DW", **options})


def test_the_password_is_never_shown_but_reaches_the_driver():
    c = config(table="people", warehouse="LOAD_WH", private_key_file="keys/k.pem")
    assert "s3cret" not in repr(c) and "s3cret" not in c.describe() and "s3cret" not in str(c.model_dump())
    kwargs = c.connect_kwargs("/jobs")
    assert kwargs["password"] == "s3cret!" and kwargs["warehouse"] == "LOAD_WH" and kwargs["schema"] == "PUBLIC"
    assert kwargs["private_key_file"] == "/jobs/keys/k.pem"
    assert kwargs["session_parameters"]["TIMEZONE"] == "UTC"
    assert c.describe() == "snowflake acme-eu.snowflakecomputing.com/DW.PUBLIC people"


def test_sessions_work_in_utc_whatever_timezone_the_job_sets():
    kwargs = config(table="people", session_parameters={"TIMEZONE": "Europe/Paris", "QUERY_TAG": "nightly"}) \
        .connect_kwargs("/jobs")
    assert kwargs["session_parameters"] == {"TIMEZONE": "UTC", "QUERY_TAG": "nightly"}


def test_a_table_and_a_query_together_are_refused():
    with pytest.raises(ValidationError, match="give only one of table, tables and query"):
        config(table="people", query="SELECT 1")


def test_text_is_quoted_and_null_is_an_unquoted_marker():
    batch = pa.record_batch({"id": pa.array([1, None], pa.int32()), "s": ['a "q", b\nc', ""],
                             "d": pa.array([Decimal("0.0000000100"), None], pa.decimal128(12, 10)),
                             "f": [float("nan"), float("-inf")], "b": [True, None],
                             "t": pa.array([1, None], pa.timestamp("us", "UTC")), "x": [b"\x00\xff", None]})
    text = gzip.decompress(csvparts.encode(batch)).decode()
    assert text == ('1,"a ""q"", b\nc",0.0000000100,NaN,true,1970-01-01 00:00:00.000001+00:00,00ff\n'
                    '\\N,"",\\N,-inf,\\N,\\N,\\N\n')


def test_a_batch_holding_the_null_marker_as_text_gets_another_marker():
    batch = pa.record_batch({"s": ["\\N", None]})
    marker = csvparts.null_marker(batch)
    assert marker != "\\N" and marker.startswith("PORTL_NULL_")
    assert gzip.decompress(csvparts.encode(batch, marker)).decode() == f'"\\N"\n{marker}\n'
    assert f"NULL_IF = ('{marker}')" in csvparts.file_format(marker)
    assert "NULL_IF = ('\\\\N')" in csvparts.file_format()


@pytest.mark.parametrize("strategy,tail", [
    ("skip", 'WHEN NOT MATCHED THEN INSERT ("id", "name") VALUES (s."id", s."name")'),
    ("overwrite", 'WHEN MATCHED THEN UPDATE SET t."name" = s."name" WHEN NOT MATCHED'),
    ("merge", 'WHEN MATCHED THEN UPDATE SET t."name" = COALESCE(s."name", t."name") WHEN NOT MATCHED'),
])
def test_one_merge_statement_settles_each_strategy(strategy, tail):
    statement = sql.upsert_from_stage(DIALECT, '"stage"', '"people"', ["id", "name"], ["id"], ConflictStrategy(strategy))
    assert statement.startswith('MERGE INTO "people" t USING "stage" s ON t."id" = s."id" ')
    assert tail in statement
    assert (strategy == "skip") == ("WHEN MATCHED" not in statement)


def test_snowflake_numbers_read_as_the_narrowest_type_that_holds_them():
    assert str(logical_of_column(FIXED, 10, 0)) == "int"
    assert str(logical_of_column(FIXED, 19, 0)) == "bigint"
    assert str(logical_of_column(FIXED, 38, 0)) == "decimal(38,0)"
    assert str(logical_of_column(FIXED, 12, 2)) == "decimal(12,2)"
    assert str(logical_of_column(TIMESTAMP_LTZ, 0, 9)) == "timestamptz"
    assert str(logical_of_column(VARIANT, None, None)) == "json"
    assert str(logical_of_column(TIME, 0, 9)) == "text"


def test_a_table_portl_creates_declares_each_logical_type():
    from portl.types import parse_type

    columns = [("a", parse_type("int"), True), ("b", parse_type("decimal(12,2)"), True),
               ("c", parse_type("timestamptz"), True), ("d", parse_type("json"), False)]
    assert sql.create_table(DIALECT, '"t"', columns, ["a"]) == (
        'CREATE TABLE IF NOT EXISTS "t" (\n  "a" NUMBER(10,0),\n  "b" NUMBER(12,2),\n  "c" TIMESTAMP_TZ(6),\n'
        '  "d" VARIANT NOT NULL,\n  PRIMARY KEY ("a")\n)')


def test_a_destination_refuses_the_options_of_a_source():
    from portl.connectors.snowflake.sink import SnowflakeSink

    with pytest.raises(TerminalError, match="order_by is a source option: remove it from the destination"):
        SnowflakeSink(config(table="people", order_by=["id"]), ".")
