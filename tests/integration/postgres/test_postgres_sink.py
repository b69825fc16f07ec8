"""Writing PostgreSQL tables: COPY appends, upserts through a staging table, checkpoints."""

from __future__ import annotations

import datetime
import decimal

import pyarrow as pa
import pytest

from portl.connectors.base import Checkpoint, ConflictStrategy, WriteMode, WriteSpec
from portl.errors import ConflictError, TerminalError
from portl.types import LogicalType, arrow_field
from tests.integration.postgres.helpers import rows_of, write_batch

APPEND = WriteSpec(WriteMode.APPEND)

SCHEMA = pa.schema([
    pa.field("id", pa.int32()), pa.field("big", pa.int64()), pa.field("price", pa.decimal128(12, 2)),
    pa.field("score", pa.float64()), pa.field("ok", pa.bool_()), pa.field("name", pa.string()),
    pa.field("day", pa.date32()), pa.field("at", pa.timestamp("us")), pa.field("at_tz", pa.timestamp("us", tz="UTC")),
    arrow_field("doc", LogicalType("json")), arrow_field("ident", LogicalType("uuid")), pa.field("raw", pa.binary()),
])

FULL = {
    "id": 1, "big": 2**40, "price": decimal.Decimal("-1234.50"), "score": 0.1, "ok": True, "name": 'a "b", c\nd',
    "day": datetime.date(2024, 2, 29), "at": datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    "at_tz": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "doc": '{"k": [1, null]}',
    "ident": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "raw": b"\x00\\\xff",
}
EMPTY = {"id": 2, "big": None, "price": None, "score": None, "ok": False, "name": "", "day": None, "at": None,
         "at_tz": None, "doc": None, "ident": None, "raw": b""}
NULLS = {name: None for name in SCHEMA.names} | {"id": 3}

PEOPLE = pa.schema([pa.field("id", pa.int32()), pa.field("name", pa.string()), pa.field("city", pa.string())])


def people(*rows):
    return pa.RecordBatch.from_pylist([dict(zip(["id", "name", "city"], r)) for r in rows], schema=PEOPLE)


def upsert(strategy):
    return WriteSpec(WriteMode.UPSERT, ("id",), strategy)


