"""Checks that let a block of a CSV file go to a database verbatim (see ``portl.engine.verbatim``).

A block goes as it is only when a database's CSV reader (Postgres ``COPY … (FORMAT csv)``) would
cut it into the same records and fields as Arrow does, and every converted field is in the
canonical form of its type:

- **Quotes.** Arrow treats a quote as special only at the start of a field; Postgres toggles
  quoting at every quote. They agree when every quoted section starts a field, ends it, and holds
  only doubled quotes: one regular expression over the block checks that, and that no quoted
  field holds a line break (so records and lines are the same).
- **Blank lines** are skipped by Arrow and refused by a database: a block with one is parsed.
- **Types.** The fields of converted columns are parsed with Arrow's typed CSV reader, which only
  takes canonical text: ``[+-]digits`` for integers, a decimal with no more fractional digits
  than the scale, an ISO date, ISO 8601 times (with an offset only for ``timestamptz``), a plain
  float, true/false words. Such text is read by Portl's coercion and by the database as the
  same value, or refused by both; anything else sends the block down the ordinary path.
- **NULLs** in required columns are counted.
"""

from __future__ import annotations

import re
import pyarrow as pa
import pyarrow.csv as pacsv

from portl.connectors.base import VerbatimRequest
from portl.types import arrow_type

CHECKABLE = frozenset({"int", "bigint", "decimal", "float", "bool", "date", "timestamp", "timestamptz"})
# Case variants Portl's coercion takes (it lowercases); other spellings just take the ordinary path.
_TRUE = ["true", "t", "yes", "y", "1", "True", "TRUE", "T", "Yes", "YES", "Y"]
_FALSE = ["false", "f", "no", "n", "0", "False", "FALSE", "F", "No", "NO", "N"]


class BlockCheck:
    """The checks of one verbatim request, for the blocks of one file."""

    def __init__(self, names: list[str], delimiter: str, quote: str, null: str, request: VerbatimRequest):
        self.names, self.delimiter, self.quote, self.null = names, delimiter, quote, null
        self.required = sorted(request.required)
        self.parsed: pa.Table | None = None
        """The last block's parsed columns, once ``rows`` accepted it."""
        d, q = re.escape(delimiter.encode()), re.escape(quote.encode())
        # Unquoted runs hold no quote; a quoted section follows a delimiter, a line start or the
        # start of the block, holds no line break, and is followed by a delimiter or a line end.
        quoted = b"(?<![^" + d + b"\n])" + q + b"(?:[^" + q + b"\r\n]++|" + q + q + b")*+" + q + b"(?![^" + d + b"\r\n])"
        self._structure = re.compile(b"(?:[^" + q + b"]++|" + quoted + b")*+")
        self._quote = quote.encode()
        # Converted columns are parsed by type; required ones, and those the quality checks read, as text.
        types = {name: arrow_type(logical) for name, logical in request.types}
        types.update({name: pa.string() for name in sorted(set(self.required) | set(request.text)) if name not in types})
        self._types = types
        self._parse_options = pacsv.ParseOptions(delimiter=delimiter, quote_char=quote, double_quote=True,
                                                 newlines_in_values=False, ignore_empty_lines=len(names) > 1)
        self._convert_options = pacsv.ConvertOptions(
            column_types=types, include_columns=list(types), null_values=[null], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=_TRUE, false_values=_FALSE)

    def rows(self, block: bytes, newlines: int, final: bool) -> int | None:
        """The number of records of ``block`` (holding ``newlines`` line feeds) when it may go
        verbatim, else None."""
        lines = newlines + (1 if final and block and not block.endswith(b"\n") else 0)
        self.parsed = None
        if not lines:
            return None
        if self._quote in block and self._structure.match(block).end() != len(block):
            return None
        if self._types:
            # Arrow skips blank lines: a block holding one comes out a row short.
            table = self._parse(block)
            if table is None or table.num_rows != lines:
                return None
            if any(table.column(name).null_count for name in self.required):
                return None
            self.parsed = table
        elif len(self.names) > 1 and (block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block):
            return None
        return lines

    def _parse(self, block: bytes) -> pa.Table | None:
        try:
            # One thread: the check runs beside the database's own work, and Arrow's threads
            # would only take CPU from it (1M rows: 0.48 s of CPU with threads, 0.33 s without).
            read = pacsv.ReadOptions(column_names=self.names, use_threads=False, block_size=len(block) + 1)
            return pacsv.read_csv(pa.BufferReader(block), read_options=read,
                                  parse_options=self._parse_options, convert_options=self._convert_options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # a field that is not canonical, a ragged row: the ordinary path decides
