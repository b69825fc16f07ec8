"""Bad input, as a user meets it: each mistake gets a sentence that says where it is (file, line,
column, row or key), a non-zero exit code and no traceback; and nothing already in the
destination is lost."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from .conftest import (
    assert_balanced, assert_clean_failure, create_table, query, read_rejects, table_rows,
)

DESTINATION = "destination: {type: sqlite, path: out.db, table: t}\n"
KEPT = [(90001, "kept", 1), (90002, "kept", 2)]
"""Rows the destination holds before each test; every test checks they are still there."""


@pytest.fixture
def out_db(tmp_path: Path) -> Path:
    """An existing destination, ``out.db`` table ``t`` (id, name, amount), holding :data:`KEPT`."""
    db = tmp_path / "out.db"
    create_table(db, "t", "id BIGINT PRIMARY KEY, name TEXT, amount BIGINT", KEPT)
    return db


@pytest.fixture
def data_csv(write) -> Path:
    return write("data.csv", "id,name,amount\n1,a,10\n2,b,20\n3,c,30\n")


def rows_of(db: Path) -> list[tuple]:
    return table_rows(db, "t", order_by="id")


# --- the job file ------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_line_and_column(portl, write, out_db, data_csv):
    write("job.yaml", """
        source: {type: csv, path: data.csv}
        destination:
          type: sqlite
          path: out.db
         table: t
    """)

    result = portl("run", "job.yaml")

    assert_clean_failure(result, 2)
    assert "job.yaml:5:2: could not parse YAML" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


@pytest.mark.parametrize(
    "job, where, message",
    [
        ("batchh: {size: 10}\n", "job.yaml:3:1", "unknown key 'batchh' in the job; did you mean 'batch'?"),
        ("mapping:\n  columns:\n    id: {typ: bigint}\n", "job.yaml:5:10",
         "unknown key 'typ' in mapping.columns.id; did you mean 'type'?"),
    ],
    ids=["top-level", "nested"],
)
def test_unknown_key_is_located_and_the_closest_valid_key_suggested(
    portl, write, out_db, data_csv, job, where, message
):
    write("job.yaml", "source: {type: csv, path: data.csv}\n" + DESTINATION + job)

    result = portl("run", "job.yaml")

    assert_clean_failure(result, 2)
    assert f"{where}: {message}" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


def test_missing_required_key_is_named(portl, write, out_db, data_csv):
    write("job.yaml", "source: {type: csv, path: data.csv}\nbatch: {size: 10}\n")

    result = portl("run", "job.yaml")

    assert_clean_failure(result, 2)
    assert "job.yaml:1:1: missing required key 'destination' in the job" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


def test_wrong_type_for_a_key_names_the_key_and_the_value(portl, write, out_db, data_csv):
    write("job.yaml", "source: {type: csv, path: data.csv}\n" + DESTINATION + "batch: {size: lots}\n")

    result = portl("run", "job.yaml")

    assert_clean_failure(result, 2)
    assert "job.yaml:3:15: batch.size: expected a whole number, got 'lots'" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


# --- the source file ---------------------------------------------------------------------------


def test_missing_source_file_is_named(portl, write, out_db):
    write("job.yaml", "source: {type: csv, path: exports/customers.csv}\n" + DESTINATION)

    result = portl("run", "job.yaml")

    assert_clean_failure(result)
    assert re.search(r"error: source file not found: \S*exports/customers\.csv", result.stderr), result.log
    assert rows_of(out_db) == KEPT


def test_unreadable_source_file_is_named(portl, write, out_db, data_csv):
    data_csv.chmod(0)
    if os.access(data_csv, os.R_OK):
        data_csv.chmod(0o644)
        pytest.skip("this user can read a file with mode 000 (root), so it cannot be made unreadable")
    write("job.yaml", "source: {type: csv, path: data.csv}\n" + DESTINATION)
    try:
        result = portl("run", "job.yaml")
    finally:
        data_csv.chmod(0o644)

    assert_clean_failure(result)
    assert "data.csv" in result.stderr, result.log
    assert re.search(r"permission|cannot read|not readable", result.stderr, re.I), result.log
    assert rows_of(out_db) == KEPT


def _latin1_file(path: Path, rows: int, bad_id: int) -> None:
    """ids 1..rows; the name of ``bad_id`` is 'café' in latin-1 (a lone 0xe9 byte, invalid utf-8)."""
    with open(path, "wb") as handle:
        handle.write(b"id,name,amount\n")
        for i in range(1, rows + 1):
            name = b"caf\xe9" if i == bad_id else b"name%d" % i
            handle.write(b"%d,%s,%d\n" % (i, name, i))


def test_wrongly_encoded_source_names_the_line_and_suggests_encoding(portl, write, tmp_path, out_db):
    _latin1_file(tmp_path / "latin.csv", rows=5000, bad_id=3000)  # id 3000 is on line 3001
    write("job.yaml", "source: {type: csv, path: latin.csv}\n" + DESTINATION + "batch: {size: 500}\n")

    result = portl("run", "job.yaml", "--log-format", "json")

    assert_clean_failure(result, 1)
    assert "latin.csv line 3001: not valid utf-8 (byte 0xe9)" in result.stderr, result.log
    assert "encoding:" in result.stderr, result.log
    # The batches before the bad line are committed, and only they: resuming can pick up from there.
    counts = result.finished["counts"]
    assert 0 < counts["inserted"] < 3000
    ids = [r[0] for r in query(out_db, "SELECT id FROM t WHERE name <> 'kept' ORDER BY id")]
    assert ids == list(range(1, counts["inserted"] + 1))
    assert query(out_db, "SELECT * FROM t WHERE name = 'kept' ORDER BY id") == KEPT


def test_setting_the_suggested_encoding_and_resuming_loads_the_rest_once(portl, write, tmp_path, out_db):
    _latin1_file(tmp_path / "latin.csv", rows=5000, bad_id=3000)
    write("job.yaml", "source: {type: csv, path: latin.csv}\n" + DESTINATION + "batch: {size: 500}\n")
    assert portl("run", "job.yaml").code == 1
    write("job.yaml", "source: {type: csv, path: latin.csv, encoding: latin-1}\n" + DESTINATION
          + "batch: {size: 500}\n")

    result = portl("run", "job.yaml", "--resume", "--log-format", "json")

    assert result.code == 0, result.log
    assert query(out_db, "SELECT count(*), count(DISTINCT id), sum(amount) FROM t") == [
        (5002, 5002, sum(range(1, 5001)) + 1 + 2)
    ]
    assert query(out_db, "SELECT name FROM t WHERE id = 3000") == [("café",)]
    assert result.report["counts"]["read"] == 5000


def test_ragged_rows_are_rejected_with_their_line_and_the_run_succeeds(portl, write, tmp_path, out_db):
    write("ragged.csv", "id,name,amount\n1,a,10\n2,b\n3,c,30\n4,d,40,extra\n5,e,50\n")
    write("job.yaml", "source: {type: csv, path: ragged.csv}\n" + DESTINATION)

    result = portl("run", "job.yaml", "--log-format", "json")

    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (5, 3, 2)
    assert_balanced(counts)
    rejects = read_rejects(tmp_path / "job.rejects.csv")
    assert [(r["line"], r["record"], r["error"], r["original"]) for r in rejects] == [
        ("3", "2", "expected 3 fields, found 2", "2,b"),
        ("5", "4", "expected 3 fields, found 4", "4,d,40,extra"),
    ]
    assert rows_of(out_db) == [(1, "a", 10), (3, "c", 30), (5, "e", 50)] + KEPT


def test_empty_source_file_fails(portl, write, out_db):
    write("empty.csv", "")
    write("job.yaml", "source: {type: csv, path: empty.csv}\n" + DESTINATION)

    result = portl("run", "job.yaml")

    assert_clean_failure(result)
    assert "empty.csv is empty" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


def test_header_only_source_file_fails_and_points_to_allow_empty(portl, write, out_db):
    write("header.csv", "id,name,amount\n")
    write("job.yaml", "source: {type: csv, path: header.csv}\n" + DESTINATION)

    result = portl("run", "job.yaml")

    assert_clean_failure(result)
    assert "header.csv has a header but no data rows" in result.stderr, result.log
    assert "allow_empty: true" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


def test_header_only_source_file_with_allow_empty_loads_nothing_and_succeeds(portl, write, out_db):
    write("header.csv", "id,name,amount\n")
    write("job.yaml", "source: {type: csv, path: header.csv, allow_empty: true}\n" + DESTINATION)

    result = portl("run", "job.yaml", "--log-format", "json")

    assert result.code == 0, result.log
    assert result.report["status"] == "succeeded"
    buckets = ("read", "inserted", "updated", "skipped", "rejected")
    assert {k: result.report["counts"][k] for k in buckets} == dict.fromkeys(buckets, 0)
    assert rows_of(out_db) == KEPT


# --- values ------------------------------------------------------------------------------------

COERCE_JOB = textwrap.dedent("""
    source: {type: csv, path: values.csv}
    destination: {type: sqlite, path: out.db, table: t}
    batch: {size: 10}
    mapping:
      columns:
        id: {type: bigint}
        name: {}
        amount: {type: int}