def test_append_creates_the_table_with_the_type_map(pg, sink):
    s = sink("t")
    s.prepare(SCHEMA, APPEND, resuming=False)
    declared = dict(rows_of(pg, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert declared == {
        "id": "integer", "big": "bigint", "price": "numeric", "score": "double precision", "ok": "boolean",
        "name": "text", "day": "date", "at": "timestamp without time zone", "at_tz": "timestamp with time zone",
        "doc": "jsonb", "ident": "uuid", "raw": "bytea",
    }
    assert rows_of(pg, "SELECT numeric_precision, numeric_scale FROM information_schema.columns WHERE column_name = 'price'") == [(12, 2)]


def test_append_copies_every_type_and_keeps_null_apart_from_empty(pg, sink):
    s = sink("t")
    s.prepare(SCHEMA, APPEND, resuming=False)
    result = write_batch(s, pa.RecordBatch.from_pylist([FULL, EMPTY, NULLS], schema=SCHEMA), APPEND)
    assert (result.inserted, result.updated, result.skipped) == (3, 0, 0)
    got = rows_of(pg, "SELECT id, big, price, score, ok, name, day, at, at_tz, doc, ident::text, raw FROM t ORDER BY id")
    assert got[0] == (1, 2**40, decimal.Decimal("-1234.50"), 0.1, True, 'a "b", c\nd', datetime.date(2024, 2, 29),
                      datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                      {"k": [1, None]}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", b"\x00\\\xff")
    assert got[1] == (2, None, None, None, False, "", None, None, None, None, None, b"")
    assert got[2] == (3,) + (None,) * 11


def test_append_into_an_existing_table_fills_defaults_of_unmapped_columns(pg, sink):
    pg.execute("CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL, city text, created date DEFAULT '2020-01-01')")
    s = sink("t")
    schema = pa.schema([pa.field("name", pa.string()), pa.field("city", pa.string())])
    s.prepare(schema, APPEND, resuming=False)
    write_batch(s, pa.RecordBatch.from_pylist([{"name": "a", "city": None}, {"name": "b", "city": "x"}], schema=schema), APPEND)
    assert rows_of(pg, "SELECT id, name, city, created::text FROM t ORDER BY id") == [
        (1, "a", None, "2020-01-01"), (2, "b", "x", "2020-01-01")]


def test_a_missing_column_is_added(pg, sink):
    pg.execute("CREATE TABLE t (id int)")
    s = sink("t")
    plan = s.plan(PEOPLE, APPEND)
    assert plan.ddl == ['ALTER TABLE "public"."t" ADD COLUMN "name" text', 'ALTER TABLE "public"."t" ADD COLUMN "city" text']
    s.prepare(PEOPLE, APPEND, resuming=False)
    write_batch(s, people((1, "ann", "oslo")), APPEND)
    assert rows_of(pg, "SELECT id, name, city FROM t") == [(1, "ann", "oslo")]


@pytest.mark.parametrize("strategy, rows, counts", [
    (ConflictStrategy.SKIP, [(1, "ann", "oslo"), (2, "bob", "rome"), (3, "cy", "lima")], (1, 0, 2)),
    (ConflictStrategy.OVERWRITE, [(1, "ANN", None), (2, "BOB", "paris"), (3, "cy", "lima")], (1, 2, 0)),
    (ConflictStrategy.MERGE, [(1, "ANN", "oslo"), (2, "BOB", "paris"), (3, "cy", "lima")], (1, 2, 0)),
])
def test_upsert_strategies_count_inserted_and_updated_rows(pg, sink, strategy, rows, counts):
    s = sink("t")
    spec = upsert(strategy)
    s.prepare(PEOPLE, spec, resuming=False)
    write_batch(s, people((1, "ann", "oslo"), (2, "bob", "rome")), spec)
    result = write_batch(s, people((1, "ANN", None), (2, "BOB", "paris"), (3, "cy", "lima")), spec)
    assert (result.inserted, result.updated, result.skipped) == counts
    assert rows_of(pg, "SELECT id, name, city FROM t ORDER BY id") == rows


def test_upsert_creates_the_table_with_the_key_as_primary_key(pg, sink):
    s = sink("t")
    s.prepare(PEOPLE, upsert(ConflictStrategy.OVERWRITE), resuming=False)
    assert rows_of(pg, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                       "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 't'::regclass AND i.indisprimary") == [("id",)]


def test_upsert_uses_a_unique_index_and_leaves_not_null_defaults_to_the_table(pg, sink):
    pg.execute("CREATE TABLE t (rowid serial PRIMARY KEY, id int NOT NULL, name text, city text, "
               "touched text NOT NULL DEFAULT 'no'); CREATE UNIQUE INDEX t_id ON t (id); "
               "INSERT INTO t (id, name) VALUES (1, 'ann')")
    s = sink("t")
    spec = upsert(ConflictStrategy.OVERWRITE)
    s.prepare(PEOPLE, spec, resuming=False)
    result = write_batch(s, people((1, "ANN", "oslo"), (2, "bob", None)), spec)
    assert (result.inserted, result.updated) == (1, 1)
    assert rows_of(pg, "SELECT rowid, id, name, city, touched FROM t ORDER BY id") == [
        (1, 1, "ANN", "oslo", "no"), (3, 2, "bob", None, "no")]


def test_upsert_with_only_key_columns_counts_existing_rows_as_updated(pg, sink):
    schema = pa.schema([pa.field("id", pa.int32())])
    s = sink("t")
    spec = upsert(ConflictStrategy.OVERWRITE)
    s.prepare(schema, spec, resuming=False)
    write_batch(s, pa.RecordBatch.from_pylist([{"id": 1}], schema=schema), spec)
    result = write_batch(s, pa.RecordBatch.from_pylist([{"id": 1}, {"id": 2}], schema=schema), spec)
    assert (result.inserted, result.updated) == (1, 1)


def test_upsert_refuses_a_table_without_a_unique_key_and_says_how_to_add_one(pg, sink):
    pg.execute("CREATE TABLE t (id int, name text, city text)")
    with pytest.raises(TerminalError, match=r'no primary key or unique index on \(id\).*CREATE UNIQUE INDEX ON "public"."t" \("id"\)'):
        sink("t").plan(PEOPLE, upsert(ConflictStrategy.SKIP))


def test_fail_strategy_lists_every_conflicting_key_and_rolls_the_batch_back(pg, sink):
    s = sink("t")
    spec = upsert(ConflictStrategy.FAIL)
    s.prepare(PEOPLE, spec, resuming=False)
    write_batch(s, people(*[(i, f"n{i}", "x") for i in range(1, 31)]), spec)
    batch = people(*[(i, "new", "y") for i in (5, 40, 12, 41, 30)])
    with pytest.raises(ConflictError) as caught:
        with s.transaction() as tx:
            s.write(batch, spec, tx)
            s.save_checkpoint(tx, "run1", Checkpoint("0", {"offset": 5}, 5), {})
    assert sorted(caught.value.keys) == [(5,), (12,), (30,)]
    assert "3 keys of this batch already exist in public.t (id): 5, 12, 30" in str(caught.value)
    assert rows_of(pg, "SELECT count(*), count(*) FILTER (WHERE name = 'new') FROM t") == [(30, 0)]
    assert s.load_checkpoints("run1") == {}


def test_fail_strategy_inserts_a_batch_without_conflicts(pg, sink):
    s = sink("t")
    spec = upsert(ConflictStrategy.FAIL)
    s.prepare(PEOPLE, spec, resuming=False)
    write_batch(s, people((1, "a", "x")), spec)
    assert write_batch(s, people((2, "b", "y"), (3, "c", "z")), spec).inserted == 2
    assert rows_of(pg, "SELECT count(*) FROM t") == [(3,)]


def test_a_checkpoint_commits_with_its_batch(pg, sink):
    s = sink("t")
    s.prepare(PEOPLE, APPEND, resuming=False)
    with s.transaction() as tx:
        s.write(people((1, "a", "x")), APPEND, tx)
        s.save_checkpoint(tx, "run1", Checkpoint("0", {"offset": 1}, 1), {"counts": {"read": 1}})
    (cp, state), = s.load_checkpoints("run1").values()
    assert (cp.position, cp.rows, state) == ({"offset": 1}, 1, {"counts": {"read": 1}})


def test_a_checkpoint_rolls_back_with_its_batch(pg, sink):
    s = sink("t")
    s.prepare(PEOPLE, APPEND, resuming=False)
    with pytest.raises(RuntimeError):
        with s.transaction() as tx:
            s.write(people((1, "a", "x")), APPEND, tx)
            s.save_checkpoint(tx, "run1", Checkpoint("0", {"offset": 1}, 1), {})
            raise RuntimeError("crash before commit")
    assert rows_of(pg, "SELECT count(*) FROM t") == [(0,)]
    assert s.load_checkpoints("run1") == {}


def test_load_checkpoints_before_any_run_is_empty(pg, sink):
    assert sink("t").load_checkpoints("run1") == {}


def test_a_non_default_schema_is_created_and_written(pg, sink):
    s = sink("sales.orders")
    spec = upsert(ConflictStrategy.OVERWRITE)
    s.prepare(PEOPLE, spec, resuming=False)
    write_batch(s, people((1, "a", "x")), spec)
    write_batch(s, people((1, "b", "y")), spec)
    with s.transaction() as tx:
        s.save_checkpoint(tx, "r", Checkpoint("0", {}, 1), {})
    assert rows_of(pg, "SELECT id, name FROM sales.orders") == [(1, "b")]
    assert rows_of(pg, "SELECT count(*) FROM sales._portl_checkpoints") == [(1,)]
    assert s.table_info().primary_key == ["id"]
    assert s.count_rows() == 1


def test_schema_field_names_the_schema_of_an_unqualified_table(pg, sink):
    pg.execute("CREATE SCHEMA crm; CREATE TABLE crm.t (id int PRIMARY KEY, name text)")
    s = sink("t", schema="crm")
    info = s.table_info()
    assert (info.name, info.primary_key, [c.name for c in info.columns]) == ("crm.t", ["id"], ["id", "name"])


def test_table_info_reports_types_nullability_defaults_and_keys(pg, sink):
    pg.execute("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, "
               "amount numeric(9,3) DEFAULT 0, a int, b int, UNIQUE (a, b))")
    info = sink("t").table_info()
    assert [(c.name, str(c.type), c.declared, c.nullable, c.has_default) for c in info.columns] == [
        ("id", "int64", "bigint", False, True), ("code", "string", "text", False, False),
        ("amount", "decimal128(9, 3)", "numeric(9,3)", True, True), ("a", "int32", "integer", True, False),
        ("b", "int32", "integer", True, False)]
    assert info.primary_key == ["id"]
    assert sorted(info.unique_keys) == [["a", "b"], ["code"]]


def test_table_info_of_a_missing_table_is_none(pg, sink):
    assert sink("nope").table_info() is None


def test_writers_on_four_connections_commit_independently(pg, sink):
    import threading

    s = sink("t")
    s.prepare(PEOPLE, APPEND, resuming=False)
    barrier = threading.Barrier(4)
    backends = set()

    def writer(n):
        with s.transaction() as tx:
            barrier.wait(timeout=10)  # all four transactions are open at once
            backends.add(tx.conn.info.backend_pid)
            s.write(people(*[(n * 100 + i, "w", str(n)) for i in range(50)]), APPEND, tx)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(backends) == 4
    assert rows_of(pg, "SELECT city, count(*) FROM t GROUP BY city ORDER BY city") == [(str(n), 50) for n in range(4)]


def test_the_plan_shows_the_statements_that_run(pg, sink):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, name text, city text)")
    plan = sink("t").plan(PEOPLE, upsert(ConflictStrategy.MERGE))
    assert plan.ddl == []
    copy = [s for s in plan.per_batch if s.startswith("COPY")]
    assert len(copy) == 1 and copy[0].startswith('COPY "pg_temp"."_portl_stage_') and copy[0].endswith(
        '("id", "name", "city") FROM STDIN (FORMAT binary)')
    (statement,) = [s for s in plan.per_batch if s.startswith("WITH up AS")]
    assert 'ON CONFLICT ("id") DO UPDATE SET "name" = COALESCE(EXCLUDED."name", "public"."t"."name")' in statement
    assert "RETURNING (xmax = 0) AS inserted" in statement


def test_sinks_preparing_tables_of_one_new_schema_at_once_do_not_collide(pg, sink):
    import threading

    sinks = [sink(f"fresh.t{i}") for i in range(4)]
    barrier = threading.Barrier(len(sinks))
    errors = []

    def prepare(s):
        try:
            barrier.wait(timeout=10)
            s.prepare(PEOPLE, APPEND, resuming=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rows_of(pg, "SELECT count(*) FROM pg_tables WHERE schemaname = 'fresh'") == [(5,)]  # 4 tables + checkpoints
