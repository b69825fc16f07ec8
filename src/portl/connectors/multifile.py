"""Many files read as one source: every file a glob finds (``data/*.csv``,
``s3://bucket/logs/**/*.jsonl.gz``), in the order of their sorted names.

Each file is read by the format's own source (CSV, JSON lines, Parquet), opened when the read
reaches it, so a thousand objects cost one listing and one open at a time. A checkpoint says
which file and where inside it (that file's own position), so a resume starts in the file, at the
block, where the last commit left off. Rejects name the file and its line.

The first file fixes the schema; a later file whose columns differ is an error naming it (a JSON
lines or Parquet file whose fields come in another order is read in the first file's order).
Partitions: with several files, contiguous runs of files of about equal bytes; with one file,
that file's own partitions (byte ranges of a CSV or JSON lines file, row groups of Parquet).

As an :class:`~portl.connectors.base.IncrementalSource`, the mark is the files loaded so far with
their size and version (ETag or modification time); a run restricted by it reads only the files
that are new or changed since.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from portl.connectors.base import Checkpoint, Chunk, Estimate, VerbatimOffer, VerbatimRequest
from portl.connectors.objectstore import Found, find_files
from portl.errors import SourceError, TerminalError
from portl.plural import counted


class MultiFileSource:
    """The files a glob finds, read one after another as one source."""

    def __init__(self, config: Any, base_dir: str, open_file: Callable[[Any, str, Found], Any]):
        self.config, self.base_dir = config, base_dir
        self._open_file = open_file
        self.name = config.path
        self.description = f"{_KINDS.get(config.type, config.type)} files {config.path}"
        self._notes: list[str] = []
        self._all = find_files(config, base_dir)
        self.files: list[Found] = list(self._all)
        self._first = self._open(self.files[0])
        self._schema = self._first.schema()
        self._open_sources: dict[int, Any] = {}
        self._lock = threading.Lock()
        self.description += f" ({counted(len(self.files), 'file')})"

    @property
    def notes(self) -> list[str]:
        return self._notes + [n for n in getattr(self._first, "notes", []) if n not in self._notes]

    # -- the Source seam -----------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        total = sum(f.size for f in self.files)
        first = self._first.estimate()
        if first.rows is None or not first.bytes:
            return Estimate(rows=None, bytes=total)
        if len(self.files) == 1 and self.files[0].name == self._all[0].name:
            return first
        return Estimate(rows=round(first.rows * total / first.bytes), bytes=total, exact=False)

    def partitions(self, count: int) -> list[Checkpoint]:
        files = self.files
        if not files:
            return [Checkpoint("0", {"file": 0, "end_file": 0, "at": None}, 0, done=True)]
        if count <= 1:
            return [self._start("0", 0, len(files))]
        if len(files) == 1:  # one large file: its own partitions (byte ranges, row groups)
            inner = self._source(0).partitions(count)
            return [Checkpoint(cp.partition, self._position(0, 1, cp.to_json()), 0) for cp in inner]
        groups = min(count, len(files))
        total = sum(f.size for f in files) or 1
        starts, before = [0], 0
        for i, found in enumerate(files[:-1]):
            before += found.size
            target = total * len(starts) / groups
            # cut after this file when that lands nearer the target than cutting after the next
            if len(starts) < groups and abs(before - target) <= abs(before + files[i + 1].size - target):
                starts.append(i + 1)
        bounds = starts + [len(files)]
        return [self._start(str(k), bounds[k], bounds[k + 1]) for k in range(len(starts))]

    def read(self, batch_rows: int, start: Checkpoint | None = None) -> Iterator[Chunk]:
        return self._read(start, lambda source, inner: source.read(batch_rows, inner))

    def raw_rows(self, chunk: Chunk, indexes: list[int]) -> dict[int, str]:
        """The original text of rows of ``chunk``, from the file it came from (the chunk keeps that
        file's source: the engine reads ahead, so the file may be released by now)."""
        source = getattr(chunk, "_portl_source", None)
        raw_rows = getattr(source, "raw_rows", None)
        return raw_rows(chunk, indexes) if raw_rows is not None else {}

    def close(self) -> None:
        for source in self._open_sources.values():
            if source is not self._first:
                source.close()
        self._open_sources.clear()
        self._first.close()

    # -- text handed over as it is (CSV into a database) ---------------------------------------

    def verbatim_offer(self) -> VerbatimOffer | None:
        offer = getattr(self._first, "verbatim_offer", None)
        return offer() if offer is not None else None

    def read_verbatim(self, batch_rows: int, start: Checkpoint | None, request: VerbatimRequest) -> Iterator[Chunk]:
        if self.verbatim_offer() is None:
            raise TerminalError(f"{self.name} cannot be read verbatim")
        return self._read(start, lambda source, inner: source.read_verbatim(batch_rows, inner, request))

    def parse_verbatim(self, chunk: Chunk) -> Chunk:
        source = chunk._portl_source  # type: ignore[attr-defined]
        again = source.parse_verbatim(chunk)
        again.checkpoint = chunk.checkpoint
        again._portl_source = source  # type: ignore[attr-defined]
        return again

    # -- incremental: only new or changed files ------------------------------------------------

    def incremental_mark(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        """Every file loaded before (``previous``) and every file found now, with its size and version."""
        files = dict((previous or {}).get("files", {}))
        files.update((f.name, f.mark()) for f in self._all)
        return {"files": files}

    def restrict(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> None:
        """Read only the files of ``mark`` that ``previous`` does not list as they are now."""
        before = (previous or {}).get("files", {})
        wanted = mark.get("files", {})
        self.files = [f for f in self._all
                      if f.name in wanted and wanted[f.name] == f.mark() and before.get(f.name) != f.mark()]

    def describe_incremental(self, previous: dict[str, Any] | None, mark: dict[str, Any]) -> list[str]:
        before = (previous or {}).get("files", {})
        changed = [f.name for f in self.files if f.name in before]
        new = len(self.files) - len(changed)
        lines = [f"{counted(new, 'new file')}, {counted(len(changed), 'changed file')} of "
                 f"{counted(len(self._all), 'file')} {self.name} finds; "
                 f"{counted(len(before), 'file')} loaded before"]
        shown = [f.name for f in self.files[:5]]
        if shown:
            more = f", and {len(self.files) - 5} more" if len(self.files) > 5 else ""
            lines.append("reads " + ", ".join(shown) + more)
        return lines

    # -- reading, file after file --------------------------------------------------------------

    def _read(self, start: Checkpoint | None, read_file: Callable[[Any, Checkpoint | None], Iterator[Chunk]]) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done:
            return
        pos = start.position
        index, end, rows = int(pos["file"]), int(pos["end_file"]), start.rows
        inner = Checkpoint.from_json(pos["at"]) if pos.get("at") else None
        self._check_same_files(index, end, pos.get("name"), pos.get("files"))
        while index < end:
            source = self._source(index)
            name = self.files[index].name
            last = index == end - 1
            for chunk in read_file(source, inner):
                rows += chunk.rows_read
                got = chunk.checkpoint
                if got.done and not last:
                    position = self._position(index + 1, end, None)
                else:
                    position = self._position(index, end, got.to_json())
                chunk.checkpoint = Checkpoint(start.partition, position, rows, got.done and last)
                if chunk.verbatim is None and chunk.data.schema != self._schema:
                    chunk.data = self._conform(chunk.data, name)
                chunk._portl_source = source  # type: ignore[attr-defined]
                yield chunk
            inner = None
            self._release(index)
            index += 1

    def _source(self, index: int) -> Any:
        with self._lock:  # partitions of one file read it in several threads, through one source
            source = self._open_sources.get(index)
            if source is None:
                found = self.files[index]
                source = self._first if found.name == self._all[0].name else self._open(found)
                self._check_schema(source, found.name)
                self._open_sources[index] = source
            return source

    def _release(self, index: int) -> None:
        """Close a file read to its end; one file's source stays open for its other partitions."""
        if len(self.files) == 1:
            return
        with self._lock:
            source = self._open_sources.pop(index, None)
        if source is not None and source is not self._first:
            source.close()

    def _open(self, found: Found) -> Any:
        config = self.config.model_copy(update={"path": found.name})
        return self._open_file(config, self.base_dir, found)  # the listing's size and version, read as listed

    def _start(self, partition: str, first: int, end: int) -> Checkpoint:
        return Checkpoint(partition, self._position(first, end, None), 0)

    def _position(self, index: int, end: int, at: Any) -> dict[str, Any]:
        """Where a partition stands: the file (its index and name), the end of its run of files,
        the place inside the file, and how many files the glob found (checked on resume)."""
        return {"file": index, "end_file": end, "at": at, "name": self.files[index].name, "files": len(self.files)}

    def _check_same_files(self, index: int, end: int, name: str | None, count: int | None) -> None:
        """A checkpoint names the file it stands in and how many files the glob found: on resume
        the files found must still be those, or a partition would read other files than it did."""
        found = len(self.files)
        if name is not None and name not in {f.name for f in self.files}:
            why = f"{name}, where the run being resumed stood, is gone (removed or renamed)"
        elif name is not None and (index >= found or self.files[index].name != name):
            why = f"a file before {name}, where the run being resumed stood, was added, removed or renamed"
        elif count is not None and count != found:
            why = (f"it found {counted(count, 'file')} and finds {found} now: a file was added or removed "
                   f"(the run being resumed stood in {name})")
        elif end > found:
            why = f"it finds fewer files than the run being resumed read (that run stood in {name})"
        else:
            return
        raise SourceError(f"{self.name} no longer finds the files the run being resumed read: {why}. "
                          "Run the job again without --resume")

    def _check_schema(self, source: Any, name: str) -> None:
        schema = source.schema()
        if schema.names == self._schema.names:
            return
        first = self.files[0].name if self.files else self._all[0].name
        if set(schema.names) == set(self._schema.names) and getattr(self.config, "type", "") not in ("csv", "tsv"):
            return  # the same fields in another order: read in the first file's order
        raise SourceError(
            f"{name} has the columns {', '.join(schema.names)}, but {first} has {', '.join(self._schema.names)}: "
            f"every file {self.name} finds must have the same columns"
        )

    def _conform(self, batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
        """A batch of a file whose fields came in another order or were inferred as other types,
        in the first file's schema."""
        try:
            columns = [batch.column(f.name).cast(f.type) for f in self._schema]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
            raise SourceError(f"{name}: its values do not fit the columns of the first file: {exc}") from exc
        return pa.RecordBatch.from_arrays(columns, schema=self._schema)


_KINDS = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON lines", "parquet": "Parquet"}
