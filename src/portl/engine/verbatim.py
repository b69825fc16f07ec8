"""The verbatim path: when a source's text blocks may be loaded by the destination as they are.

Parsing a block into Arrow, mapping it and encoding it again for the destination costs more
than the load itself when the mapping changes nothing: the same columns, no transforms, no
defaults, no row hooks. Then the source hands each block over as text and the destination
loads it (Postgres ``COPY … FROM STDIN (FORMAT csv)`` of the very bytes of a CSV file, or of
another Postgres server's ``COPY … TO STDOUT``).

The rows must come out as the Arrow path would write them. Text columns need nothing. A column
the mapping converts (``id`` text to ``bigint``) is checked per block: the source makes sure every
value is in canonical form (:class:`~portl.connectors.base.VerbatimOffer`), where the
destination reads what Portl would; a block that fails a check is read the ordinary way. The
destination says which of its column types read canonical text as Portl does
(``verbatim_problems``). When the destination still refuses a block (a value out of range, a
NOT NULL column), the engine loads it again in parts, as text when its records are its lines and
else parsed the ordinary way, and rejects each refused row with its line (:mod:`portl.engine.isolate`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa

from portl.connectors.base import (
    ConflictStrategy, Sink, Source, TableInfo, TextFormat, VerbatimRequest, VerbatimSink, VerbatimSource, WriteMode,
    WriteSpec,
)
from portl.engine.mapping import MappingPlan
from portl.types import logical_of

ROW_HOOKS = ("before_row", "after_row")
# In-batch duplicate keys make these strategies fail on the server (and the block fall back to
# the Arrow path, which settles them); under skip they would be skipped silently, with another reason.
_UPSERTS = {ConflictStrategy.OVERWRITE, ConflictStrategy.MERGE}


@dataclass(frozen=True)
class VerbatimPlan:
    """How blocks go verbatim: the format, the destination columns in the source's field order,
    and what each block is checked for."""

    format: TextFormat
    columns: tuple[str, ...]
    request: VerbatimRequest

    def describe(self) -> str:
        checked = [f"{name} {logical}" for name, logical in self.request.types]
        what = f"; each block is checked for canonical {', '.join(checked)}" if checked else ""
        nulls = f"; and for NULLs in {', '.join(sorted(self.request.required))}" if self.request.required else ""
        text = "binary COPY rows go" if self.format.kind == "pgbinary" else f"{self.format.kind} text goes"
        return (f"the source's {text} to the destination as it is{what}{nulls}, loaded in "
                "place of the per-batch statements below. A block that fails a check is parsed and loaded by those "
                "statements instead; one the destination refuses is loaded again in parts, its refused rows rejected")


def verbatim_plan(source: Source, sink: Sink, mapping: MappingPlan, spec: WriteSpec, destination: TableInfo | None,
                  *, hooks: set[str], transaction: str) -> tuple[VerbatimPlan | None, str]:
    """The verbatim plan for this job, or None and why not."""
    if not isinstance(source, VerbatimSource) or not isinstance(sink, VerbatimSink):
        return None, "the source or the destination cannot move text as it is"
    offer = source.verbatim_offer()
    if offer is None:
        return None, f"{source.description} cannot hand its rows over as text (format, encoding or escapes)"
    formats = [f for f in (offer.format, *offer.also) if f.kind in sink.capabilities.verbatim]
    if not formats:
        return None, f"{sink.description} does not load {offer.format.kind} text"
    if transaction != "batch":
        return None, "transaction: job (a refused block could not be loaded again in the same transaction)"
    if hooks & set(ROW_HOOKS):
        return None, "row hooks need the rows as values"
    if spec.mode == WriteMode.UPSERT and spec.strategy not in _UPSERTS:
        return None, f"conflict strategy {spec.strategy.value if spec.strategy else None} settles duplicate keys itself"
    schema = source.schema()
    readers: dict[str, str] = {}
    for column in mapping.columns:
        if len(column.sources) != 1 or column.transforms or column.formats or column.default is not None:
            return None, f"column {column.name} is computed (transforms, format, default or several sources)"
        if column.sources[0] in readers:
            return None, f"source column {column.sources[0]} is written twice"
        readers[column.sources[0]] = column.name
    missing = [name for name in schema.names if name not in readers]
    if missing:
        return None, f"source column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not loaded"
    by_name = {c.name: c for c in mapping.columns}
    types, required = [], set()
    for f in schema:
        column = by_name[readers[f.name]]
        have, want = logical_of(f), column.logical
        if have == want and (offer.own_types or have.name == "text"):
            pass  # the text is already what the Arrow path would write
        elif have.name == "text" and want.name in offer.checks:
            types.append((f.name, want))
        else:
            return None, f"column {column.name}: {have} to {want} cannot be checked in the source's text"
        if column.required and not _enforced(destination, column.name):
            if not offer.nulls:
                return None, f"column {column.name} is required, and the source cannot check a block for NULLs"
            required.add(f.name)
    why = ""
    for fmt in formats:  # the source's order of preference; the first the destination takes
        if fmt.wire_types:  # named by source column: the destination knows its own names
            fmt = dataclasses.replace(fmt, wire_types=tuple((readers[c], t, m) for c, t, m in fmt.wire_types))
        problems = sink.verbatim_problems(mapping.schema, spec, fmt)
        if not problems:
            columns = tuple(readers[name] for name in schema.names)
            return VerbatimPlan(fmt, columns, VerbatimRequest(tuple(types), frozenset(required), fmt)), ""
        why = why or problems[0]
    return None, why


def _enforced(destination: TableInfo | None, name: str) -> bool:
    """Whether the destination itself refuses NULL in the column (then it needs no check)."""
    info = destination.column(name) if destination is not None else None
    return info is not None and not info.nullable


def empty_like(schema: pa.Schema) -> pa.RecordBatch:
    """An empty batch of ``schema`` (the data of a verbatim chunk)."""
    return pa.RecordBatch.from_pylist([], schema=schema)
