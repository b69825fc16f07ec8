import sqlite3

import pyarrow as pa
import pytest

import portl
from portl.connectors.base import ColumnInfo, TableInfo, WriteMode, WriteSpec
from portl.engine.mapping import resolve_mapping
from portl.engine.validation import check_row_count, check_schema
from portl.spec.models import Mapping

SOURCE = pa.schema([("id", pa.string()), ("amount", pa.string()), ("note", pa.string())])


def table(*columns):
    return TableInfo("t", list(columns), primary_key=["id"])


def test_a_mapped_type_the_destination_cannot_hold_is_an_error_that_names_the_fix():
    destination = table(ColumnInfo("id", pa.int64(), "BIGINT"), ColumnInfo("amount", pa.decimal128(10, 2), "DECIMAL(10,2)"))
    mapping = resolve_mapping(Mapping(columns={"id": {}, "amount": {"type": "date"}}), SOURCE, destination)
    errors, _ = check_schema(mapping, destination, WriteSpec(WriteMode.APPEND))
    assert errors == ["column amount: the mapping produces date but the destination column is DECIMAL(10,2); "
                      "set type: decimal(10,2) in mapping.columns.amount, or change the column"]


def test_widening_conversions_are_accepted():
    destination = table(ColumnInfo("id", pa.int64(), "BIGINT"), ColumnInfo("amount", pa.float64(), "REAL"))
    mapping = resolve_mapping(Mapping(columns={"id": {"type": "int"}, "amount": {"type": "int"}}), SOURCE, destination)
    assert check_schema(mapping, destination, WriteSpec(WriteMode.APPEND)) == ([], [])


def test_an_unmapped_not_null_column_without_default_is_an_error():
    destination = table(ColumnInfo("id", pa.int64(), "BIGINT"), ColumnInfo("created", pa.string(), "TEXT", nullable=False))
    mapping = resolve_mapping(Mapping(columns={"id": {}}), SOURCE, destination)
    errors, _ = check_schema(mapping, destination, WriteSpec(WriteMode.APPEND))
    assert errors == ["destination column created is NOT NULL without a default, and nothing maps to it"]


def test_row_count_matches_rows_before_plus_inserted():
    assert check_row_count(WriteMode.APPEND, 10, 15, 5) is None
    assert check_row_count(WriteMode.REPLACE, 10, 5, 5) is None


def test_row_count_mismatch_says_what_was_expected():
    message = check_row_count(WriteMode.APPEND, 10, 14, 5)
    assert "holds 14 rows, expected 10 before + 5 inserted = 15" in message


def test_a_job_whose_plan_has_errors_writes_nothing(tmp_path):
    db = sqlite3.connect(tmp_path / "out.db")
    db.execute("CREATE TABLE t (id BIGINT, amount DECIMAL(10,2))")
    db.commit()
    (tmp_path / "in.csv").write_text("id,amount\n1,2.50\n")
    (tmp_path / "job.yaml").write_text(
        "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n"
        "mapping: {columns: {id: {}, amount: {type: date}}}\n"
    )
    the_plan = portl.plan(portl.load_job(str(tmp_path / "job.yaml")))
    try:
        assert any("amount" in e for e in the_plan.errors)
        with pytest.raises(portl.ValidationFailed, match="nothing was written"):
            portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
