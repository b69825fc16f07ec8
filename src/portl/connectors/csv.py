"""CSV and TSV files: streaming reads in byte blocks cut at record boundaries.

Reading never goes through Python rows: the file is read in byte blocks of about ``batch_rows``
records, each cut after its last complete record (see :class:`~portl.connectors.blocks.RecordCutter`),
and each block is parsed by Arrow's CSV reader with every column read as a string. Line numbers
come from counting newlines; in a block with multi-line values or blank lines, the lines each row
spans are read from Arrow's own values (the newlines they hold), so they follow Arrow's quoting
rules exactly.

An empty unquoted field is NULL and a quoted ``""`` stays an empty string, as ``COPY … CSV`` does.
Rows with the wrong number of fields are not fatal: they come back as rejects with their line and
text. A file whose quoted fields hold newlines is read as one partition (``workers: 1``): a byte
offset in the middle of such a file cannot be placed on a record boundary with certainty.

A block may also be handed over as text, for a database to load as it is (``read_verbatim``; the
checks are in :mod:`portl.connectors.csv_verbatim`). Writing is :mod:`portl.connectors.csv_sink`.
"""

from __future__ import annotations

import csv as pycsv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import Field, field_validator, model_validator

from portl.connectors.base import (
    Checkpoint, Chunk, Estimate, Reject, TextFormat, Verbatim, VerbatimOffer, VerbatimRequest,
)
from portl.connectors.blocks import (
    EXACT,
    NEWLINE,
    SAMPLE_BYTES,
    BlockReader,
    RecordCutter,
    check_encoding,
    count_newlines,
    range_starts,
    record_text,
)
from portl.connectors.objectstore import FileConfig, Found, is_glob_path, is_object_url, text_file
from portl.connectors.csv_verbatim import CHECKABLE, BlockCheck
from portl.errors import SourceError, TerminalError
from portl.plural import counted

if TYPE_CHECKING:
    from portl.connectors.csv_sink import CsvSink


class Config(FileConfig):
    """A delimited text file (``type: csv`` or ``type: tsv``)."""

    type: Literal["csv", "tsv"]
    path: str = Field(description="File path, relative to the job file's folder, or s3://bucket/key; a glob (*, ?, [...], **) reads many files.")
    delimiter: str | None = Field(None, description="Field separator; ',' for csv, a tab for tsv.")
    quote_char: str | None = Field('"', description="Quote character; null turns quoting off.")
    escape_char: str | None = Field(None, description="Escape character inside quoted fields (default: doubled quotes).")
    header: bool = Field(True, description="The first line holds column names.")
    columns: list[str] | None = Field(None, description="Column names, for files without a header (or to rename them all).")
    encoding: str = Field("utf-8", description="Text encoding, e.g. utf-8, latin-1, cp1252, utf-16.")
    compression: Literal["auto", "gzip", "none"] = Field("auto", description="'auto' detects gzip from the .gz suffix.")
    null_values: list[str] = Field([""], description="Unquoted values read as NULL. A quoted empty string stays an empty string.")
    skip_rows: int = Field(0, ge=0, description="Lines to skip before the header.")
    allow_empty: bool = Field(False, description="Accept a file with no data rows instead of failing.")

    @field_validator("delimiter", "quote_char", "escape_char")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"must be exactly one character, not {value!r}")
        if value == "\n" or value == "\r":
            raise ValueError("cannot be a line break")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)

    @field_validator("columns")
    @classmethod
    def _distinct_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if any(not name.strip() for name in value):
                raise ValueError("column names cannot be empty")
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"column names must be distinct; repeated: {', '.join(twice)}")
        return value

    @model_validator(mode="after")
    def _distinct_characters(self) -> Config:
        chars = [c for c in (self.field_delimiter, self.quote_char, self.escape_char) if c is not None]
        if len(set(chars)) != len(chars):
            raise ValueError("delimiter, quote_char and escape_char must be different characters")
        return self

    def describe(self) -> str:
        return self.path

    @property
    def field_delimiter(self) -> str:
        return self.delimiter or ("\t" if self.type == "tsv" else ",")


def open_source(config: Config, base_dir: str) -> Any:
    """Open a CSV/TSV file (or every file a glob finds) for reading; a missing, empty or
    unreadable file fails here."""
    if is_glob_path(config, base_dir):
        from portl.connectors.multifile import MultiFileSource

        return MultiFileSource(config, base_dir, CsvSource)
    return CsvSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """Open a CSV/TSV file, or an S3 object, for writing (append or replace)."""
    from portl.connectors.csv_sink import CsvSink

    if is_object_url(config.path):
        from portl.connectors.objectsink import ObjectTextSink

        return ObjectTextSink(config, CsvSink(config, base_dir))
    return CsvSink(config, base_dir)


