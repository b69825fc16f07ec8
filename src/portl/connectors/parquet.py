"""Parquet files: row-group streaming reads, and writes with an atomic rename.

Reading streams row groups with ``iter_batches``; a checkpoint is a row group and the rows read
from it, and partitions are ranges of row groups. Writing goes to ``<path>.portl-tmp``, which is
renamed over ``<path>`` when the run finishes. A Parquet file is only readable once its footer is
written, so an interrupted load cannot be continued: ``--resume`` writes the file again from the
start (the sink says ``resumable=False``), and the final file still appears exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from portl.connectors.base import (
    Capabilities,
    Checkpoint,
    Chunk,
    Estimate,
    TableInfo,
    TargetPlan,
    WriteMode,
    WriteResult,
    WriteSpec,
)
from portl.connectors.config import resolve_path
from portl.connectors.objectstore import FileConfig, Found, is_glob_path, is_object_url, parquet_input
from portl.connectors.filesink import TMP_SUFFIX, replace_atomically
from portl.errors import SourceError, TerminalError
from portl.types import logical_of, uuid_extension


class Config(FileConfig):
    """A Parquet file (``type: parquet``)."""

    type: Literal["parquet"]
    path: str = Field(description="File path, relative to the job file's folder, or s3://bucket/key; a glob (*, ?, [...], **) reads many files.")
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field("zstd", description="Codec used when writing.")
    allow_empty: bool = Field(False, description="Accept a file with no rows instead of failing (when read).")

    def describe(self) -> str:
        return self.path


def open_source(config: Config, base_dir: str) -> Any:
    """Open a Parquet file (or every file a glob finds) for reading; a missing, unreadable or empty
    file fails here."""
    if is_glob_path(config, base_dir):
        from portl.connectors.multifile import MultiFileSource

        return MultiFileSource(config, base_dir, ParquetSource)
    return ParquetSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """Open a Parquet file or S3 object for writing (replace; append only when it does not exist yet)."""
    if is_object_url(config.path):
        from portl.connectors.objectsink import ObjectParquetSink

        return ObjectParquetSink(config)
    return ParquetSink(config, base_dir)


def sink_capabilities() -> Capabilities:
    """What a Parquet destination can do, as ``portl connectors`` lists it (append: into a new file only)."""
    return Capabilities(modes=frozenset({WriteMode.REPLACE, WriteMode.APPEND}), transactional=True, resumable=False,
                        bulk_method="pyarrow ParquetWriter (the codec of 'compression'), one row group per batch")


class ParquetSource:
    """A Parquet file read row group by row group, in batches of about ``batch_rows``."""

    def __init__(self, config: Config, base_dir: str, found: Found | None = None):
        self.config = config
        self.name = config.path
        self.description = f"Parquet file {config.path}"
        self.notes: list[str] = []
        self._input, self._size = parquet_input(config, base_dir, found)
        self.path = self._input if isinstance(self._input, str) else config.path
        try:
            self._file = pq.ParquetFile(self._readable())
        except PermissionError as exc:
            raise SourceError(f"cannot read source file {self.path}: {exc.strerror or exc}") from exc
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{self.name} is not a readable Parquet file: {exc}") from exc
        meta = self._file.metadata
        self._group_rows = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self._rows = meta.num_rows
        if self._rows == 0 and not config.allow_empty:
            raise SourceError(
                f"{self.name} has no rows; set allow_empty: true on the source if an empty load is expected"
            )

    def _readable(self) -> Any:
        """What a reader opens: the local path, or a new seekable view of the object."""
        return self._input if isinstance(self._input, str) else self._input()

    def schema(self) -> pa.Schema:
        return self._file.schema_arrow

    def estimate(self) -> Estimate:
        return Estimate(rows=self._rows, bytes=self._size, exact=True)

    def partitions(self, count: int) -> list[Checkpoint]:
        groups = len(self._group_rows)
        if count <= 1 or groups <= 1:
            return [_start("0", 0, groups, 0)]
        starts, before, target = [0], 0, self._rows / min(count, groups)
        for g, rows in enumerate(self._group_rows[:-1]):
            before += rows
            if before >= target * len(starts) and len(starts) < count:
                starts.append(g + 1)
        bounds = starts + [groups]
        first_rows = [sum(self._group_rows[:s]) for s in starts]
        return [_start(str(k), bounds[k], bounds[k + 1], first_rows[k]) for k in range(len(starts))]

    def read(self, batch_rows: int, start: Checkpoint | None = None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        pos = start.position
        group, end = int(pos["row_group"]), int(pos.get("end_group", len(self._group_rows)))
        skip, row = int(pos.get("offset_in_group", 0)), int(pos.get("row", 0))
        with pq.ParquetFile(self._readable()) as reader:  # one reader per read: partitions may run in threads
            yield from self._read_groups(reader, batch_rows, start.partition, group, end, skip, row, start.rows)

    def _read_groups(
        self,
        reader: pq.ParquetFile,
        batch_rows: int,
        partition: str,
        group: int,
        end: int,
        skip: int,
        row: int,
        rows: int,
    ) -> Iterator[Chunk]:
        """Batches of ``batch_rows`` from row groups ``group``..``end``, skipping ``skip`` rows."""
        bytes_per_row = self._size / max(1, self._rows)
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for g in range(group, end):
            taken = skip if g == group else 0
            to_skip = taken
            for batch in reader.iter_batches(batch_size=batch_rows, row_groups=[g], use_threads=True):
                if to_skip:
                    if to_skip >= batch.num_rows:
                        to_skip -= batch.num_rows
                        continue
                    batch, to_skip = batch.slice(to_skip), 0
                while batch.num_rows:
                    part = batch.slice(0, batch_rows - pending_rows)
                    batch = batch.slice(part.num_rows)
                    pending.append(part)
                    pending_rows += part.num_rows
                    taken += part.num_rows
                    if pending_rows >= batch_rows:
                        at_group, at_offset = (g + 1, 0) if taken >= self._group_rows[g] else (g, taken)
                        done = at_group >= end
                        yield self._chunk(pending, partition, row, rows, at_group, at_offset, end, done, bytes_per_row)
                        row, rows = row + pending_rows, rows + pending_rows
                        pending, pending_rows = [], 0
        if pending:
            yield self._chunk(pending, partition, row, rows, end, 0, end, True, bytes_per_row)

    def close(self) -> None:
        self._file.close()

    def _chunk(
        self,
        batches: list[pa.RecordBatch],
        partition: str,
        row: int,
        rows: int,
        group: int,
        offset: int,
        end: int,
        done: bool,
        bytes_per_row: float,
    ) -> Chunk:
        data = batches[0] if len(batches) == 1 else pa.concat_batches(batches)
        n = data.num_rows
        position = {"row_group": group, "end_group": end, "offset_in_group": offset, "row": row + n}
        return Chunk(
            data=data,
            checkpoint=Checkpoint(partition, position, rows + n, done),
            first_record=row + 1,
            size_bytes=int(n * bytes_per_row),
        )


def _start(partition: str, group: int, end: int, row: int) -> Checkpoint:
    return Checkpoint(partition, {"row_group": group, "end_group": end, "offset_in_group": 0, "row": row}, 0)


class _ParquetTx:
    """Batches of one transaction, written to the file only when it commits."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []


