"""Isolating the rows a destination refuses: the batch's good rows are loaded, each bad row rejected.

When the destination refuses a batch for the data of some of its rows (a value too long for its
column, out of range or not a date, a NULL in a NOT NULL column, a duplicate key, a missing
foreign key: :class:`~portl.errors.RowRefused`), the engine does not give up the batch. It writes
the batch again in parts, each in a savepoint of the batch's transaction, until every part is
either loaded or a single refused row:

- When the server names the row (a Postgres ``COPY`` error gives its line in the COPY; MySQL
  names it for a value that does not fit its column), the part is split there: the rows before it
  are written as one part (the server got past them), the named row is rejected with the
  server's message, and the rows after it are written as two halves (a clean rest costs one
  write more than a whole one, a rest full of bad rows splits down quickly).
- Otherwise (a foreign key or unique constraint checked at the end of a statement), the part is
  cut in halves.

One bad row among N costs about log2(N) writes of shrinking parts when the server names no row,
and three more writes when it names it; a batch of bad rows costs about one write per bad row.
Parts are written in order, so of two rows with the same key in one batch the first is loaded.
The good rows, the rejects and the checkpoint still commit together (see ``engine.run``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from portl.connectors.base import Chunk, Reject, Verbatim, WriteResult
from portl.errors import RowRefused

REFUSED = "refused by the destination"


@dataclass
class Isolated:
    """What writing a refused batch in parts gave: the counts of the rows written, and each
    refused row (its position in the batch) with the server's reason."""

    result: WriteResult = field(default_factory=WriteResult)
    refused: list[tuple[int, RowRefused]] = field(default_factory=list)
    writes: int = 0
    stopped: bool = False
    """More rows were refused than the limit allowed: the isolation stopped partway."""


def isolate(write: Callable[[int, int], WriteResult], rows: int, first: RowRefused, *, hint: bool = False,
            limit: int | None = None) -> Isolated:
    """Write rows ``0..rows`` of a batch whose whole write was refused with ``first``.

    ``write(start, stop)`` writes rows ``start..stop`` (stop excluded) and returns their counts,
    or raises :class:`RowRefused` having undone its own work (a savepoint), with ``row`` relative
    to ``start`` when the server named one. Any other error stops the isolation and is raised.
    With ``hint``, ``first`` came from another write of the same rows (the source's text, before
    it was parsed): the batch is split at the row it names, but that row is written too. With
    ``limit``, the isolation stops (``stopped``) as soon as more rows than that are refused: a run
    about to exceed its reject limit need not sort out the rest of a batch of bad rows.
    """
    out = Isolated()
    doubted = first if hint else None
    # A stack of parts still to write, the next one on top; a part comes with the refusal it is
    # already known for (the whole batch's, first), else None: it has not been tried yet.
    todo: list[tuple[int, int, RowRefused | None]] = [(0, rows, first)]
    while todo:
        start, stop, refused = todo.pop()
        if refused is None:
            out.writes += 1
            try:
                counts = write(start, stop)
            except RowRefused as exc:
                refused = exc
            else:
                _add(out.result, counts)
                continue
        if stop - start == 1:
            out.refused.append((start, refused))
            if limit is not None and len(out.refused) > limit:
                out.stopped = True
                return out
            continue
        named = refused.row
        if named is not None and 0 <= named < stop - start:
            bad = start + named
            middle = (bad + 1 + stop) // 2
            named_refused = None if refused is doubted else refused
            parts = [(start, bad, None), (bad, bad + 1, named_refused), (bad + 1, middle, None), (middle, stop, None)]
        else:
            middle = (start + stop) // 2
            parts = [(start, middle, None), (middle, stop, None)]
        todo.extend(reversed([p for p in parts if p[1] > p[0]]))
    return out


def _add(total: WriteResult, part: WriteResult) -> None:
    total.inserted += part.inserted
    total.updated += part.updated
    total.skipped += part.skipped


def refused_rejects(found: Isolated, data: pa.RecordBatch, source_index: pa.Array, chunk: Chunk, source: str,
                    raw_rows: Callable[[Chunk, list[int]], dict[int, str]] | None) -> list[Reject]:
    """One reject per refused row: its line and record in the source, the column and value the
    server named (the value as the batch holds it), the server's reason, and the row's original
    text (the source's own text when it has one, else the row as written, as JSON)."""
    if not found.refused:
        return []
    positions = [source_index[i].as_py() for i, _ in found.refused]
    originals: dict[int, str] = {}
    if raw_rows is not None:
        try:
            originals = raw_rows(chunk, positions)
        except Exception:  # the original text is a courtesy; the reject itself is recorded anyway
            originals = {}
    rejects = []
    for (i, refused), position in zip(found.refused, positions):
        column, value = refused.column, refused.value
        if column is not None and column in data.schema.names:
            value = data.column(column)[i].as_py()
        original = originals.get(position)
        if original is None:
            row = data.slice(i, 1).to_pylist()[0]
            original = json.dumps(row, default=str, ensure_ascii=False)
        rejects.append(Reject(source, f"{REFUSED}: {refused.reason}", chunk.line_of(position),
                              chunk.record_of(position), column, value, original))
    return rejects


def record_starts(block: Verbatim) -> list[int] | None:
    """Where each record of a CSV text block starts, and its end: ``starts[i]:starts[i + 1]``
    are the bytes of record ``i``. Only for a block of one record per line (no line break inside
    a value), the only kind cut here without parsing; else None."""
    data, rows = block.data, block.rows
    if not rows:
        return None
    lines = data.count(b"\n")
    if lines not in (rows, rows - 1) or (lines == rows - 1 and data.endswith(b"\n")):
        return None
    starts, at = [0], 0
    find = data.find
    for _ in range(lines):
        at = find(b"\n", at) + 1
        starts.append(at)
    if lines == rows - 1:
        starts.append(len(data))
    return starts


def text_rejects(found: Isolated, chunk: Chunk, block: Verbatim, starts: list[int], source: str) -> list[Reject]:
    """One reject per refused record of a text block: its line and record (one record per line),
    the column and value the server named, its reason, and the record's own text."""
    rejects = []
    for i, refused in found.refused:
        text = block.data[starts[i]:starts[i + 1]].decode("utf-8", "replace").rstrip("\r\n")
        line = None if chunk.first_line is None else chunk.first_line + i
        rejects.append(Reject(source, f"{REFUSED}: {refused.reason}", line, chunk.record_of(i), refused.column,
                              refused.value, text))
    return rejects