def sink_capabilities() -> Any:
    """What a CSV or TSV destination can do, as ``portl connectors`` lists it."""
    from portl.connectors.base import Capabilities, WriteMode
    from portl.connectors.csv_sink import CsvSink

    return Capabilities(modes=frozenset({WriteMode.APPEND, WriteMode.REPLACE}), transactional=True, resumable=True,
                        bulk_method=CsvSink.bulk_method)


@dataclass(frozen=True)
class _Layout:
    """What the start of the file says: column names, where data starts, how long rows are."""

    names: list[str]
    data_start: int
    first_line: int
    bytes_per_row: float
    has_rows: bool
    multiline: bool


@dataclass(frozen=True)
class _Block:
    """The raw bytes behind a chunk, kept so that :meth:`CsvSource.raw_rows` can find a row's text.

    ``starts[k]`` / ``spans[k]`` are the first line (0-based, in the block) and the number of
    lines of record ``k`` in Arrow's order, rejects included; None when record ``k`` is line ``k``.
    """

    raw: bytes
    total: int
    rejected: frozenset[int]
    starts: list[int] | None
    spans: list[int] | None


class CsvSource:
    """A CSV or TSV file read in blocks of whole records; every column is read as a string."""

    def __init__(self, config: Config, base_dir: str, found: Found | None = None):
        self.config = config
        self.name = config.path
        self.description = f"{config.type.upper()} file {config.path}"
        self.notes: list[str] = []
        """Things the plan should tell the user, e.g. why the file is read as one partition."""
        self._delimiter = config.field_delimiter
        self._mode = NEWLINE  # how blocks are cut; upgraded when a cut proves wrong (see RecordCutter)
        self._newlines_seen = False  # a value holding a newline was met: parse with newlines_in_values
        self._file = text_file(config, base_dir, found)
        try:
            self._layout = self._scan_head()
        except BaseException:
            self._file.close()
            raise
        names = self._layout.names
        # In a one-column file a blank line is a NULL (as COPY writes and reads it), not nothing.
        self._keep_blank = len(names) == 1
        self._schema = pa.schema([pa.field(name, pa.string()) for name in names])
        self._convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            null_values=list(config.null_values),
            quoted_strings_can_be_null=False,
        )

    # -- the Source seam -----------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate(self) -> Estimate:
        size = self._file.size
        if not self._layout.has_rows:
            return Estimate(rows=0, bytes=size, exact=True)
        rows = None if size is None else max(0, round((size - self._layout.data_start) / self._layout.bytes_per_row))
        return Estimate(rows=rows, bytes=size, exact=False)

    def partitions(self, count: int) -> list[Checkpoint]:
        layout = self._layout
        whole = [self._start("0", layout.data_start, None, layout.first_line, 1)]
        if count <= 1 or not layout.has_rows:
            return whole
        if not self._file.seekable:
            self._note(f"{self.name} is compressed: it is read as one partition")
            return whole
        if layout.multiline or self.config.escape_char:
            self._note(
                f"{self.name} has quoted fields spanning lines (or an escape character): it is read "
                "as one partition; use workers: 1 for such files"
            )
            return whole
        starts = range_starts(self._file, layout.data_start, count, self._looks_like_record)
        newlines = count_newlines(self._file, layout.data_start, starts)
        return [
            self._start(
                str(k),
                offset,
                starts[k + 1] if k + 1 < len(starts) else None,
                layout.first_line + newlines[k],
                newlines[k] + 1,  # records before = lines before (no multi-line records here)
            )
            for k, offset in enumerate(starts)
        ]

    def read(self, batch_rows: int, start: Checkpoint | None = None) -> Iterator[Chunk]:
        return self._read(batch_rows, start, None)

    def verbatim_offer(self) -> VerbatimOffer | None:
        """Blocks go verbatim as RFC 4180 CSV, UTF-8 (other encodings are converted), when the file
        is quoted with doubled quotes, has one NULL spelling and single-byte separators."""
        cfg = self.config
        quote, null = cfg.quote_char, cfg.null_values
        if cfg.escape_char or not quote or len(null) != 1 or not (self._delimiter + quote).isascii():
            return None
        return VerbatimOffer(TextFormat("csv", self._delimiter, quote, null[0]), checks=CHECKABLE, nulls=True)

    def read_verbatim(self, batch_rows: int, start: Checkpoint | None, request: VerbatimRequest) -> Iterator[Chunk]:
        """Blocks that pass ``request`` (see :mod:`portl.connectors.csv_verbatim`) come as text."""
        offer = self.verbatim_offer()
        if offer is None:
            raise TerminalError(f"{self.name} cannot be read verbatim")
        fmt = offer.format
        return self._read(batch_rows, start, BlockCheck(self._layout.names, fmt.delimiter, fmt.quote, fmt.null, request))

    def parse_verbatim(self, chunk: Chunk) -> Chunk:
        """The chunk ``read`` gives for the block of a verbatim chunk."""
        block, line, record, final = chunk.verbatim.state
        # Exact cutting: the block was cut where records end, nothing to second-guess.
        cutter = RecordCutter(self._delimiter, self.config.quote_char, self.config.escape_char, EXACT)
        parsed = self._parse_block(block, block.count(b"\n"), final, line, record, cutter)
        if parsed is None:  # cannot happen with exact cutting; guard the row accounting anyway
            raise TerminalError(f"{self.name} near line {line}: a block read verbatim cannot be parsed again")
        data, rejects, lines, first_line, first_record, raw = parsed
        again = Chunk(data=data, checkpoint=chunk.checkpoint, first_record=first_record, first_line=first_line,
                      lines=lines, rejects=rejects, size_bytes=chunk.size_bytes)
        again._portl_block = raw  # type: ignore[attr-defined]
        return again

    def _read(self, batch_rows: int, start: Checkpoint | None, check: BlockCheck | None) -> Iterator[Chunk]:
        start = start or self.partitions(1)[0]
        if start.done or not self._layout.has_rows:
            return
        pos = start.position
        offset, end = int(pos["offset"]), pos.get("end")
        line, record, rows = int(pos["line"]), int(pos.get("record", 1)), start.rows
        cutter = self._cutter()
        bytes_per_row = self._layout.bytes_per_row
        with self._file.open_at(offset) as stream:
            reader = BlockReader(self._file.read_from(stream), offset, end, cutter)
            while True:
                got = reader.next_block(max(256, int(batch_rows * bytes_per_row)), batch_rows)
                if got is None:
                    return
                block, final, newlines = got
                if check is not None:
                    verbatim = self._verbatim_chunk(block, newlines, final, check, start.partition, offset, end, line,
                                                    record, rows)
                    if verbatim is not None:
                        offset += len(block)
                        line += newlines
                        record += verbatim.verbatim.rows
                        rows += verbatim.verbatim.rows
                        bytes_per_row = len(block) / verbatim.verbatim.rows
                        yield verbatim
                        continue
                parsed = self._parse_block(block, newlines, final, line, record, cutter)
                if parsed is None:  # the cut was inside a quoted field: cut again, more surely
                    reader.unread(block)
                    continue
                data, rejects, lines, first_line, first_record, raw = parsed
                consumed = data.num_rows + len(rejects)
                offset += len(block)
                line += newlines
                record += consumed
                rows += consumed
                if consumed:
                    bytes_per_row = len(block) / consumed
                chunk = Chunk(
                    data=data,
                    checkpoint=Checkpoint(
                        start.partition, {"offset": offset, "end": end, "line": line, "record": record}, rows, final
                    ),
                    first_record=first_record,
                    first_line=first_line,
                    lines=lines,
                    rejects=rejects,
                    size_bytes=len(block),
                )
                chunk._portl_block = raw  # type: ignore[attr-defined]
                yield chunk

    def _verbatim_chunk(self, block: bytes, newlines: int, final: bool, check: BlockCheck, partition: str, offset: int,
                        end: int | None, line: int, record: int, rows: int) -> Chunk | None:
        """The block as a verbatim chunk, when it passes the checks; its checkpoint is the one the
        parsed block would have (no blank lines, no line breaks in values: one record per line)."""
        text = self._file.to_utf8(block, line)
        count = check.rows(text, newlines, final)
        if count is None:
            return None
        after = {"offset": offset + len(block), "end": end, "line": line + newlines, "record": record + count}
        return Chunk(data=_empty(self._schema),
                     checkpoint=Checkpoint(partition, after, rows + count, final), first_record=record, first_line=line,
                     size_bytes=len(block), verbatim=Verbatim(text, count, (block, line, record, final)),
                     checked=check.parsed)

    def raw_rows(self, chunk: Chunk, indexes: list[int]) -> dict[int, str]:
        """The original text of data rows ``indexes`` of ``chunk`` (e.g. of rows being rejected)."""
        block: _Block | None = getattr(chunk, "_portl_block", None)
        if block is None or (block.spans is not None and block.starts is None):
            return {}  # no chunk of ours, or its records could not be placed on lines
        segments = block.raw.split(b"\n")
        data = [k for k in range(block.total) if k + 1 not in block.rejected]
        found = {}
        for i in indexes:
            if 0 <= i < len(data):
                k = data[i]
                start = k if block.starts is None else block.starts[k]
                span = 1 if block.spans is None else block.spans[k]
                found[i] = self._file.text(record_text(b"\n".join(segments[start : start + span])))
        return found

    def close(self) -> None:
        self._file.close()

    # -- the start of the file -----------------------------------------------------------------

    def _scan_head(self) -> _Layout:
        cfg, file = self.config, self._file
        with file.open_at(0) as stream:
            head = _Head(file.read_from(stream))
            pos, line = file.bom_length(head.buf), 1
            for _ in range(cfg.skip_rows):
                newline = head.find_newline(pos)
                if newline < 0:
                    pos = len(head.buf)
                    break
                pos, line = newline + 1, line + 1
            if not head.has_content(pos) and not (cfg.allow_empty and cfg.columns and not cfg.header):
                raise SourceError(f"{self.name} is empty: no header and no rows")
            _check_line_endings(self.name, head.buf[pos:])
            cutter = self._cutter()
            if cfg.header:
                header = head.first_record(pos, cutter)
                names = self._split(file.decode(header, line))
                self._check_header(names, line)
                if cfg.columns is not None and len(cfg.columns) != len(names):
                    raise SourceError(
                        f"{self.name}: `columns:` lists {counted(len(cfg.columns), 'name')} but the header on line "
                        f"{line} has {counted(len(names), 'field')}"
                    )
                pos, line = pos + len(header), line + header.count(b"\n")
                names = list(cfg.columns or names)
            elif cfg.columns is not None:
                names = list(cfg.columns)
            else:
                first = self._split(file.decode(head.first_record(pos, cutter), line))
                names = [f"column_{i}" for i in range(1, len(first) + 1)]
            has_rows = head.has_content(pos)
            if not has_rows and not cfg.allow_empty:
                raise SourceError(
                    f"{self.name} has a header but no data rows; set allow_empty: true on the source "
                    "if an empty load is expected"
                )
            sample = head.buf[pos:]
        if not head.eof:
            sample = sample[: max(0, sample.rfind(b"\n") + 1)]
        ends = self._cutter().record_ends(sample)
        tail = 1 if sample.strip() and not sample.endswith(b"\n") else 0
        return _Layout(
            names=names,
            data_start=pos,
            first_line=line,
            bytes_per_row=max(1.0, len(sample) / max(1, len(ends) + tail)) if sample else 100.0,
            has_rows=has_rows,
            multiline=len(ends) != sample.count(b"\n"),
        )

    def _split(self, text: str) -> list[str]:
        """The fields of one record, with Python's csv module (for the header only)."""
        quote = self.config.quote_char
        reader = pycsv.reader(
            io.StringIO(text, newline=""),
            delimiter=self._delimiter,
            quotechar=quote or '"',
            quoting=pycsv.QUOTE_MINIMAL if quote else pycsv.QUOTE_NONE,
            escapechar=self.config.escape_char,
            doublequote=True,
            strict=False,
        )
        try:
            return next(reader, [])
        except pycsv.Error as exc:
            raise SourceError(f"{self.name}: cannot read the first record: {exc}") from exc

    def _check_header(self, names: list[str], line: int) -> None:
        where = f"{self.name} line {line}"
        fix = "set `columns:` on the source to name every column"
        empty = [str(i) for i, name in enumerate(names, 1) if not name.strip()]
        if empty:
            noun = "column" if len(empty) == 1 else "columns"
            verb = "has" if len(empty) == 1 else "have"
            raise SourceError(f"{where}: {noun} {', '.join(empty)} of the header {verb} no name; {fix}")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise SourceError(f"{where}: the header repeats the column names {', '.join(twice)}; {fix}")

    def _looks_like_record(self, line: bytes) -> bool:
        text = self._file.text(record_text(line))
        return len(self._split(text)) == len(self._layout.names)

    def _start(self, partition: str, offset: int, end: int | None, line: int, record: int) -> Checkpoint:
        return Checkpoint(partition, {"offset": offset, "end": end, "line": line, "record": record}, 0)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- blocks --------------------------------------------------------------------------------

    def _cutter(self) -> RecordCutter:
        return RecordCutter(self._delimiter, self.config.quote_char, self.config.escape_char, self._mode)

    def _parse_block(self, block: bytes, newlines: int, final: bool, line: int, record: int, cutter: RecordCutter):
        """Parse one block: (data, rejects, lines, first_line, first_record, raw block), or None
        when the block turns out to end inside a quoted field and must be cut again."""
        data = self._file.to_utf8(block, line)
        table, bad, newlines_in_values = self._arrow_parse(data, line, threads=True)
        total = table.num_rows + len(bad)
        if bad:  # Arrow numbers the bad records only when it parses on one thread
            table, bad, _ = self._arrow_parse(data, line, threads=False, newlines=newlines_in_values)
        if not final and not cutter.trivial and cutter.mode != EXACT and self._suspect_cut(table, bad, total):
            ends = cutter.record_ends(block, exact=True)
            if not ends or ends[-1] != len(block):
                cutter.upgrade()
                self._mode = cutter.mode
                return None
        physical = newlines + (1 if final and block and not block.endswith(b"\n") else 0)
        starts = spans = None
        if physical != total:  # multi-line records or blank lines: place each record
            spans = _record_spans(table, bad)
            starts = _record_starts(block, spans, physical)
        known = physical == total or starts is not None

        def line_of(k: int) -> int | None:  # k: 1-based record number within the block
            if not known:
                return None
            return line + (k - 1 if starts is None else starts[k - 1])

        rejected = frozenset(int(number) for number, *_ in bad)
        rejects = [
            Reject(
                source=self.name,
                error=f"expected {expected} fields, found {actual}",
                line=line_of(number),
                record=record + number - 1,
                original=text,
            )
            for number, expected, actual, text in bad
        ]
        lines: list[int] | None = None
        first_line: int | None = line if known else None
        first_record = record
        if bad or starts is not None:
            kept = [k for k in range(1, total + 1) if k not in rejected] if bad else range(1, total + 1)
            if kept:
                first_record = record + kept[0] - 1
                if known:
                    offsets = range(total) if starts is None else starts
                    lines = [line + offsets[k - 1] for k in kept] if bad else [line + o for o in offsets]
                    first_line = lines[0]
        raw = _Block(block, total, rejected, starts, spans)
        return _single_batch(table, self._schema), rejects, lines, first_line, first_record, raw

    def _suspect_cut(self, table: pa.Table, bad: list[tuple], total: int) -> bool:
        """Whether the block's last record may have swallowed the newline it was cut at.

        A cut inside a quoted field leaves Arrow a last record whose quoted field runs to the
        end of the block: either it is ragged, or its last value ends with that newline.
        """
        if any(number == total for number, *_ in bad):
            return True
        if table.num_rows == 0 or not (self.config.quote_char or self.config.escape_char):
            return False
        last = table.column(table.num_columns - 1)[table.num_rows - 1].as_py()
        return isinstance(last, str) and last.endswith("\n")

    def _arrow_parse(
        self, data: bytes, line: int, threads: bool, newlines: bool | None = None
    ) -> tuple[pa.Table, list[tuple], bool]:
        """Parse a block with Arrow: (table, bad records, whether values may hold newlines).

        Arrow splits a block into chunks at newlines to parse them in parallel, and unless told
        that values may hold newlines (``newlines_in_values``, markedly slower) it can split inside
        a quoted field without noticing. Such a split always leaves a trace: the value cut short
        keeps the newline it was cut at, or its record comes out ragged. So a block is parsed the
        fast way first, and again the careful way only when it shows a newline in a value or a
        ragged row (or is known to need it: ``newlines``). Once a block needed the careful way, the
        rest of the file goes straight to it.
        """
        if _CONTENT.search(data) is None:  # only line breaks (strip would copy the block)
            return self._schema.empty_table(), [], False
        cfg = self.config
        if newlines is None:
            special = (cfg.quote_char or "") + (cfg.escape_char or "")
            if not any(char.encode() in data for char in special):
                newlines = False  # without quotes or escapes, every newline ends a record
            elif self._newlines_seen:
                newlines = True
            else:
                table, bad = self._arrow_read(data, line, threads, False)
                holds = _holds_newline(table)
                if not bad and not holds:
                    return table, bad, False
                newlines = True
                self._newlines_seen = self._newlines_seen or holds
        table, bad = self._arrow_read(data, line, threads, newlines)
        return table, bad, newlines

    def _arrow_read(self, data: bytes, line: int, threads: bool, newlines: bool) -> tuple[pa.Table, list[tuple]]:
        bad: list[tuple] = []

        def on_invalid(row: Any) -> str:
            bad.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "skip"

        cfg = self.config
        parse = pacsv.ParseOptions(
            delimiter=self._delimiter,
            quote_char=cfg.quote_char or False,
            escape_char=cfg.escape_char or False,
            double_quote=True,
            newlines_in_values=newlines,
            ignore_empty_lines=not self._keep_blank,
            invalid_row_handler=on_invalid,
        )
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(column_names=self._layout.names, use_threads=threads),
                parse_options=parse,
                convert_options=self._convert,
            )
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "UTF8" in message:
                located = self._file.locate_invalid_utf8(data, line)
                if located is not None:
                    raise located from None
            if "out of sync" in message and not newlines:
                return self._arrow_read(data, line, threads, True)
            raise SourceError(f"{self.name} near line {line}: cannot parse the CSV data: {message}") from exc
        return table, bad