class ParquetSink:
    """Writes a Parquet file to a temp name and renames it into place at the end of the run."""

    def __init__(self, config: Config, base_dir: str):
        self.config = config
        self.name = config.path
        self.path = resolve_path(config.path, base_dir)
        self.tmp_path = self.path + TMP_SUFFIX
        self.description = f"Parquet file {config.path}"
        modes = {WriteMode.REPLACE} if os.path.exists(self.path) else {WriteMode.REPLACE, WriteMode.APPEND}
        self.capabilities = Capabilities(
            modes=frozenset(modes),
            transactional=True,
            resumable=False,
            concurrent_writers=1,
            bulk_method=f"pyarrow ParquetWriter ({config.compression}), one row group per batch",
            mode_to_reuse=True,
        )
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def table_info(self) -> TableInfo | None:
        return None

    def existing_data(self) -> str | None:
        if not os.path.isfile(self.path):
            return None
        return f"{self.name} ({os.path.getsize(self.path):,} bytes)"

    def plan(self, schema: pa.Schema, spec: WriteSpec) -> TargetPlan:
        self._check_mode(spec)
        base = os.path.basename(self.path)
        return TargetPlan(
            target=self.name,
            ddl=[f"write {base}{TMP_SUFFIX}; rename it over {self.name} when the run finishes"],
            per_batch=[f"write the batch as a row group ({self.config.compression})"],
            notes=["a Parquet file cannot be continued: --resume writes it again from the start"],
        )

    def prepare(self, schema: pa.Schema, spec: WriteSpec, resuming: bool) -> None:
        self._check_mode(spec)
        self.close()
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        codec = None if self.config.compression == "none" else self.config.compression
        self._schema = file_schema(schema)
        try:
            self._writer = pq.ParquetWriter(self.tmp_path, self._schema, compression=codec)
        except (pa.ArrowException, OSError) as exc:
            raise TerminalError(f"cannot write {self.tmp_path}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[_ParquetTx]:
        if self._writer is None:
            raise TerminalError(f"{self.name}: the sink must be prepared before writing")
        tx = _ParquetTx()
        yield tx
        # Only a committed transaction reaches the file, so a failed one leaves nothing behind.
        try:
            for batch in tx.batches:
                self._writer.write_batch(batch)
        except (pa.ArrowException, OSError) as exc:
            raise TerminalError(f"cannot write {self.name}: {exc}") from exc

    def write(self, batch: pa.RecordBatch, spec: WriteSpec, tx: _ParquetTx) -> WriteResult:
        if batch.num_rows:
            batch = _for_file(batch, self._schema)  # type: ignore[arg-type]
            if not batch.schema.equals(self._schema):  # type: ignore[arg-type]
                batch = pa.Table.from_batches([batch]).cast(self._schema).combine_chunks().to_batches()[0]
            tx.batches.append(batch)
        return WriteResult(inserted=batch.num_rows)

    def save_checkpoint(self, tx: Any, run_id: str, checkpoint: Checkpoint, state: dict[str, Any]) -> None:
        """Nothing to keep: an unfinished Parquet file cannot be continued."""

    def load_checkpoints(self, run_id: str) -> dict[str, tuple[Checkpoint, dict[str, Any]]]:
        return {}

    def job_checkpoints(self, job: str) -> dict[str, dict[str, tuple[Checkpoint, dict[str, Any]]]]:
        return {}  # nothing is kept: every run writes the whole file anew

    def forget_run(self, run_id: str) -> None:
        """Nothing is kept to forget."""

    def finish(self, run_id: str) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        with open(self.tmp_path, "rb") as f:
            os.fsync(f.fileno())
        replace_atomically(self.tmp_path, self.path)

    def count_rows(self) -> int | None:
        # The file being written has no footer until the run finishes, and the file at the final
        # path is the previous one: there is nothing independent to count (as for other files).
        return None

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None

    def _check_mode(self, spec: WriteSpec) -> None:
        if spec.mode is WriteMode.APPEND and os.path.exists(self.path):
            raise TerminalError(
                f"cannot append to the existing Parquet file {self.name}: Parquet files cannot be "
                "appended to; use mode: replace, or write to a new file"
            )
        if spec.mode not in (WriteMode.APPEND, WriteMode.REPLACE):
            raise TerminalError(
                f"{self.name}: Parquet files cannot be written with mode {spec.mode.value}; use replace"
            )


def file_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a Parquet file gets: ``uuid`` and ``json`` columns as Arrow's UUID and JSON
    extension types, which Parquet stores as its own UUID (16 bytes) and JSON types, so that
    other readers see them for what they are."""
    fields = []
    for f in schema:
        extension = _EXTENSIONS.get(logical_of(f).name)
        fields.append(pa.field(f.name, extension(), f.nullable) if extension and pa.types.is_string(f.type) else f)
    return pa.schema(fields)


_EXTENSIONS = {"uuid": pa.uuid, "json": pa.json_}


def _for_file(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch's ``uuid`` and ``json`` text as the file's extension types."""
    columns, changed = list(batch.columns), False
    for i, f in enumerate(schema):
        if isinstance(f.type, pa.BaseExtensionType) and not isinstance(columns[i].type, pa.BaseExtensionType):
            text, changed = columns[i], True
            columns[i] = uuid_extension(text) if f.type == pa.uuid() else pa.ExtensionArray.from_storage(f.type, text)
    return pa.RecordBatch.from_arrays(columns, schema=schema) if changed else batch
