import decimal
import sqlite3

import pyarrow as pa
import pytest

from portl.connectors.base import ConflictStrategy, WriteMode, WriteSpec
from portl.connectors.sqlite import Config, SqliteSink, SqliteSource
from portl.errors import ConflictError, SourceError, TerminalError
from portl.types import LogicalType, arrow_field

SCHEMA = pa.schema([
    pa.field("id", pa.int64()), pa.field("name", pa.string()), pa.field("price", pa.decimal128(10, 2)),
    pa.field("day", pa.date32()), pa.field("active", pa.bool_()), arrow_field("doc", LogicalType("json")),
])


def make_batch(rows):
    return pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def row(i, name="n", price="1.50", active=True, doc='{"a": 1}'):
    import datetime

    return {"id": i, "name": name, "price": decimal.Decimal(price), "day": datetime.date(2024, 1, i % 28 + 1),
            "active": active, "doc": doc}


def sink(tmp_path, table="t"):
    return SqliteSink(Config(type="sqlite", path="out.db", table=table), str(tmp_path))


def write(s, batch, spec):
    with s.transaction() as tx:
        return s.write(batch, spec, tx)


def test_append_creates_the_table_with_the_type_map(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.APPEND)
    s.prepare(SCHEMA, spec, resuming=False)
    assert write(s, make_batch([row(1), row(2)]), spec).inserted == 2
    declared = {r[1]: r[2] for r in s.conn.execute("PRAGMA table_info(t)")}
    assert declared == {"id": "BIGINT", "name": "TEXT", "price": "DECIMAL(10,2)", "day": "DATE", "active": "BOOLEAN", "doc": "JSONTEXT"}
    assert s.conn.execute("SELECT id, price, day, active, doc FROM t ORDER BY id").fetchall() == [
        (1, 1.5, "2024-01-02", 1, '{"a": 1}'), (2, 1.5, "2024-01-03", 1, '{"a": 1}')]


def test_values_read_back_with_their_logical_types(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.APPEND)
    s.prepare(SCHEMA, spec, resuming=False)
    write(s, make_batch([row(1, price="1234.50", doc="1e5")]), spec)
    source = SqliteSource(Config(type="sqlite", path="out.db", table="t"), str(tmp_path))
    chunks = list(source.read(100, None))
    got = chunks[0].data.to_pylist()[0]
    assert got["price"] == decimal.Decimal("1234.50")
    assert got["doc"] == "1e5"
    assert got["active"] is True
    assert str(got["day"]) == "2024-01-02"


def test_upsert_overwrite_counts_inserted_and_updated(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    s.prepare(SCHEMA, spec, resuming=False)
    write(s, make_batch([row(1, "a"), row(2, "b")]), spec)
    result = write(s, make_batch([row(2, "B"), row(3, "c")]), spec)
    assert (result.inserted, result.updated) == (1, 1)
    assert s.conn.execute("SELECT id, name FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "B"), (3, "c")]


def test_upsert_skip_leaves_existing_rows_alone(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.SKIP)
    s.prepare(SCHEMA, spec, resuming=False)
    write(s, make_batch([row(1, "a")]), spec)
    result = write(s, make_batch([row(1, "changed"), row(2, "b")]), spec)
    assert (result.inserted, result.skipped) == (1, 1)
    assert s.conn.execute("SELECT name FROM t WHERE id = 1").fetchone() == ("a",)


def test_upsert_merge_keeps_existing_values_where_the_incoming_one_is_null(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.MERGE)
    s.prepare(SCHEMA, spec, resuming=False)
    write(s, make_batch([row(1, "kept", doc='{"v": 1}')]), spec)
    write(s, make_batch([{**row(1, None), "doc": '{"v": 2}'}]), spec)
    assert s.conn.execute("SELECT name, doc FROM t").fetchone() == ("kept", '{"v": 2}')


def test_upsert_fail_rolls_back_and_reports_every_conflicting_key(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.FAIL)
    s.prepare(SCHEMA, spec, resuming=False)
    write(s, make_batch([row(1), row(2)]), spec)
    with pytest.raises(ConflictError) as caught:
        write(s, make_batch([row(3), row(1), row(2)]), spec)
    assert sorted(caught.value.keys) == [(1,), (2,)]
    assert "2 keys" in str(caught.value)
    assert s.conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_upsert_into_a_table_without_a_unique_key_is_refused_with_advice(tmp_path):
    db = sqlite3.connect(tmp_path / "out.db")
    db.execute("CREATE TABLE t (id BIGINT, name TEXT)")
    db.commit()
    s = sink(tmp_path)
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    with pytest.raises(TerminalError, match="no primary key or unique index on \\(id\\).*CREATE UNIQUE INDEX"):
        s.plan(schema, WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE))


def test_replace_empties_the_table_in_the_first_batch_transaction(tmp_path):
    s = sink(tmp_path)
    append = WriteSpec(WriteMode.APPEND)
    s.prepare(SCHEMA, append, resuming=False)
    write(s, make_batch([row(1), row(2)]), append)
    replace = WriteSpec(WriteMode.REPLACE)
    s.prepare(SCHEMA, replace, resuming=False)
    assert s.count_rows() == 2  # nothing removed before the first batch commits
    write(s, make_batch([row(9)]), replace)
    assert s.conn.execute("SELECT id FROM t").fetchall() == [(9,)]


def test_checkpoint_commits_with_its_batch_and_rolls_back_with_it(tmp_path):
    from portl.connectors.base import Checkpoint

    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.APPEND)
    s.prepare(SCHEMA, spec, resuming=False)
    with s.transaction() as tx:
        s.write(make_batch([row(1)]), spec, tx)
        s.save_checkpoint(tx, "run1", Checkpoint("0", {"offset": 10}, 1), {"counts": {"read": 1}})
    with pytest.raises(RuntimeError):
        with s.transaction() as tx:
            s.write(make_batch([row(2)]), spec, tx)
            s.save_checkpoint(tx, "run1", Checkpoint("0", {"offset": 20}, 2), {"counts": {"read": 2}})
            raise RuntimeError("killed")
    saved = s.load_checkpoints("run1")
    assert saved["0"][0].position == {"offset": 10}
    assert s.count_rows() == 1