class _Head:
    """The start of a file, read a sample at a time as the header scan needs it."""

    def __init__(self, read: Callable[[int], bytes]):
        self._read = read
        self.buf = b""
        self.eof = False
        self.more()

    def more(self) -> bool:
        if self.eof:
            return False
        data = self._read(SAMPLE_BYTES)
        self.eof = len(data) < SAMPLE_BYTES
        self.buf += data
        return bool(data)

    def find_newline(self, pos: int) -> int:
        found = self.buf.find(b"\n", pos)
        while found < 0 and self.more():
            found = self.buf.find(b"\n", pos)
        return found

    def has_content(self, pos: int) -> bool:
        while not self.buf[pos:].strip():
            if not self.more():
                return False
        return True

    def first_record(self, pos: int, cutter: RecordCutter) -> bytes:
        end = cutter.first_end(self.buf[pos:])
        while end < 0 and self.more():
            end = cutter.first_end(self.buf[pos:])
        return self.buf[pos : pos + end] if end > 0 else self.buf[pos:]


_CONTENT = re.compile(rb"[^\r\n]")


def _check_line_endings(name: str, data: bytes) -> None:
    if b"\n" not in data and data.rstrip(b"\r").count(b"\r") > 0:
        raise SourceError(
            f"{name} ends its lines with a bare carriage return (old Mac style), which is not "
            "supported; convert the line endings to LF or CRLF"
        )


