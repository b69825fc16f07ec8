"""Writing CSV and TSV files: the rows of each batch appended with Arrow's CSV writer, a header
for a new file, and the checks that an existing file has the columns being written."""

from __future__ import annotations

import codecs
import csv as pycsv
import gzip
import io
import os
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from portl.connectors.base import ColumnInfo, TableInfo, WriteMode
from portl.connectors.blocks import SAMPLE_BYTES, RecordCutter
from portl.connectors.config import resolve_path
from portl.connectors.csv import Config
from portl.connectors.filesink import ByteFileSink, text_ready
from portl.errors import ConfigError, TerminalError


class CsvSink(ByteFileSink):
    """Writes CSV/TSV: NULL as an empty unquoted field, strings quoted, dates and times in ISO text
    (``2024-01-02``, ``2024-01-02 03:04:05``), decimals with their scale."""

    bulk_method = "pyarrow CSV writer, fsync per batch"

    def __init__(self, config: Config, base_dir: str):
        if config.quote_char not in ('"', None):
            raise ConfigError(
                f"{config.path}: CSV files are written with quote_char '\"' or null, not {config.quote_char!r}"
            )
        self.config = config
        self.format_label = config.type.upper()
        self._delimiter = config.field_delimiter
        path = resolve_path(config.path, base_dir)
        compressed = config.compression == "gzip" or (config.compression == "auto" and path.lower().endswith(".gz"))
        super().__init__(path, config.path, compressed)
        self._options = pacsv.WriteOptions(
            include_header=False,
            delimiter=self._delimiter,
            quoting_style="needed" if config.quote_char else "none",
        )

    def header(self, schema: pa.Schema) -> bytes:
        if not self.config.header:
            return "".encode(self.config.encoding)  # a byte order mark, for the encodings that have one
        out = io.StringIO()
        pycsv.writer(
            out,
            delimiter=self._delimiter,
            quoting=pycsv.QUOTE_MINIMAL if self.config.quote_char else pycsv.QUOTE_NONE,
            lineterminator="\n",
        ).writerow(schema.names)
        return self._to_encoding(out.getvalue())

    def encode(self, batch: pa.RecordBatch) -> bytes:
        sink = pa.BufferOutputStream()
        try:
            pacsv.write_csv(text_ready(batch, csv=True), sink, self._options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TerminalError(f"cannot write {self.name} as CSV: {exc}") from exc
        data = sink.getvalue().to_pybytes()
        if self._utf8:
            return data
        # Only a new file's header carries a byte order mark (utf-16, utf-8-sig): strip it here.
        return self._to_encoding(data.decode("utf-8"))[len("".encode(self.config.encoding)) :]

    def check_existing(self, schema: pa.Schema) -> None:
        existing = self._existing_header()
        if existing is not None and existing != list(schema.names):
            raise TerminalError(
                f"{self.name} already has the columns {', '.join(existing)}, but this load writes "
                f"{', '.join(schema.names)}; use mode: replace, or map the columns to match the file"
            )

    def table_info(self) -> TableInfo | None:
        side = self._read_sidecar()
        if side is not None and side.get("mode") == WriteMode.APPEND.value and not side.get("initial_size"):
            return None  # only what an unfinished run wrote, into a file new to it: --resume plans as that run did
        names = self._existing_header() if os.path.exists(self.path) else None
        if not names:
            return None
        return TableInfo(self.name, [ColumnInfo(name, pa.string(), declared="text") for name in names])

    def count_rows(self) -> int | None:
        path = self.final_or_current_path
        if not os.path.exists(path):
            return None
        ragged = 0

        def on_invalid(row: Any) -> str:
            nonlocal ragged
            ragged += 1
            return "skip"

        stream = pa.input_stream(path, compression="gzip" if self.compressed else None)
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    skip_rows=1 if self.config.header else 0,
                    autogenerate_column_names=True,
                    encoding=self.config.encoding,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self._delimiter,
                    quote_char=self.config.quote_char or False,
                    newlines_in_values=True,
                    ignore_empty_lines=self._columns() != 1,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pacsv.ConvertOptions(include_columns=["f0"], column_types={"f0": pa.string()}),
            )
            return sum(batch.num_rows for batch in reader) + ragged
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return 0
            raise TerminalError(f"cannot count the rows of {self.name}: {exc}") from exc
        finally:
            stream.close()

    def _columns(self) -> int | None:
        if self.schema is not None:
            return len(self.schema)
        header = self._existing_header()
        return None if header is None else len(header)

    @property
    def _utf8(self) -> bool:
        return codecs.lookup(self.config.encoding).name in ("utf-8", "utf-8-sig")

    def _to_encoding(self, text: str) -> bytes:
        try:
            return text.encode(self.config.encoding)
        except UnicodeEncodeError as exc:
            raise TerminalError(
                f"cannot write {self.name}: {exc.object[exc.start:exc.end]!r} has no {self.config.encoding} "
                "encoding; set `encoding: utf-8` on the destination"
            ) from exc

    def _existing_header(self) -> list[str] | None:
        if not self.config.header:
            return None
        try:
            opener = gzip.open if self.compressed else open
            with opener(self.path, "rb") as f:
                head = f.read(SAMPLE_BYTES)
        except (OSError, EOFError) as exc:
            raise TerminalError(f"cannot read the existing file {self.name}: {exc}") from exc
        if not head.strip():
            return None
        cutter = RecordCutter(self._delimiter, self.config.quote_char, None)
        end = cutter.first_end(head)
        first = head[:end] if end > 0 else head
        text = first.decode(self.config.encoding, errors="replace").removeprefix("\ufeff")
        quote = self.config.quote_char or '"'
        reader = pycsv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter, quotechar=quote)
        return next(reader, [])
