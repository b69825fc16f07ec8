"""Hashes, distinct sketches, column profiles and the exact uniqueness index."""

import datetime
import decimal
import os

import numpy as np
import pyarrow as pa

from portl.quality.hashing import DistinctSketch, hash_array, hash_columns
from portl.quality.profile import Profile
from portl.quality.uniqueness import KeyIndex


def test_equal_values_hash_equal_whatever_the_slice_or_chunking():
    values = pa.array(["x", "alpha", "", None, "alpha", "β-unicode"])
    hashes = hash_array(values)
    assert hashes[1] == hashes[4]
    assert len(set(hashes.tolist())) == 5
    assert hash_array(values.slice(4, 2)).tolist() == hashes[4:].tolist()
    assert hash_array(pa.chunked_array([values.slice(0, 2), values.slice(2)])).tolist() == hashes.tolist()


def test_hashes_of_many_distinct_values_do_not_collide():
    n = 200_000
    texts = pa.array([f"customer-{i:09d}" for i in range(n)])
    assert len(np.unique(hash_array(texts))) == n
    assert len(np.unique(hash_array(pa.array(np.arange(n))))) == n
    amounts = pa.array([decimal.Decimal(i) / 100 for i in range(1000)], pa.decimal128(12, 2))
    assert len(np.unique(hash_array(amounts))) == 1000


def test_composite_keys_hash_by_all_their_columns():
    a = pa.array(["x", "x", "y"])
    b = pa.array([1, 2, 1])
    assert len(set(hash_columns([a, b]).tolist())) == 3


def test_distinct_sketch_is_exact_when_small_and_close_when_large():
    small = DistinctSketch()
    small.add(hash_array(pa.array([1, 2, 2, 3])))
    assert small.estimate() == 3
    large = DistinctSketch()
    for start in range(0, 1_000_000, 100_000):
        large.add(hash_array(pa.array(np.arange(start, start + 100_000) % 300_000)))
    assert abs(large.estimate() - 300_000) / 300_000 < 0.06


def test_profile_counts_nulls_bounds_dates_and_files():
    batch = pa.record_batch({
        "day": pa.array(["2024-01-01", "2024-01-01", "not a date", None, "2024-01-03T09:00:00"]),
        "n": pa.array([5, None, -2, 7, 1], pa.int64()),
        "at": pa.array([datetime.datetime(2024, 2, 1, 23, 0)] * 5, pa.timestamp("us")),
    })
    profile = Profile(batch.schema, distinct={"n"}, dates={"day", "at"}, per_file=True)
    profile.observe(batch, "a.csv")
    profile.observe(batch.slice(0, 2), "b.csv")
    columns = {c.name: c for c in profile.column_profiles()}
    assert (columns["n"].rows, columns["n"].nulls, columns["n"].min, columns["n"].max) == (7, 2, "-2", "7")
    assert columns["n"].distinct == 4
    assert profile.dates_of("day") == {datetime.date(2024, 1, 1): 4, datetime.date(2024, 1, 3): 1}
    assert profile.columns["day"].unreadable_dates == 1 and profile.columns["day"].examples_unreadable == ["not a date"]
    assert profile.dates_of("at") == {datetime.date(2024, 2, 1): 7}
    assert profile.per_file == {"a.csv": 5, "b.csv": 2}


def test_uniqueness_finds_exact_duplicates_after_spilling_to_disk(tmp_path):
    index = KeyIndex(["k"], memory_bytes=200_000, buckets=8, temp_dir=str(tmp_path))
    for start in range(0, 300_000, 50_000):
        keys = np.arange(start, start + 50_000)
        if start == 100_000:
            keys[10] = 42  # a second 42 ...
        if start == 250_000:
            keys[0] = 42   # ... and a third
            keys[1] = 99
        index.add(pa.record_batch({"k": pa.array(keys)}), pa.array(np.arange(start, start + 50_000) + 1))
    found = index.duplicates()
    assert found.spilled_bytes > 0
    assert (found.keys, found.rows) == (2, 5)
    assert {tuple(e["key"]): e["records"] for e in found.examples} == {(42,): [43, 100_011, 250_001], (99,): [100, 250_002]}
    assert os.listdir(tmp_path) == []  # the spill folder is gone


def test_uniqueness_ignores_null_keys_as_sql_does():
    index = KeyIndex(["a", "b"])
    batch = pa.record_batch({"a": pa.array(["x", "x", None, None]), "b": pa.array([1, 1, 2, 2])})
    index.add(batch, pa.array([1, 2, 3, 4]))
    found = index.duplicates()
    assert (found.keys, found.rows) == (1, 2)
    assert found.examples[0]["key"] == ["x", 1]


def test_a_bucket_too_large_is_split_before_it_is_judged(tmp_path):
    index = KeyIndex(["k"], memory_bytes=100_000, buckets=2, temp_dir=str(tmp_path), max_bucket_bytes=50_000)
    for start in range(0, 100_000, 10_000):
        keys = np.arange(start, start + 10_000)
        if start == 90_000:
            keys[-1] = 5
        index.add(pa.record_batch({"k": pa.array(keys)}), pa.array(np.arange(start, start + 10_000) + 1))
    found = index.duplicates()
    assert (found.keys, found.rows) == (1, 2)
    assert found.examples[0]["records"] == [6, 100_000]
    assert os.listdir(tmp_path) == []