def _holds_newline(table: pa.Table) -> bool:
    """Whether any value of the (all-string) table holds a newline."""
    return any(_column_holds_newline(column) for column in table.columns)


def _column_holds_newline(column: pa.ChunkedArray) -> bool:
    # Looking for the byte in the values buffer is much cheaper than a compute kernel.
    return any(b"\n" in chunk.buffers()[2].to_pybytes() for chunk in column.chunks if chunk.buffers()[2])


def _record_spans(table: pa.Table, bad: list[tuple]) -> list[int]:
    """How many lines each record spans, in Arrow's order: one plus the newlines in its values.

    Arrow's own values say where the quoted (or escaped) newlines were, whatever the quoting.
    """
    spans = pa.array([1] * table.num_rows, pa.int64())
    for column in table.columns:
        if _column_holds_newline(column):  # most columns hold none: skip counting them
            spans = pc.add(spans, pc.fill_null(pc.count_substring(column, "\n"), 0))
    spans = spans.to_pylist()
    if not bad:
        return spans
    rejected = {number: 1 + text.count("\n") for number, _, _, text in bad}
    kept = iter(spans)
    return [rejected[k] if k in rejected else next(kept) for k in range(1, len(spans) + len(bad) + 1)]


def _record_starts(block: bytes, spans: list[int], physical: int) -> list[int] | None:
    """The first line (0-based) of each record; lines no record spans are blank lines."""
    blank = physical - sum(spans)
    if blank < 0:
        return None  # Arrow and the newline count disagree: leave the lines unknown
    if blank == 0:
        return list(accumulate(spans[:-1], initial=0))
    segments = block.split(b"\n")
    starts, at = [], 0
    for span in spans:
        while at < len(segments) and segments[at] in (b"", b"\r"):
            at += 1
        starts.append(at)
        at += span
    return starts if at <= physical else None


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _single_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=schema)
    return batches[0]
