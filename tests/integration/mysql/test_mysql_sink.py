"""Writing MySQL: bulk appends, upserts, the replace swap, checkpoints and parallel writers."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from portl.connectors.base import Checkpoint, ConflictStrategy, WriteMode, WriteSpec
from portl.connectors.mysql import sink as sink_module
from portl.errors import ConflictError, TerminalError
from tests.integration.mysql.support import append, write_batches


def people(ids, names=None, cities=None) -> pa.RecordBatch:
    ids = list(ids)
    names = names or [f"n{i}" for i in ids]
    cities = cities or [f"c{i}" for i in ids]
    return pa.RecordBatch.from_pydict({"id": pa.array(ids, pa.int32()), "name": names, "city": cities})


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of the sink's two bulk paths."""
    calls = {"load_batch": 0, "insert_batch": 0}
    for name in calls:
        real = getattr(sink_module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(sink_module, name, counted)
    return calls


def test_append_loads_each_batch_with_load_data_local_infile(sink, sql, spy):
    s = sink("t")
    assert s.capabilities.bulk_method.startswith("LOAD DATA LOCAL INFILE")
    results = append(s, people(range(1, 1001)), people(range(1001, 1501)))
    assert [r.inserted for r in results] == [1000, 500]
    assert spy == {"load_batch": 2, "insert_batch": 0}
    assert sql("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM t") == [(1500, 1500, 1, 1500)]
    assert sql("SELECT name, city FROM t WHERE id = 777") == [("n777", "c777")]


def test_with_local_infile_false_batches_go_in_multi_row_inserts(sink, sql, spy):
    s = sink("t", local_infile=False)
    assert s.capabilities.bulk_method.startswith("multi-row INSERT")
    plan = s.plan(people([1]).schema, WriteSpec(WriteMode.APPEND))
    assert any(line.startswith("INSERT INTO") for line in plan.per_batch)
    results = append(s, people(range(1, 12_001)))  # more rows than one statement takes
    assert results[0].inserted == 12_000
    assert spy == {"load_batch": 0, "insert_batch": 1}
    assert sql("SELECT COUNT(*), SUM(id) FROM t") == [(12_000, 12_000 * 12_001 // 2)]


def test_insert_fallback_keeps_bytes_bools_nulls_and_empty_strings(sink, sql):
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int32()), "raw": pa.array([b"\x00\xff'", None], pa.binary()),
                                        "ok": [True, None], "note": ["", None]})
    append(sink("t", local_infile=False), batch)
    assert sql("SELECT id, raw, ok, note FROM t ORDER BY id") == [(1, b"\x00\xff'", 1, ""), (2, None, None, None)]


def upsert(s, batch, strategy, key=("id",)):
    return write_batches(s, [batch], WriteSpec(WriteMode.UPSERT, key, strategy))[0]


@pytest.fixture
def two_people(sql):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), city VARCHAR(20))")
    sql("INSERT INTO t VALUES (1, 'ann', 'oslo'), (2, 'bob', 'rome')")


INCOMING = people([1, 2, 3], ["ANN", "BOB", "cy"], [None, "paris", "lima"])


def test_upsert_skip_counts_inserted_and_skipped_rows_and_changes_nothing_existing(two_people, sink, sql):
    result = upsert(sink("t"), INCOMING, ConflictStrategy.SKIP)
    assert (result.inserted, result.updated, result.skipped) == (1, 0, 2)
    assert sql("SELECT * FROM t ORDER BY id") == [(1, "ann", "oslo"), (2, "bob", "rome"), (3, "cy", "lima")]


def test_upsert_overwrite_counts_updates_and_replaces_every_column(two_people, sink, sql):
    result = upsert(sink("t"), INCOMING, ConflictStrategy.OVERWRITE)
    assert (result.inserted, result.updated, result.skipped) == (1, 2, 0)
    assert sql("SELECT * FROM t ORDER BY id") == [(1, "ANN", None), (2, "BOB", "paris"), (3, "cy", "lima")]


def test_upsert_merge_keeps_existing_values_where_the_incoming_ones_are_null(two_people, sink, sql):
    result = upsert(sink("t"), INCOMING, ConflictStrategy.MERGE)
    assert (result.inserted, result.updated, result.skipped) == (1, 2, 0)
    assert sql("SELECT * FROM t ORDER BY id") == [(1, "ANN", "oslo"), (2, "BOB", "paris"), (3, "cy", "lima")]


