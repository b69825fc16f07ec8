"""Many files read as one source: every file a glob finds (``data/*.csv``,
``s3://bucket/logs/**/*.jsonl.gz``), in the order of their sorted names.

Each file is read by the format's own source (CSV, JSON lines, Parquet), opened when the read
reaches it, so a thousand objects cost one listing and one open at a time. A checkpoint says
which file and where inside it (that file's own position), so a resume starts in the file, at the
block, where the last commit left off. Rejects name the file and its line.

The first file fixes the schema; a later file whose columns differ is an error naming it (a JSON
lines or Parquet file whose fields come in another order is read in the first file's order).

Partitions (:mod:`portl.connectors.fileset_partitions`): with ``workers: 1``, one partition walking
the files in order; with more, each file its own partition and a large plain file cut into byte
ranges, largest first; with one file, that file's own partitions (byte ranges of a CSV or JSON
lines file, row groups of Parquet). A checkpoint always has the same shape, so a run started with
runs of whole files resumes as it was cut.

A file that cannot be read (a damaged gzip member, other columns) fails its own partition with a
:class:`FileUnreadable` naming it: the engine lets the other partitions load to their end, then
the run fails with it, and ``--resume`` reads that file again from its last committed checkpoint.
When several files are read, a chunk's ``size_bytes`` counts bytes of the files as stored (the
compressed bytes of a gzip file), so that progress adds up to :meth:`estimate`'s bytes; a file's
commits turn into ``file_finished`` news (:mod:`portl.connectors.fileset_progress`).

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
from portl.connectors.fileset_partitions import check_disjoint, cut_files, split_bytes
from portl.connectors.fileset_progress import FileProgress, News
from portl.connectors.objectstore import Found, find_files
from portl.errors import SourceError, TerminalError
from portl.plural import counted


class FileUnreadable(SourceError):
    """One file of a glob cannot be read (damaged, other columns). ``confined``: the engine's
    executor lets the other partitions finish before the run fails with it; ``also`` holds the
    failures of other files it met by then."""

    confined = True

    def __init__(self, message: str, file: str):
        super().__init__(message)
        self.file = file
        self.also: list[BaseException] = []

    def __str__(self) -> str:
        text = super().__str__()
        if not self.also:
            return text
        return f"{text}. {counted(len(self.also), 'other file')} failed too: " + "; ".join(str(e) for e in self.also)


class MultiFileSource:
    """The files a glob finds, read as one source: one after another, or side by side in partitions."""

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
        self._open_sources: dict[int, list[Any]] = {}  # file index -> [source, partitions reading it]
        self._opening: dict[int, threading.Lock] = {}  # file index -> held while a partition opens it
        self._lock = threading.Lock()
        self._progress = FileProgress()
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
        if not self._estimates_stored_bytes():
            return first
        return Estimate(rows=round(first.rows * total / first.bytes), bytes=total, exact=False)

    def partitions(self, count: int) -> list[Checkpoint]:
        files = self.files
        if not files:
            return [Checkpoint("0", {"file": 0, "end_file": 0, "at": None}, 0, done=True)]
        if count <= 1:
            return [self._start("0", 0, len(files))]
        if len(files) == 1:  # one large file: its own partitions (byte ranges, row groups)
            inner = self._acquire(0).partitions(count)
            return [Checkpoint(cp.partition, self._position(0, 1, cp.to_json()), 0) for cp in inner]
        parts = cut_files([f.size for f in files], self._ranges, split_bytes())
        return [Checkpoint(p.name, self._position(p.file, p.file + 1, p.inner.to_json() if p.inner else None), 0)
                for p in parts]

    def loading(self, starts: list[Checkpoint]) -> Callable[[Checkpoint], News]:
        """Told the partitions a run reads, answer what the engine calls with each checkpoint it
        commits: the news that checkpoint makes, ``file_finished`` for each file it finishes.
        Partitions that would read rows twice (cut otherwise than when the run began) are refused."""
        check_disjoint(starts, [f.name for f in self.files])
        self._progress.expect(starts, [f.name for f in self.files])
        return self._progress.committed

    def read(self, batch_rows: int, start: Checkpoint | None = None) -> Iterator[Chunk]:
        return self._read(start, lambda source, inner: source.read(batch_rows, inner))

    def raw_rows(self, chunk: Chunk, indexes: list[int]) -> dict[int, str]:
        """The original text of rows of ``chunk``, from the file it came from (the chunk keeps that
        file's source: the engine reads ahead, so the file may be released by now)."""
        source = getattr(chunk, "_portl_source", None)
        raw_rows = getattr(source, "raw_rows", None)
        return raw_rows(chunk, indexes) if raw_rows is not None else {}

    def close(self) -> None:
        for source, _ in self._open_sources.values():
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
        # a partition of one file only: the rows it committed before are that file's
        earlier = rows if end - index == 1 else 0
        while index < end:
            found = self.files[index]
            last = index == end - 1
            self._progress.began(start.partition, index, earlier)
            counted_rows = [rows]
            try:
                yield from self._read_file(index, inner, start, counted_rows, last, read_file)
            except SourceError as exc:
                raise FileUnreadable(
                    f"{exc}. Put a good copy of {found.name} in its place (the same data: rows committed from it "
                    "are not loaded again) and continue the run with --resume", found.name) from exc
            rows, inner, earlier = counted_rows[0], None, 0
            index += 1

    def _read_file(self, index: int, inner: Checkpoint | None, start: Checkpoint, rows: list[int], last: bool,
                   read_file: Callable[[Any, Checkpoint | None], Iterator[Chunk]]) -> Iterator[Chunk]:
        """The chunks of file ``index`` from ``inner`` (its start when None), as chunks of the
        partition ``start``; ``rows[0]``, the partition's rows so far, counts them as they go."""
        found, end = self.files[index], int(start.position["end_file"])
        source = self._acquire(index)
        try:
            # Progress in bytes as stored: the estimate adds up the files' sizes (of a gzip file, its
            # compressed bytes), while the source counts the bytes it parsed.
            stored = self._stored_ratio(source, found) if self._estimates_stored_bytes() else None
            parsed = reported = 0
            for chunk in read_file(source, inner):
                rows[0] += chunk.rows_read
                got = chunk.checkpoint
                if got.done and not last:
                    position = self._position(index + 1, end, None)
                else:
                    position = self._position(index, end, got.to_json())
                chunk.checkpoint = Checkpoint(start.partition, position, rows[0], got.done and last)
                if chunk.verbatim is None and chunk.data.schema != self._schema:
                    chunk.data = self._conform(chunk.data, found.name)
                if stored is not None:  # rounded as a running total, so that the file's chunks add up
                    parsed += chunk.size_bytes
                    chunk.size_bytes = min(found.size, round(parsed * stored)) - reported
                    reported += chunk.size_bytes
                chunk._portl_source = source  # type: ignore[attr-defined]
                self._progress.read(index, chunk.rows_read)
                yield chunk
        finally:
            self._release(index)

    def _estimates_stored_bytes(self) -> bool:
        """Whether :meth:`estimate` counts the files' stored bytes (else the one file's own estimate)."""
        return not (len(self.files) == 1 and self.files[0].name == self._all[0].name)

    def _stored_ratio(self, source: Any, found: Found) -> float:
        """Stored bytes of a file per byte its source reads: 1 for a plain file, less for a gzip
        file. When its source cannot tell (a compressed object, whose data size is not known without
        reading it), 1: its progress then runs ahead, up to the file's size, where it stops."""
        read = source.estimate().bytes
        return found.size / read if read and found.size else 1.0

    def _acquire(self, index: int) -> Any:
        """The source of file ``index``, opened by the first partition that reads it; partitions of
        one file (its byte ranges) read it in several threads, through one source. Files are opened
        outside the source's lock: opening one (a GET of an object's head) does not hold up the
        workers opening others."""
        with self._lock:
            entry = self._open_sources.get(index)
            if entry is not None:
                entry[1] += 1
                return entry[0]
            opening = self._opening.setdefault(index, threading.Lock())
        with opening:
            with self._lock:
                entry = self._open_sources.get(index)
                if entry is not None:  # opened by another partition of the file meanwhile
                    entry[1] += 1
                    return entry[0]
            found = self.files[index]
            source = self._first if found.name == self._all[0].name else self._open(found)
            try:
                self._check_schema(source, found.name)
            except BaseException:
                if source is not self._first:
                    source.close()
                raise
            with self._lock:
                self._open_sources[index] = [source, 1]
                self._opening.pop(index, None)
            return source

    def _release(self, index: int) -> None:
        """Close a file once no partition reads it (one file alone stays open for its partitions)."""
        with self._lock:
            entry = self._open_sources.get(index)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0 or len(self.files) == 1:
                return
            del self._open_sources[index]
        if entry[0] is not self._first:
            entry[0].close()

    def _ranges(self, index: int, count: int) -> list[Checkpoint]:
        """Up to ``count`` partitions of file ``index`` as its own source cuts them."""
        found = self.files[index]
        if found.name == self._all[0].name:
            return self._first.partitions(count)
        source = self._open(found)
        try:
            return source.partitions(count)
        finally:
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
