"""Arrow batches ↔ the CSV text of ``COPY … (FORMAT csv)``, vectorised.

COPY's CSV rules: an unquoted empty field is NULL, a quoted one (``""``) is an empty string.
Arrow's CSV writer quotes every string value and writes NULL as an empty unquoted field, which is
exactly that; its reader does the reverse when quoted strings are not allowed to be NULL. The
types Arrow and Postgres spell differently are converted column by column: bytes travel as
``\\x``-prefixed hex text, booleans come back as ``t``/``f``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from portl.connectors.base import Reject
from portl.types import logical_of

_WRITE = pcsv.WriteOptions(include_header=False, quoting_style="needed")


def encode(batch: pa.RecordBatch) -> pa.Buffer:
    """The rows of ``batch`` as COPY CSV text."""
    columns = [_for_copy(c) for c in batch.columns]
    out = pa.BufferOutputStream()
    pcsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), out, _WRITE)
    return out.getvalue()


def _for_copy(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _hex(column)
    if pa.types.is_dictionary(t):
        return _for_copy(column.dictionary_decode())
    if pa.types.is_timestamp(t) and t.tz:
        # Arrow writes UTC with a "Z"; Postgres reads it, but +00:00 says the same to every reader.
        return pc.replace_substring(pc.cast(pc.cast(column, pa.timestamp(t.unit, "UTC")), pa.string()), "Z", "+00:00")
    return column


def _hex(column: pa.Array) -> pa.Array:
    """Binary values as ``\\x0a1b…`` text: one ``bytes.hex()`` call over the whole data buffer,
    offsets doubled, then the prefix joined on."""
    if pa.types.is_fixed_size_binary(column.type):
        column = column.cast(pa.binary())
    column = column.cast(pa.large_binary())
    offsets = pa.Array.from_buffers(pa.int64(), len(column) + 1, [None, column.buffers()[1]], offset=column.offset)
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    data = column.buffers()[2]
    text = (data[first:last].to_pybytes() if data is not None else b"").hex().encode()
    doubled = pc.multiply(pc.subtract(offsets, first), 2)
    hexed = pa.Array.from_buffers(pa.large_string(), len(column), [_validity(column), doubled.buffers()[1], pa.py_buffer(text)])
    return pc.binary_join_element_wise(pa.scalar("\\x", pa.large_string()), hexed, pa.scalar("", pa.large_string()))


def _validity(column: pa.Array) -> pa.Buffer | None:
    """The validity bitmap of ``column`` starting at bit 0 (a sliced array's may not)."""
    if column.null_count == 0:
        return None
    return pc.is_valid(column).buffers()[1]


def _unhex(text: pa.Array) -> pa.Array:
    """``\\x0a1b…`` texts back to binary values."""
    digits = pc.utf8_slice_codeunits(text, 2).cast(pa.large_string())
    offsets = pa.Array.from_buffers(pa.int64(), len(digits) + 1, [None, digits.buffers()[1]], offset=digits.offset)
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    data = digits.buffers()[2]
    raw = bytes.fromhex(data[first:last].to_pybytes().decode("ascii")) if data is not None else b""
    halved = pc.divide(pc.subtract(offsets, first), 2)
    return pa.Array.from_buffers(pa.large_binary(), len(digits), [_validity(digits), halved.buffers()[1], pa.py_buffer(raw)]).cast(pa.binary())


@dataclass
class Decoded:
    """One block of COPY text as a batch; rows whose values do not fit their column are rejects."""

    batch: pa.RecordBatch
    rejects: list[Reject] = field(default_factory=list)
    last_key: object = None


class Decoder:
    """Parses blocks of whole COPY CSV rows into batches of ``schema``."""

    def __init__(self, schema: pa.Schema, source: str, key: str | None = None):
        self.schema, self.source = schema, source
        self.key_index = schema.get_field_index(key) if key else -1
        names = [f"c{i}" for i in range(len(schema))]  # a query may repeat a column name
        self._names = names
        self._read = pcsv.ReadOptions(column_names=names, block_size=1 << 26)
        self._parse = pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        fast = {n: self._wire_type(f) for n, f in zip(names, schema)}
        self._fast = self._convert(fast)
        self._text = self._convert({n: pa.string() for n in names})

    @staticmethod
    def _wire_type(f: pa.Field) -> pa.DataType:
        if pa.types.is_binary(f.type):
            return pa.string()
        return f.type

    @staticmethod
    def _convert(types: dict[str, pa.DataType]) -> pcsv.ConvertOptions:
        return pcsv.ConvertOptions(column_types=types, true_values=["t"], false_values=["f"], null_values=[""],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)

    def decode(self, data: bytes, rows: int, first_record: int) -> Decoded:
        try:
            table = self._parse_as(data, self._fast)
            arrays = [self._finish(f, table.column(i).combine_chunks()) for i, f in enumerate(self.schema)]
        except (pa.ArrowInvalid, ValueError):
            return self._decode_slowly(data, first_record)
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if batch.num_rows != rows:
            raise ValueError(f"COPY sent {rows} rows but {batch.num_rows} were parsed")
        last = batch.column(self.key_index)[-1].as_py() if self.key_index >= 0 and batch.num_rows else None
        return Decoded(batch, [], last)

    def _parse_as(self, data: bytes, convert: pcsv.ConvertOptions) -> pa.Table:
        return pcsv.read_csv(io.BytesIO(data), read_options=self._read, parse_options=self._parse, convert_options=convert)

    @staticmethod
    def _finish(f: pa.Field, column: pa.Array) -> pa.Array:
        if pa.types.is_binary(f.type):
            return _unhex(column)
        return column

    def _decode_slowly(self, data: bytes, first_record: int) -> Decoded:
        """Some value did not parse (``NaN`` in a decimal, ``infinity`` in a date…): read the block
        as text and convert column by column; a value that does not fit rejects its row."""
        table = self._parse_as(data, self._text)
        texts = [table.column(i).combine_chunks() for i in range(len(self.schema))]
        bad: dict[int, tuple[str, str]] = {}
        arrays = []
        for f, text in zip(self.schema, texts):
            try:
                arrays.append(self._from_text(f, text))
            except (pa.ArrowInvalid, ValueError):
                good = []
                for i, value in enumerate(text.to_pylist()):
                    try:
                        self._from_text(f, pa.array([value], pa.string()))
                        good.append(value)
                    except (pa.ArrowInvalid, ValueError):
                        bad.setdefault(i, (f.name, value))
                        good.append(None)
                arrays.append(self._from_text(f, pa.array(good, pa.string())))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        last = texts[self.key_index][-1].as_py() if self.key_index >= 0 and len(texts[0]) else None
        last = int(last) if last is not None else None
        if not bad:
            return Decoded(batch, [], last)
        rejects = [Reject(self.source, f"value {v!r} does not fit column {name} ({logical_of(self.schema.field(name))})",
                          record=first_record + i, column=name, value=v) for i, (name, v) in sorted(bad.items())]
        keep = pa.array([i not in bad for i in range(batch.num_rows)])
        return Decoded(batch.filter(keep), rejects, last)

    @staticmethod
    def _from_text(f: pa.Field, text: pa.Array) -> pa.Array:
        t = f.type
        if pa.types.is_binary(t):
            return _unhex(text)
        if pa.types.is_boolean(t):
            if not pc.all(pc.is_in(pc.drop_null(text), pa.array(["t", "f"]))).as_py():
                raise ValueError("not a boolean")
            return pc.equal(text, "t")
        return pc.cast(text, t)