""").lstrip()


def test_value_that_fails_coercion_is_rejected_with_line_column_value_and_error(portl, write, tmp_path, out_db):
    write("values.csv", "id,name,amount\n1,a,10\n2,b,x1\n3,c,30\n4,d,4.5\n5,e,50\n6,f,zz\n")
    write("job.yaml", COERCE_JOB)

    result = portl("run", "job.yaml", "--log-format", "json")

    assert result.code == 0, result.log
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (6, 3, 3)
    rejects = read_rejects(tmp_path / "job.rejects.csv")
    assert [(r["line"], r["record"], r["column"], r["value"], r["error"], r["original"]) for r in rejects] == [
        ("3", "2", "amount", "x1", "'x1' is not an integer", "2,b,x1"),
        ("5", "4", "amount", "4.5", "'4.5' is not an integer", "4,d,4.5"),
        ("7", "6", "amount", "zz", "'zz' is not an integer", "6,f,zz"),
    ]
    assert rows_of(out_db) == [(1, "a", 10), (3, "c", 30), (5, "e", 50)] + KEPT
    assert query(out_db, "SELECT DISTINCT typeof(amount) FROM t") == [("integer",)]


def test_more_rejects_than_max_rejects_stops_the_run_with_exit_3(portl, write, tmp_path, out_db):
    lines = ["id,name,amount"] + [f"{i},name{i},{'bad' if i in (2, 3, 4) else i}" for i in range(1, 201)]
    write("values.csv", "\n".join(lines) + "\n")
    write("job.yaml", COERCE_JOB + "validation: {max_rejects: 1}\n")

    result = portl("run", "job.yaml", "--log-format", "json")

    assert_clean_failure(result, 3)
    assert "3 rows rejected, more than validation.max_rejects (1)" in result.stderr, result.log
    assert "job.rejects.csv" in result.stderr, result.log
    # The batch that crossed the limit is committed with its rejects; nothing after it is read.
    assert [r["line"] for r in read_rejects(tmp_path / "job.rejects.csv")] == ["3", "4", "5"]
    counts = result.finished["counts"]
    assert counts["rejected"] == 3 and counts["batches"] == 1 and counts["read"] < 200
    assert_balanced(counts)
    loaded = [r[0] for r in query(out_db, "SELECT id FROM t WHERE name <> 'kept' ORDER BY id")]
    assert loaded == [i for i in range(1, counts["read"] + 1) if i not in (2, 3, 4)]


# --- the destination ---------------------------------------------------------------------------


def test_fail_strategy_reports_every_conflicting_key_and_rolls_back_the_batch(portl, write, tmp_path):
    db = tmp_path / "out.db"
    old = [(k, "old", 0) for k in (71, 72, 73, 74, 75)] + [(500, "old", 0)]
    create_table(db, "t", "id BIGINT PRIMARY KEY, name TEXT, amount BIGINT", old)
    write("data.csv", "id,name,amount\n" + "".join(f"{i},customer {i:05d},{i * 10}\n" for i in range(1, 121)))
    write("job.yaml", """
        source: {type: csv, path: data.csv}
        destination: {type: sqlite, path: out.db, table: t}
        conflict: {key: id, strategy: fail}
        batch: {size: 50}
    """)

    result = portl("run", "job.yaml", "--log-format", "json")

    assert_clean_failure(result, 1)
    assert ("conflict strategy 'fail': 5 keys of this batch already exist in t (id): 71, 72, 73, 74, 75. "
            "The batch was rolled back") in result.stderr, result.log
    committed = result.finished["counts"]
    assert committed["batches"] == 1 and committed["inserted"] == committed["read"] < 71
    # The first batch stays committed; none of the failing batch's rows are there; the old rows are intact.
    new = query(db, "SELECT id FROM t WHERE name <> 'old' ORDER BY id")
    assert [r[0] for r in new] == list(range(1, committed["read"] + 1))
    assert query(db, "SELECT * FROM t WHERE name = 'old' ORDER BY id") == old


def test_missing_destination_column_without_create_missing_columns_names_the_column(portl, write, out_db, data_csv):
    columns_before = query(out_db, "PRAGMA table_info(t)")
    write("job.yaml", """
        source: {type: csv, path: data.csv}
        destination: {type: sqlite, path: out.db, table: t}
        mapping:
          create_missing_columns: false
          columns:
            id: {}
            name: {}
            colour: {from: name}
    """)

    result = portl("run", "job.yaml")

    assert_clean_failure(result)
    assert "no column 'colour'" in result.stderr, result.log
    assert query(out_db, "PRAGMA table_info(t)") == columns_before
    assert rows_of(out_db) == KEPT


# --- hooks -------------------------------------------------------------------------------------

FAILING_HOOK_JOB = (
    "source: {type: csv, path: data.csv}\n" + DESTINATION
    + "hooks:\n  before_batch: {type: script, command: 'echo disk nearly full >&2; exit 7'}\n"
)


def test_failing_hook_script_names_the_hook_and_its_exit_code(portl, write, out_db, data_csv):
    write("job.yaml", FAILING_HOOK_JOB)

    result = portl("run", "job.yaml")

    assert_clean_failure(result, 1)
    expected = r"error: hook before_batch\[0\] \(script '[^']*'\) exited with code 7: disk nearly full"
    assert re.search(expected, result.stderr), result.log
    assert rows_of(out_db) == KEPT


def test_hanging_hook_script_is_stopped_after_its_timeout(portl, write, out_db, data_csv):
    # "; true" keeps the shell alive as the parent of sleep: the whole process tree must be stopped.
    write("job.yaml", "source: {type: csv, path: data.csv}\n" + DESTINATION
          + "hooks:\n  before_batch: {type: script, command: 'sleep 60; true', timeout_s: 1}\n")

    result = portl("run", "job.yaml", timeout=60)

    assert_clean_failure(result, 1)
    assert result.duration_s < 15, result.log
    expected = r"hook before_batch\[0\] \(script 'sleep 60; true'\) timed out after 1 s"
    assert re.search(expected, result.stderr), result.log
    assert rows_of(out_db) == KEPT


def test_debug_shows_the_traceback_of_the_same_failure(portl, write, out_db, data_csv):
    write("job.yaml", FAILING_HOOK_JOB)

    result = portl("run", "job.yaml", "--debug")

    assert result.code == 1, result.log
    assert "Traceback (most recent call last)" in result.stderr, result.log
    assert "HookError" in result.stderr, result.log
    assert "exited with code 7: disk nearly full" in result.stderr, result.log
    assert rows_of(out_db) == KEPT


def test_error_text_with_square_brackets_is_printed_as_written(portl):
    result = portl("run", "jobs[v1].yaml")

    assert_clean_failure(result, 2)
    assert "job file jobs[v1].yaml does not exist" in result.stderr, result.log


def test_a_whole_database_copy_into_a_destination_that_cannot_take_one_says_which_can(portl, write, tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT)")
    write("job.yaml", """
        source: {type: sqlite, path: src.db, tables: "*"}
        destination: {type: sqlite, path: dst.db}
    """)

    result = portl("plan", "job.yaml")

    assert result.code == 2, result.log
    said = " ".join(result.stderr.split())
    assert "job.yaml:2:14: a sqlite destination cannot receive a whole-database copy" in said, result.log
    assert "copy into mysql or postgres, or copy each table with its own job" in said, result.log
    assert not (tmp_path / "dst.db").exists()
