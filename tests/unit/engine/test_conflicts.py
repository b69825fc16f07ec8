import pyarrow as pa

from portl.connectors.base import ConflictStrategy
from portl.engine.conflicts import settle_duplicates


def batch(ids, names, cities):
    return pa.RecordBatch.from_pydict({"id": pa.array(ids, pa.int64()), "name": names, "city": cities})


def index(n):
    return pa.array(range(n), pa.int64())


def test_unique_keys_pass_through_untouched():
    b = batch([1, 2, 3], ["a", "b", "c"], ["x", "y", "z"])
    settled = settle_duplicates(b, index(3), ("id",), ConflictStrategy.OVERWRITE)
    assert settled.batch.equals(b)
    assert settled.folded == 0


def test_overwrite_keeps_the_last_row_of_a_key_and_counts_the_rest_as_folded():
    b = batch([1, 2, 1, 1], ["first", "b", "second", "third"], ["x", "y", None, "w"])
    settled = settle_duplicates(b, index(4), ("id",), ConflictStrategy.OVERWRITE)
    assert settled.batch.to_pylist() == [{"id": 2, "name": "b", "city": "y"}, {"id": 1, "name": "third", "city": "w"}]
    assert settled.source_index.to_pylist() == [1, 3]
    assert settled.folded == 2


def test_skip_keeps_the_first_row_and_reports_the_later_ones():
    b = batch([1, 2, 1], ["first", "b", "second"], ["x", "y", "z"])
    settled = settle_duplicates(b, index(3), ("id",), ConflictStrategy.SKIP)
    assert settled.batch.to_pylist() == [{"id": 1, "name": "first", "city": "x"}, {"id": 2, "name": "b", "city": "y"}]
    assert settled.skipped_index.to_pylist() == [2]


def test_merge_takes_the_last_non_null_value_of_each_column():
    b = batch([7, 7, 7], ["old", None, "new"], ["paris", "lyon", None])
    settled = settle_duplicates(b, index(3), ("id",), ConflictStrategy.MERGE)
    assert settled.batch.to_pylist() == [{"id": 7, "name": "new", "city": "lyon"}]
    assert settled.batch.schema == b.schema
    assert settled.folded == 2


def test_fail_lists_every_repeated_key():
    b = batch([1, 2, 1, 3, 2], list("abcde"), list("vwxyz"))
    settled = settle_duplicates(b, index(5), ("id",), ConflictStrategy.FAIL)
    assert sorted(settled.duplicate_keys) == [(1,), (2,)]


def test_composite_keys_compare_all_their_columns():
    b = pa.RecordBatch.from_pydict({"a": [1, 1, 1], "b": ["x", "y", "x"], "v": [1, 2, 3]})
    settled = settle_duplicates(b, index(3), ("a", "b"), ConflictStrategy.OVERWRITE)
    assert sorted(settled.batch.to_pylist(), key=lambda r: r["b"]) == [{"a": 1, "b": "x", "v": 3}, {"a": 1, "b": "y", "v": 2}]
