"""Conflict strategies inside one batch: rows of the same batch that share a key.

Sinks apply a strategy between a batch and the rows already in the destination, with one
set-based statement. Several rows of the *same* batch with one key must be settled first (one
statement cannot update a row twice on Postgres, and the result must not depend on where batch
boundaries fall). The outcome is the one a row-by-row load in source order would give:

- ``skip``: the first row of a key is kept; later ones are skipped.
- ``overwrite``: the last row of a key wins; the earlier ones count as updated (they were loaded,
  then overwritten).
- ``merge``: one row per key whose every column is the last non-null value seen; the earlier rows
  count as updated.
- ``fail``: every key seen more than once is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import ConflictStrategy

_ROW = "__portl_row"


@dataclass
class Settled:
    """A batch with unique keys, and what became of the rows folded away."""

    batch: pa.RecordBatch
    source_index: pa.Array
    folded: int = 0
    """Rows merged into a later row of the same key (count as updated)."""
    skipped_index: pa.Array | None = None
    """Input rows skipped as later duplicates under ``skip``."""
    duplicate_keys: list[tuple] | None = None
    """Keys seen more than once under ``fail``."""


def settle_duplicates(batch: pa.RecordBatch, source_index: pa.Array, key: tuple[str, ...], strategy: ConflictStrategy) -> Settled:
    """Reduce ``batch`` to one row per key under ``strategy``; vectorised with Arrow group-by."""
    n = batch.num_rows
    if n < 2 or not key:
        return Settled(batch, source_index)
    table = pa.Table.from_batches([batch]).append_column(_ROW, pa.array(range(n), pa.int64()))
    groups = table.group_by(list(key), use_threads=False).aggregate([(_ROW, "min"), (_ROW, "max"), (_ROW, "count")])
    if groups.num_rows == n:
        return Settled(batch, source_index)
    groups = groups.combine_chunks()
    if strategy == ConflictStrategy.FAIL:
        repeated = groups.filter(pc.greater(groups[f"{_ROW}_count"], 1))
        keys = list(zip(*(repeated[k].to_pylist() for k in key)))
        return Settled(batch, source_index, duplicate_keys=keys)
    if strategy == ConflictStrategy.SKIP:
        rows = _sorted(groups[f"{_ROW}_min"])
        mask = pc.is_in(pa.array(range(n), pa.int64()), value_set=rows)
        skipped = pc.indices_nonzero(pc.invert(mask))
        return Settled(batch.take(rows), pc.take(source_index, rows), skipped_index=pc.take(source_index, skipped))
    if strategy == ConflictStrategy.OVERWRITE:
        rows = _sorted(groups[f"{_ROW}_max"])
        return Settled(batch.take(rows), pc.take(source_index, rows), folded=n - groups.num_rows)
    # merge: per key, the last non-null value of every other column, placed at the key's last row
    others = [f.name for f in batch.schema if f.name not in key]
    last = pc.ScalarAggregateOptions(skip_nulls=True)
    merged = table.group_by(list(key), use_threads=False).aggregate(
        [(c, "last", last) for c in others] + [(_ROW, "max")]
    )
    order = pc.sort_indices(merged[f"{_ROW}_max"])
    merged = merged.take(order)
    columns = []
    for f in batch.schema:
        column = merged[f.name] if f.name in key else merged[f"{f.name}_last"]
        columns.append(column.combine_chunks().cast(f.type))
    out = pa.RecordBatch.from_arrays(columns, schema=batch.schema)
    return Settled(out, pc.take(source_index, merged[f"{_ROW}_max"].combine_chunks()), folded=n - groups.num_rows)


def _sorted(rows: pa.ChunkedArray) -> pa.Array:
    """Row numbers in ascending order, so kept rows stay in source order."""
    flat = rows.combine_chunks()
    return pc.take(flat, pc.sort_indices(flat))
