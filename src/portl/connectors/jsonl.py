"""JSON lines files: one JSON object per line, streamed in blocks; and writes.

Blocks are cut at newlines (a JSON string cannot hold a raw newline) and parsed by Arrow's JSON
reader with the schema inferred from the first MiB of the file. Inferred timestamps and all-null
fields are read as strings, so that ``"2024-01-02"`` stays what it was and a field first seen
empty can still hold text. A block Arrow refuses is read line by line to find the lines that are
not JSON objects, or whose values do not fit the inferred types; those come back as rejects with
their line, and the rest of the block is loaded. Blank lines are ignored. Fields that first appear
after the sample are not read (the source says so in ``notes``).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.json as pajson
from pydantic import Field, field_validator

from portl.connectors.base import Checkpoint, Chunk, Estimate, Reject
from portl.connectors.blocks import (
    SAMPLE_BYTES,
    BlockReader,
    NewlineCutter,
    check_encoding,
    count_newlines,
    range_starts,
    record_text,
)
from portl.connectors.config import resolve_path
from portl.connectors.objectstore import FileConfig, Found, is_glob_path, is_object_url, text_file
from portl.connectors.filesink import ByteFileSink, json_default, text_ready
from portl.errors import SourceError, TerminalError
from portl.types import LogicalType, arrow_field


class Config(FileConfig):
    """A JSON lines file (``type: jsonl``), optionally gzip-compressed."""

    type: Literal["jsonl"]
    path: str = Field(description="File path, relative to the job file's folder, or s3://bucket/key; a glob (*, ?, [...], **) reads many files.")
    encoding: str = Field("utf-8", description="Text encoding.")
    compression: Literal["auto", "gzip", "none"] = Field("auto", description="'auto' detects gzip from the .gz suffix.")
    allow_empty: bool = Field(False, description="Accept a file with no rows instead of failing.")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)

    def describe(self) -> str:
        return self.path


def open_source(config: Config, base_dir: str) -> Any:
    """Open a JSON lines file (or every file a glob finds) for reading; a missing or empty file fails here."""
    if is_glob_path(config, base_dir):
        from portl.connectors.multifile import MultiFileSource

        return MultiFileSource(config, base_dir, JsonlSource)
    return JsonlSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """Open a JSON lines file, or an S3 object, for writing (append or replace)."""
    if is_object_url(config.path):
        from portl.connectors.objectsink import ObjectTextSink

        return ObjectTextSink(config, JsonlSink(config, base_dir))
    return JsonlSink(config, base_dir)


def sink_capabilities() -> Any:
    """What a JSON lines destination can do, as ``portl connectors`` lists it."""
    from portl.connectors.base import Capabilities, WriteMode

    return Capabilities(modes=frozenset({WriteMode.APPEND, WriteMode.REPLACE}), transactional=True, resumable=True,
                        bulk_method=JsonlSink.bulk_method)


@dataclass(frozen=True)
class _Block:
    """The raw bytes behind a chunk and the block line of each data row, for ``raw_rows``."""

    raw: bytes
    line: int
    lines: list[int] | None


class JsonlSource:
    """A JSON lines file read in blocks; the schema is inferred from the first MiB."""

    def __init__(self, config: Config, base_dir: str, found: Found | None = None):
        self.config = config
        self.name = config.path
        self.description = f"JSON lines file {config.path}"
        self.notes: list[str] = []
        self._unknown: set[str] = set()
        self._file = text_file(config, base_dir, found)
        self._schema: pa.Schema | None = None
        try:
            self._scan_head()
        except BaseException:
            self._file.close()
            raise

    # -- the Source seam -----------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        return _public_schema(self._schema)  # type: ignore[arg-type]

    def estimate(self) -> Estimate:
        size = self._file.size
        if not self._has_rows:
            return Estimate(rows=0, bytes=size, exact=True)
        rows = None if size is None else max(0, round((size - self._data_start) / self._bytes_per_row))
        return Estimate(rows=rows, bytes=size, exact=False)

    def partitions(self, count: int) -> list[Checkpoint]:
        whole = [_start("0", self._data_start, None, 1, 1)]
        if count <= 1 or not self._has_rows:
            return whole
        if not self._file.seekable:
            self._note(f"{self.name} is compressed: it is read as one partition")
            return whole
        starts = range_starts(self._file, self._data_start, count, lambda line: True)
        newlines = count_newlines(self._file, self._data_start, starts)
        return [
            _start(str(k), offset, starts[k + 1] if k + 1 < len(starts) else None, 1 + newlines[k], 1 + newlines[k])
            for k, offset in enumerate(starts)
        ]

    def read(self, batch_rows: int, start: Checkpoint | None = None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done or not self._has_rows:
            return
        pos = start.position
        offset, end = int(pos["offset"]), pos.get("end")
        line, record, rows = int(pos["line"]), int(pos.get("record", 1)), start.rows
        bytes_per_row = self._bytes_per_row
        with self._file.open_at(offset) as stream:
            reader = BlockReader(self._file.read_from(stream), offset, end, NewlineCutter())
            while True:
                got = reader.next_block(max(256, int(batch_rows * bytes_per_row)), batch_rows)
                if got is None:
                    return
                block, final, newlines = got
                table, rejects, lines = self._parse_block(block, line, self._schema, newlines)
                rejects = [dataclasses.replace(r, record=record + r.record - 1) if r.record else r for r in rejects]
                data = _single_batch(table, self._schema)  # type: ignore[arg-type]
                data = self._nested_as_text(data, block, line, lines)
                consumed = data.num_rows + len(rejects)
                offset += len(block)
                chunk = Chunk(
                    data=data,
                    checkpoint=Checkpoint(
                        start.partition,
                        {"offset": offset, "end": end, "line": line + newlines, "record": record + consumed},
                        rows + consumed,
                        final,
                    ),
                    first_record=record,
                    first_line=lines[0] if lines else line,
                    lines=lines,
                    rejects=rejects,
                    size_bytes=len(block),
                )
                chunk._portl_block = _Block(block, line, lines)  # type: ignore[attr-defined]
                line += newlines
                record += consumed
                rows += consumed
                if consumed:
                    bytes_per_row = len(block) / consumed
                yield chunk

    def _nested_as_text(self, data: pa.RecordBatch, block: bytes, line: int, lines: list[int] | None) -> pa.RecordBatch:
        """Objects and arrays as their own JSON text. Arrow infers one struct per column, whose
        members are every key seen in any row, so a row's object would come back with keys it
        never had; the text of the line is the faithful value. One json.loads per row, and only
        for files with nested values."""
        nested = [i for i, f in enumerate(data.schema) if _is_nested(f.type)]
        if not nested or data.num_rows == 0:
            return data
        pieces = self._file.to_utf8(block, line).split(b"\n")
        if lines is None:
            rows = [json.loads(p) for p in pieces if p.strip()]
        else:
            rows = [json.loads(pieces[n - line]) for n in lines]
        columns = list(data.columns)
        for i in nested:
            name = data.schema.field(i).name
            texts = [None if r.get(name) is None else json.dumps(r[name], ensure_ascii=False) for r in rows]
            columns[i] = pa.array(texts, pa.string())
        return pa.RecordBatch.from_arrays(columns, schema=_public_schema(data.schema))

    def raw_rows(self, chunk: Chunk, indexes: list[int]) -> dict[int, str]:
        """The original line of data rows ``indexes`` of ``chunk`` (e.g. of rows being rejected)."""
        block: _Block | None = getattr(chunk, "_portl_block", None)
        if block is None:
            return {}
        pieces = block.raw.split(b"\n")
        found = {}
        for i in indexes:
            at = i if block.lines is None else (block.lines[i] - block.line if 0 <= i < len(block.lines) else -1)
            if 0 <= at < len(pieces):
                found[i] = self._file.text(record_text(pieces[at]))
        return found

    def close(self) -> None:
        self._file.close()

    # -- reading -------------------------------------------------------------------------------

    def _scan_head(self) -> None:
        with self._file.open_at(0) as stream:
            read = self._file.read_from(stream)
            head = read(SAMPLE_BYTES)
            eof = len(head) < SAMPLE_BYTES
            start = self._file.bom_length(head)
            while not eof and (not head[start:].strip() or b"\n" not in head[start:]):
                more = read(SAMPLE_BYTES)
                eof = len(more) < SAMPLE_BYTES
                head += more
        self._data_start = start
        sample = head[start:]
        self._has_rows = bool(sample.strip())
        if not self._has_rows:
            if not self.config.allow_empty:
                raise SourceError(
                    f"{self.name} is empty: no rows; set allow_empty: true on the source if an empty load is expected"
                )
            self._schema, self._bytes_per_row = pa.schema([]), 100.0
            return
        if not eof:
            sample = sample[: sample.rfind(b"\n") + 1]
        try:
            table, rejects, _ = self._parse_block(sample, 1, None)
        except pa.ArrowInvalid as exc:
            raise SourceError(f"{self.name}: cannot infer the fields of the first rows: {exc}") from exc
        if table.num_rows == 0:
            first = rejects[0]
            raise SourceError(
                f"{self.name}: {'the first line holds no' if len(rejects) == 1 else f'no line of the first {len(rejects)} holds a'} JSON object, so there is no "
                f"schema to read; line {first.line}: {first.error}"
            )
        self._schema = _readable_schema(table.schema)
        self._bytes_per_row = max(1.0, len(sample) / (table.num_rows + len(rejects)))

    def _parse_block(
        self, block: bytes, line: int, schema: pa.Schema | None, newlines: int | None = None
    ) -> tuple[pa.Table, list[Reject], list[int] | None]:
        """Rows, rejects and (when not simply one row per line) the line of each row."""
        data = self._file.to_utf8(block, line)
        if not data.isascii():
            located = self._file.locate_invalid_utf8(data, line)
            if located is not None:
                raise located
        physical = (data.count(b"\n") if newlines is None else newlines) + (0 if data.endswith(b"\n") else 1)
        data = _restore_non_finite(data, schema)
        try:
            table = self._arrow_read(data, schema)
        except pa.ArrowInvalid:
            return self._parse_lines(data, line, schema)
        if table.num_rows == physical:
            return self._conform(table, schema, line), [], None
        filled = [i for i, piece in enumerate(data.split(b"\n")) if piece.strip()]
        if len(filled) == table.num_rows:  # blank lines, which Arrow skips
            return self._conform(table, schema, line), [], [line + i for i in filled]
        return self._parse_lines(data, line, schema)

    def _parse_lines(
        self, data: bytes, line: int, schema: pa.Schema | None
    ) -> tuple[pa.Table, list[Reject], list[int]]:
        """The slow path: find the lines Arrow cannot take, one by one."""
        good: list[bytes] = []
        lines: list[int] = []
        rejects: list[Reject] = []
        ordinals: dict[int, int] = {}  # line -> record number within the block (blank lines hold none)
        for i, raw in enumerate(data.split(b"\n")):
            if not raw.strip():
                continue
            ordinals[line + i] = len(ordinals) + 1
            try:
                value = json.loads(raw)
            except ValueError as exc:
                detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
                rejects.append(self._reject(line + i, f"not valid JSON: {detail}", raw, ordinals[line + i]))
                continue
            if not isinstance(value, dict):
                rejects.append(self._reject(line + i, f"not a JSON object but {_json_kind(value)}", raw, ordinals[line + i]))
                continue
            good.append(raw)
            lines.append(line + i)
        table, inferring = None, schema is None
        if good:
            try:
                table = self._arrow_read(b"\n".join(good), schema)
                if table.num_rows != len(good):
                    table = None
            except pa.ArrowInvalid as exc:
                if inferring:  # the sample disagrees with itself: its first rows set the types
                    found = re.search(r"in row (\d+)", str(exc))
                    prefix = max(1, int(found.group(1))) if found else 1
                    schema = _readable_schema(self._arrow_read(b"\n".join(good[:prefix]), None).schema)
        if table is None and good:
            kept, kept_lines = [], []
            for raw, where in zip(good, lines):
                try:
                    fits = self._arrow_read(raw, schema).num_rows == 1
                    problem = "it holds more than one JSON value"
                except pa.ArrowInvalid as exc:
                    fits, problem = False, str(exc).removeprefix("JSON parse error: ")
                if fits:
                    kept.append(raw)
                    kept_lines.append(where)
                else:
                    rejects.append(_type_change(self._reject(where, "", raw, ordinals[where]), problem, raw))
            good, lines = kept, kept_lines
            if good:
                try:
                    table = self._arrow_read(b"\n".join(good), schema)
                except pa.ArrowInvalid:  # fields outside the schema whose types disagree: leave them
                    table = self._arrow_read(b"\n".join(good), schema, extras="ignore")
        rejects.sort(key=lambda r: r.line or 0)
        if table is None:
            table = (schema or pa.schema([])).empty_table()
        return (table if inferring else self._conform(table, schema, line)), rejects, lines

    def _arrow_read(self, data: bytes, schema: pa.Schema | None, extras: str = "infer") -> pa.Table:
        if schema is None:
            options = pajson.ParseOptions(newlines_in_values=False)
        else:
            options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior=extras)
        return pajson.read_json(pa.BufferReader(data), parse_options=options)

    def _conform(self, table: pa.Table, schema: pa.Schema | None, line: int) -> pa.Table:
        """Keep the schema's fields, in its order; note fields the schema does not have."""
        if schema is None:
            return table
        extra = [name for name in table.column_names if name not in schema.names and name not in self._unknown]
        for name in extra:
            self._unknown.add(name)
            self._note(
                f"{self.name}: field {name!r} (first seen near line {line}) is not among the fields of the "
                "first rows, which set the schema; it is not read"
            )
        if not table.num_columns:
            return table
        table = table.select(schema.names)
        if table.schema.equals(schema):
            return table
        columns = []
        for field, column in zip(schema, table.columns):
            try:
                columns.append(column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # e.g. a struct that grew a member after the sample: keep the sample's members
                columns.append(pa.array(column.to_pylist(), type=field.type))
        return pa.Table.from_arrays(columns, schema=schema)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _reject(self, line: int, error: str, raw: bytes, record: int | None = None) -> Reject:
        """``record``: the row's number within its block; ``read`` makes it the file's."""
        return Reject(source=self.name, error=error, line=line, record=record, original=self._file.text(record_text(raw)))


_CHANGED = re.compile(r"Column\(/([^)]*)\) changed from (\w+) to (\w+)")


def _type_change(reject: Reject, problem: str, raw: bytes) -> Reject:
    """A line whose field has another JSON type than in the first rows, with that field and its
    value; Arrow's own words (``Column(/id) changed from number to string in row 0``) count rows
    of a one-line parse, which would mislead."""
    found = _CHANGED.search(problem)
    if found is None:
        return dataclasses.replace(reject, error=f"does not fit the types read from the first rows: {problem}")
    path, before, after = found.groups()
    column = path.split("/")[0]
    value = json.loads(raw).get(column)
    where = f"field {path.replace('/', '.')}"
    error = f"{where} is {_article(after)} here, but {_article(before)} in the first rows, which set the types"
    return dataclasses.replace(reject, error=error, column=column, value=value)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _start(partition: str, offset: int, end: int | None, line: int, record: int) -> Checkpoint:
    return Checkpoint(partition, {"offset": offset, "end": end, "line": line, "record": record}, 0)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _readable_schema(schema: pa.Schema) -> pa.Schema:
    """Inferred types made safe to hold later rows: timestamps and nulls become strings."""
    return pa.schema([pa.field(f.name, _readable_type(f.type)) for f in schema])


def _readable_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_null(kind) or pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_readable_type(kind.value_type))
    if pa.types.is_struct(kind):
        members = [kind.field(i) for i in range(kind.num_fields)]
        return pa.struct([pa.field(m.name, _readable_type(m.type)) for m in members])
    return kind