def test_fail_strategy_lists_every_conflicting_key_and_rolls_the_batch_back(sql, sink):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), city VARCHAR(20))")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i}, 'old', 'x')" for i in range(1, 26)))
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.FAIL)
    with pytest.raises(ConflictError) as caught:
        write_batches(s, [people(range(20, 51))], spec)
    assert sorted(caught.value.keys) == [(i,) for i in range(20, 26)]
    assert "6 keys of this batch already exist in t (id): 20, 21, 22, 23, 24, 25" in str(caught.value)
    assert sql("SELECT COUNT(*), MAX(id), SUM(name = 'old') FROM t") == [(25, 25, 25)]
    assert s.load_checkpoints("run-1") == {}


def test_fail_strategy_reports_more_than_twenty_keys_with_a_count(sql, sink):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, city TEXT)")
    sql("INSERT INTO t VALUES " + ", ".join(f"({i}, 'old', 'x')" for i in range(1, 31)))
    with pytest.raises(ConflictError) as caught:
        write_batches(sink("t"), [people(range(1, 41))], WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.FAIL))
    assert len(caught.value.keys) == 30 and "and 10 more" in str(caught.value)


def test_upsert_into_a_missing_table_creates_it_with_the_key_as_primary_key(sink, sql):
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("code",), ConflictStrategy.OVERWRITE)
    batch = pa.RecordBatch.from_pydict({"code": ["a", "b"], "n": pa.array([1, 2], pa.int32())})
    plan = s.plan(batch.schema, spec)
    assert "PRIMARY KEY (`code`)" in plan.ddl[0] and "`code` VARCHAR(255) NOT NULL" in plan.ddl[0]
    assert any("key column code is created as VARCHAR(255)" in note for note in plan.notes)
    write_batches(s, [batch], spec)
    result = write_batches(s, [pa.RecordBatch.from_pydict({"code": ["b", "c"], "n": pa.array([20, 30], pa.int32())})], spec)[0]
    assert (result.inserted, result.updated) == (1, 1)
    assert sql("SELECT code, n FROM t ORDER BY code") == [("a", 1), ("b", 20), ("c", 30)]


def test_upsert_without_a_unique_index_on_the_key_is_refused_with_the_statement_to_add_one(sql, sink, database):
    sql("CREATE TABLE t (id INT, name VARCHAR(20), city VARCHAR(20))")
    with pytest.raises(TerminalError) as caught:
        sink("t").plan(INCOMING.schema, WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.SKIP))
    assert "no primary key or unique index on (id)" in str(caught.value)
    assert f"ALTER TABLE `{database}`.`t` ADD UNIQUE KEY (`id`)" in str(caught.value)


def test_the_plan_warns_that_other_unique_keys_also_fire_on_duplicate_key(sql, sink):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20) UNIQUE, city VARCHAR(20))")
    plan = sink("t").plan(INCOMING.schema, WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE))
    assert any("other unique keys besides (id): (name)" in note and "fires on any of them" in note for note in plan.notes)
    assert any("ON DUPLICATE KEY UPDATE" in line for line in plan.per_batch)


def test_a_new_column_is_added_before_loading(sql, sink):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))")
    s = sink("t")
    plan = s.plan(people([1]).schema, WriteSpec(WriteMode.APPEND))
    assert plan.ddl == [f"ALTER TABLE `{s.database}`.`t` ADD COLUMN `city` LONGTEXT"]
    append(s, people([1]))
    assert sql("SELECT * FROM t") == [(1, "n1", "c1")]


@pytest.fixture
def old_rows(sql):
    sql("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), city VARCHAR(20), KEY by_city (city))")
    sql("INSERT INTO t VALUES (1, 'old', 'x'), (2, 'old', 'y')")


def tables(sql) -> list[str]:
    return [r[0] for r in sql("SHOW TABLES")]


