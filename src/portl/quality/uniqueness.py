"""Exact uniqueness of a key over the whole input, in bounded memory.

Keys are kept in memory, with the record number of each row, until they pass ``memory_bytes`` (8 MB);
then every row goes to one of ``buckets`` files on disk (Arrow IPC), chosen by its key's hash
(:mod:`portl.quality.hashing`), so that equal keys always share a bucket. At the end each bucket
is read alone and grouped by the key: a key found more than once is a duplicate, found exactly (no
hash collision can make one up). Memory is the in-memory limit or one bucket, whichever is
larger: with 256 buckets, 100 GB of input (800M rows) with an 8-byte key spills about 20 GB of keys,
record numbers and hashes, about 80 MB a bucket; a bucket past 64 MB is split in 16 by further
hash bits before it is judged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from portl.quality.hashing import hash_columns

RECORD = "__portl_record"
HASH = "__portl_hash"


@dataclass
class Duplicates:
    """What the check found: how many keys occur more than once, the rows they take, examples."""

    keys: int = 0
    rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    spilled_bytes: int = 0


class KeyIndex:
    """Collects a key's values (and record numbers) from batches, then finds the duplicates."""

    def __init__(self, columns: list[str], memory_bytes: int = 8 << 20, buckets: int = 256,
                 temp_dir: str | None = None, examples: int = 20, max_bucket_bytes: int = 64 << 20):
        self.columns = list(columns)
        self.memory_bytes = memory_bytes
        self.buckets = buckets
        self.temp_dir = temp_dir
        self.examples = examples
        self.max_bucket_bytes = max_bucket_bytes
        self._held: list[pa.RecordBatch] = []
        self._held_bytes = 0
        self._folder: str | None = None
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._files: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._spilling = threading.Lock()
        self.spilled_bytes = 0

    def add(self, batch: pa.RecordBatch, records: pa.Array) -> None:
        """Add the key columns of ``batch``; ``records`` numbers its rows in the source (for examples)."""
        if not batch.num_rows:
            return
        keys = [batch.column(c) for c in self.columns]
        if len(keys) == 1 and (pa.types.is_integer(keys[0].type) or pa.types.is_temporal(keys[0].type)):
            # One whole-number key hashes in a few nanoseconds: recomputed when needed, not spilled.
            part = pa.RecordBatch.from_arrays(keys + [records.cast(pa.int64())], names=self.columns + [RECORD])
        else:
            hashes = pa.array(hash_columns(keys), pa.uint64())
            part = pa.RecordBatch.from_arrays(keys + [records.cast(pa.int64()), hashes],
                                              names=self.columns + [RECORD, HASH])
        with self._lock:
            self._held.append(part)
            self._held_bytes += part.nbytes
            if self._held_bytes <= self.memory_bytes:
                return
            held, self._held, self._held_bytes = self._held, [], 0
        with self._spilling:  # other partitions go on adding while these keys are written
            self._spill(held)

    def _spill(self, held: list[pa.RecordBatch]) -> None:
        table = pa.Table.from_batches(held).combine_chunks()
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="portl-unique-", dir=self.temp_dir)
        # The top bits choose the bucket: the judge sorts by the whole hash within a bucket.
        bucket = ((self._hashes(table) >> np.uint64(56)) % np.uint64(self.buckets)).astype(np.uint16)
        order = np.argsort(bucket, kind="stable")  # a radix sort on small integers
        sorted_buckets = bucket[order]
        table = table.take(pa.array(order))
        bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(order)]])
        for start, stop in zip(starts.tolist(), stops.tolist()):
            number = int(sorted_buckets[start])
            writer = self._writers.get(number)
            if writer is None:
                sink = open(os.path.join(self._folder, f"{number:04d}.arrow"), "wb")
                self._files[number] = sink
                writer = pa.ipc.new_stream(sink, table.schema)
                self._writers[number] = writer
            piece = table.slice(start, stop - start)
            writer.write_table(piece)
            self.spilled_bytes += piece.nbytes

    def duplicates(self) -> Duplicates:
        """Every key found more than once (NULL keys are not compared, as in SQL UNIQUE)."""
        found = Duplicates()
        try:
            if self._folder is None:
                table = pa.Table.from_batches(self._held) if self._held else None
                if table is not None:
                    self._judge(table, found)
            else:
                if self._held:
                    self._spill(self._held)
                    self._held = []
                for writer in self._writers.values():
                    writer.close()
                for sink in self._files.values():
                    sink.close()
                for number in sorted(self._writers):
                    self._judge_file(os.path.join(self._folder, f"{number:04d}.arrow"), found, 0)
            found.spilled_bytes = self.spilled_bytes
            return found
        finally:
            self.close()

    def _judge_file(self, path: str, found: Duplicates, depth: int) -> None:
        """Judge one spilled bucket; one larger than ``max_bucket_bytes`` (a very large input) is
        first split in 16 by further bits of the hash, read batch by batch, so memory stays bounded."""
        if os.path.getsize(path) <= self.max_bucket_bytes or depth >= 3:
            with pa.memory_map(path) as source:
                self._judge(pa.ipc.open_stream(source).read_all(), found)
            os.remove(path)
            return
        shift = np.uint64(52 - 4 * depth)  # the bucket used the top 8 bits; each split takes the next 4
        writers: dict[int, Any] = {}
        sinks: dict[int, Any] = {}
        try:
            with pa.memory_map(path) as source:
                for batch in pa.ipc.open_stream(source):
                    part = (self._hashes(batch) >> shift) & np.uint64(15)
                    for number in np.unique(part).tolist():
                        if number not in writers:
                            sinks[number] = open(f"{path}.{number:x}", "wb")
                            writers[number] = pa.ipc.new_stream(sinks[number], batch.schema)
                        writers[number].write_batch(batch.filter(pa.array(part == number)))
        finally:
            for writer in writers.values():
                writer.close()
            for sink in sinks.values():
                sink.close()
        os.remove(path)
        for number in sorted(writers):
            self._judge_file(f"{path}.{number:x}", found, depth + 1)

    def _hashes(self, data: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The keys' hashes: spilled with them, or computed again for a whole-number key."""
        if HASH in data.schema.names:
            column = data.column(HASH)
            return column.to_numpy() if isinstance(column, pa.ChunkedArray) else column.to_numpy(zero_copy_only=False)
        return hash_columns([data.column(c) for c in self.columns])

    def _judge(self, table: pa.Table, found: Duplicates) -> None:
        for column in self.columns:
            if table.column(column).null_count:
                table = table.filter(pc.is_valid(table.column(column)))
        if not table.num_rows:
            return
        # Equal keys hash equal: only rows whose hash repeats can be duplicates. A numpy sort finds
        # them; the exact grouping then runs on those few rows (a hash collision groups apart).
        hashes = self._hashes(table)
        ordered = np.sort(hashes)
        repeated_hashes = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        if not len(repeated_hashes):
            return
        table = table.filter(pa.array(np.isin(hashes, repeated_hashes)))
        grouped = table.group_by(self.columns).aggregate([(RECORD, "count"), (RECORD, "min")])
        counts = grouped.column(f"{RECORD}_count")
        repeated = grouped.filter(pc.greater(counts, 1))
        if not repeated.num_rows:
            return
        found.keys += repeated.num_rows
        found.rows += pc.sum(repeated.column(f"{RECORD}_count")).as_py()
        room = self.examples - len(found.examples)
        if room <= 0:
            return
        shown = repeated.sort_by(f"{RECORD}_min").slice(0, room)
        for row in shown.to_pylist():
            key = [row[c] for c in self.columns]
            mask = None
            for c, value in zip(self.columns, key):
                eq = pc.equal(table.column(c), pa.scalar(value, table.schema.field(c).type))
                mask = eq if mask is None else pc.and_(mask, eq)
            records = sorted(table.filter(mask).column(RECORD).to_pylist())[:10]
            found.examples.append({"key": [_plain(v) for v in key], "count": row[f"{RECORD}_count"],
                                   "records": records})

    def close(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # already closed after judging
                pass
        for sink in self._files.values():
            sink.close()
        self._writers, self._files, self._held = {}, {}, []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