def test_a_table_source_reads_in_partitions_that_cover_every_row_once(tmp_path):
    db = sqlite3.connect(tmp_path / "in.db")
    db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 1001)])
    db.commit()
    source = SqliteSource(Config(type="sqlite", path="in.db", table="src"), str(tmp_path))
    seen = []
    for start in source.partitions(3):
        for chunk in source.read(128, start):
            seen += chunk.data.column("id").to_pylist()
    assert sorted(seen) == list(range(1, 1001))


def test_a_table_source_resumes_after_its_checkpoint(tmp_path):
    db = sqlite3.connect(tmp_path / "in.db")
    db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 301)])
    db.commit()
    source = SqliteSource(Config(type="sqlite", path="in.db", table="src"), str(tmp_path))
    chunks = list(source.read(100, None))
    rest = [r for c in source.read(100, chunks[0].checkpoint) for r in c.data.column("id").to_pylist()]
    assert rest == list(range(101, 301))


def test_a_value_that_does_not_fit_its_declared_type_rejects_only_its_row(tmp_path):
    db = sqlite3.connect(tmp_path / "in.db")
    db.execute("CREATE TABLE src (id INTEGER, d DATE)")
    db.executemany("INSERT INTO src VALUES (?, ?)", [(1, "2024-01-01"), ("oops", "2024-01-02"), (3, "2024-01-03")])
    db.commit()
    source = SqliteSource(Config(type="sqlite", path="in.db", table="src"), str(tmp_path))
    (chunk,) = list(source.read(10, None))
    assert chunk.data.column("id").to_pylist() == [1, 3]
    assert [(r.record, r.column, r.value) for r in chunk.rejects] == [(2, "id", "oops")]


def test_a_missing_table_is_a_clear_source_error(tmp_path):
    sqlite3.connect(tmp_path / "in.db").close()
    with pytest.raises(SourceError, match="table 'nope' not found"):
        SqliteSource(Config(type="sqlite", path="in.db", table="nope"), str(tmp_path))


def test_a_query_source_reads_its_rows(tmp_path):
    db = sqlite3.connect(tmp_path / "in.db")
    db.execute("CREATE TABLE src (id INTEGER, v TEXT)")
    db.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"v{i}") for i in range(10)])
    db.commit()
    source = SqliteSource(Config(type="sqlite", path="in.db", query="SELECT id, v FROM src WHERE id >= 5"), str(tmp_path))
    rows = [r for c in source.read(3, None) for r in c.data.to_pylist()]
    assert [r["id"] for r in rows] == [5, 6, 7, 8, 9]


def test_nan_is_stored_as_null_and_named_in_the_sinks_warnings(tmp_path):
    s = sink(tmp_path)
    spec = WriteSpec(WriteMode.APPEND)
    batch = pa.record_batch({"id": [1, 2, 3], "x": [float("nan"), float("inf"), 1.5]})
    s.prepare(batch.schema, spec, resuming=False)
    write(s, batch, spec)
    assert s.conn.execute("SELECT x FROM t ORDER BY id").fetchall() == [(None,), (float("inf"),), (1.5,)]
    assert s.warnings() == ["NaN values became NULL in column x: SQLite cannot hold NaN"]


def test_a_real_in_a_wide_decimal_column_reads_back_as_its_15_significant_digits(tmp_path):
    conn = sqlite3.connect(tmp_path / "in.db")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, amount DECIMAL(38,10), price DECIMAL(12,2))")
    conn.execute("INSERT INTO t VALUES (1, '1234567890123456789012345678.9', '12.30'), (2, '0.1', '-0.01')")
    conn.commit()
    conn.close()
    source = SqliteSource(Config(type="sqlite", path="in.db", table="t"), str(tmp_path))
    rows = [r for chunk in source.read(100, None) for r in chunk.data.to_pylist()]
    assert [(r["amount"], r["price"]) for r in rows] == [
        (decimal.Decimal("1234567890123460000000000000.0000000000"), decimal.Decimal("12.30")),
        (decimal.Decimal("0.1000000000"), decimal.Decimal("-0.01")),
    ]