def _is_nested(kind: pa.DataType) -> bool:
    return pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)


def _public_schema(schema: pa.Schema) -> pa.Schema:
    """The schema batches are yielded with: nested columns are JSON text."""
    return pa.schema([arrow_field(f.name, LogicalType("json")) if _is_nested(f.type) else f for f in schema])


def _single_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=schema)
    return batches[0]


# -- writing ------------------------------------------------------------------------------------


class JsonlSink(ByteFileSink):
    """Writes one JSON object per line: ISO dates and times, decimals as strings, bytes base64."""

    format_label = "JSON lines"
    bulk_method = "json.dumps per row, fsync per batch"

    def __init__(self, config: Config, base_dir: str):
        self.config = config
        path = resolve_path(config.path, base_dir)
        compressed = config.compression == "gzip" or (config.compression == "auto" and path.lower().endswith(".gz"))
        super().__init__(path, config.path, compressed)
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default
        )
        self._bom = len("".encode(config.encoding))

    def header(self, schema: pa.Schema) -> bytes:
        return "".encode(self.config.encoding)  # a byte order mark, for the encodings that have one

    def encode(self, batch: pa.RecordBatch) -> bytes:
        # Arrow has no JSON writer, so this is the one per-row loop of the file sinks; the columns
        # are first made JSON-ready in Arrow (ISO text, exact decimals) so the loop only dumps.
        encode = self._encoder.encode
        lines = []
        for row in text_ready(batch).to_pylist():
            try:
                lines.append(encode(row))
            except ValueError:  # NaN or infinity: JSON has no such numbers, keep them as text
                lines.append(encode({k: _finite(v) for k, v in row.items()}))
        text = "\n".join(lines) + "\n"
        try:
            return text.encode(self.config.encoding)[self._bom :]
        except UnicodeEncodeError as exc:
            raise TerminalError(
                f"cannot write {self.name}: {exc.object[exc.start:exc.end]!r} has no {self.config.encoding} "
                "encoding; set `encoding: utf-8` on the destination"
            ) from exc

    def count_rows(self) -> int | None:
        path = self.final_or_current_path
        if not os.path.exists(path):
            return None
        opener = gzip.open if self.compressed else open
        with opener(path, "rb") as f:
            return sum(1 for line in f if line.strip())


def _restore_non_finite(data: bytes, schema: pa.Schema | None) -> bytes:
    """``data`` with the texts ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` of floating-point
    fields turned back into numbers (the tokens Arrow's reader takes): JSON has no such numbers, so
    the writer keeps them as text (:func:`_finite`), and its files read back as they were written.
    One substitution over the block, for those fields' names only; other bytes stay as they are."""
    if schema is None or b'"NaN"' not in data and b'Infinity"' not in data:
        return data
    names = [json.dumps(f.name, ensure_ascii=False)[1:-1].encode("utf-8")
             for f in schema if pa.types.is_floating(f.type)]
    if not names:
        return data
    field = b"|".join(re.escape(name) for name in names)
    return re.sub(rb'("(?:' + field + rb')"\s*:\s*)"(NaN|-?Infinity)"', rb"\1\2", data)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