def test_replace_loads_a_new_table_and_swaps_it_in_when_the_run_finishes(old_rows, sink, sql):
    s = sink("t")
    spec = WriteSpec(WriteMode.REPLACE)
    plan = s.plan(people([1]).schema, spec)
    assert plan.ddl[1].startswith("CREATE TABLE") and plan.ddl[1].endswith(f"`t__portl_new` LIKE `{s.database}`.`t`")
    assert any(line.startswith("-- once, after the last batch: DROP TABLE IF EXISTS") and "`t__portl_new` TO" in line
               for line in plan.per_batch)
    write_batches(s, [people(range(10, 15)), people(range(15, 20))], spec, finish=False)
    assert sql("SELECT COUNT(*), MAX(name) FROM t") == [(2, "old")]  # readers still see the old rows
    assert s.count_rows() == 10  # the row-count check counts the table being loaded
    s.finish("run-1")
    assert sql("SELECT MIN(id), MAX(id), COUNT(*) FROM t") == [(10, 19, 10)]
    assert sorted(tables(sql)) == ["_portl_checkpoints", "t"]
    assert ("by_city",) in sql("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                               "AND TABLE_NAME = 't'")


def test_a_resumed_replace_continues_the_new_table(old_rows, sink, sql):
    spec = WriteSpec(WriteMode.REPLACE)
    write_batches(sink("t"), [people(range(10, 15))], spec, finish=False)
    again = sink("t")
    write_batches(again, [people(range(15, 20))], spec, resuming=True)
    assert sql("SELECT MIN(id), MAX(id), COUNT(*) FROM t") == [(10, 19, 10)]


def test_a_resumed_replace_whose_swap_already_happened_leaves_the_table_alone(old_rows, sink, sql):
    spec = WriteSpec(WriteMode.REPLACE)
    write_batches(sink("t"), [people(range(10, 15))], spec)
    sql("CREATE TABLE t__portl_old (id INT)")  # as if the run stopped between the RENAME and the DROP
    again = sink("t")
    again.prepare(people([1]).schema, spec, resuming=True)
    again.finish("run-1")
    assert sql("SELECT COUNT(*) FROM t") == [(5,)]
    assert sorted(tables(sql)) == ["_portl_checkpoints", "t"]


def test_a_replace_swap_clears_an_old_table_left_by_an_interrupted_swap(old_rows, sink, sql):
    sql("CREATE TABLE t__portl_old (id INT)")
    write_batches(sink("t"), [people(range(10, 12))], WriteSpec(WriteMode.REPLACE))
    assert sql("SELECT COUNT(*) FROM t") == [(2,)]
    assert sorted(tables(sql)) == ["_portl_checkpoints", "t"]


def test_replace_of_a_table_that_foreign_keys_point_at_is_refused_with_advice(old_rows, sql, sink):
    sql("CREATE TABLE child (id INT PRIMARY KEY, t_id INT, FOREIGN KEY (t_id) REFERENCES t (id))")
    with pytest.raises(TerminalError, match="foreign keys of child point at it.*use mode append"):
        sink("t").plan(people([1]).schema, WriteSpec(WriteMode.REPLACE))


def test_a_checkpoint_rolls_back_with_its_batch(sink, sql):
    s = sink("t")
    spec = WriteSpec(WriteMode.APPEND)
    s.plan(people([1]).schema, spec)
    s.prepare(people([1]).schema, spec, resuming=False)
    with pytest.raises(RuntimeError, match="crash before commit"):
        with s.transaction() as tx:
            s.write(people(range(1, 101)), spec, tx)
            s.save_checkpoint(tx, "run-1", Checkpoint("0", {"offset": 100}, 100), {"counts": {"read": 100}})
            raise RuntimeError("crash before commit")
    assert sql("SELECT COUNT(*) FROM t") == [(0,)]
    assert s.load_checkpoints("run-1") == {}
    with s.transaction() as tx:
        s.write(people(range(1, 101)), spec, tx)
        s.save_checkpoint(tx, "run-1", Checkpoint("0", {"offset": 100}, 100), {"counts": {"read": 100}})
    assert s.load_checkpoints("run-1") == {"0": (Checkpoint("0", {"offset": 100}, 100), {"counts": {"read": 100}})}


def test_four_writers_write_at_once_each_on_its_own_connection(sink, sql):
    s = sink("t")
    spec = WriteSpec(WriteMode.UPSERT, ("id",), ConflictStrategy.OVERWRITE)
    write_batches(s, [people([0])], spec)
    inside = threading.Barrier(4, timeout=30)
    connections = set()

    def writer(n: int) -> None:
        with s.transaction() as tx:
            connections.add(id(tx.conn))
            s.write(people(range(n * 1000 + 1, n * 1000 + 1001)), spec, tx)
            inside.wait()  # all four transactions are open at the same moment
            s.save_checkpoint(tx, "run-1", Checkpoint(str(n), {}, 1000), {})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(connections) == 4
    assert s.capabilities.concurrent_writers == 4
    assert sql("SELECT COUNT(*) FROM t") == [(4001,)]
    assert len(s.load_checkpoints("run-1")) == 4
