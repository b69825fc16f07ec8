"""Logical types ↔ index mappings, Arrow batches → documents, hits → Arrow batches.

Mapping of each logical type, when Portl creates an index:

=============== ======================================================================
int / bigint    ``integer`` / ``long``
float           ``double`` (NaN and ±Infinity, which JSON cannot carry, become null, with a warning)
decimal(p,s)    ``keyword`` holding the exact text (``12.30``): a double would lose digits past
                the 15th, a ``scaled_float`` past 2^53; sorting and ranges on it are by text
bool            ``boolean``
text            ``text`` with a ``keyword`` sub-field (``name.keyword``, first 256 characters)
date            ``date`` in format ``yyyy-MM-dd``
timestamp       ``date`` (``strict_date_optional_time``), written without an offset
timestamptz     ``date``, written in UTC with ``Z``; the index keeps milliseconds for search and
                sorting, ``_source`` keeps the microseconds, and reading gives them back
json            ``object`` with ``enabled: false``: stored as the document itself (any JSON value)
                but not indexed, so documents of different shapes never clash
uuid            ``keyword``
bytes           ``binary`` (base64)
=============== ======================================================================

The index's ``_meta.portl`` records each column's logical type and the key, so that reading the
index back gives the types that were written. An index Portl did not create is read by its
mapping: ``long`` → bigint, ``integer``/``short``/``byte`` → int, ``unsigned_long`` →
decimal(20,0), the floating types → float, ``boolean`` → bool, ``date``/``date_nanos`` →
timestamptz, ``binary`` → bytes, ``object``/``nested``/``flattened`` → json, anything else → text.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import Reject
from portl.types import LogicalType, arrow_field, decimal_text, logical_of, parse_type, uuid_text

KEYWORD_LENGTH = 256


def field_mapping(logical: LogicalType) -> dict[str, Any]:
    """The mapping of a column of ``logical`` type in an index Portl creates."""
    name = logical.name
    if name == "text":
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": KEYWORD_LENGTH}}}
    if name == "date":
        return {"type": "date", "format": "yyyy-MM-dd"}
    if name in ("timestamp", "timestamptz"):
        return {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
    if name == "json":
        return {"type": "object", "enabled": False}
    return {"type": {"int": "integer", "bigint": "long", "float": "double", "bool": "boolean", "uuid": "keyword",
                     "bytes": "binary", "decimal": "keyword"}[name]}


def index_mappings(schema: pa.Schema, key: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``mappings`` of a new index for ``schema``, its logical types and key in ``_meta``."""
    columns = {f.name: str(logical_of(f)) for f in schema}
    meta: dict[str, Any] = {"columns": columns}
    if key:
        meta["key"] = list(key)
    return {"_meta": {"portl": meta}, "properties": {f.name: field_mapping(logical_of(f)) for f in schema}}


def logical_of_mapping(mapping: dict[str, Any]) -> LogicalType:
    """The logical type of a field of an index Portl did not create, from its mapping."""
    kind = mapping.get("type", "object" if "properties" in mapping else "text")
    if kind == "long":
        return LogicalType("bigint")
    if kind in ("integer", "short", "byte"):
        return LogicalType("int")
    if kind == "unsigned_long":
        return LogicalType("decimal", 20, 0)
    if kind in ("double", "float", "half_float", "scaled_float"):
        return LogicalType("float")
    if kind == "boolean":
        return LogicalType("bool")
    if kind in ("date", "date_nanos"):
        return LogicalType("timestamptz")
    if kind == "binary":
        return LogicalType("bytes")
    if kind in ("object", "nested", "flattened"):
        return LogicalType("json")
    return LogicalType("text")


def schema_of(mappings: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of an index, from its ``mappings``: the logical types Portl recorded, else
    those its field types stand for."""
    recorded = ((mappings.get("_meta") or {}).get("portl") or {}).get("columns") or {}
    properties = mappings.get("properties") or {}
    fields = []
    for name, logical in recorded.items():
        fields.append(arrow_field(name, parse_type(logical)))
    for name, mapping in properties.items():
        if name not in recorded:
            fields.append(arrow_field(name, logical_of_mapping(mapping)))
    return pa.schema(fields)


def merged_mappings(answer: dict[str, Any]) -> dict[str, Any]:
    """The mappings of an index from a ``GET <index>/_mapping`` answer: for an alias over several
    indexes, their fields together (and the ``_meta`` of one of them)."""
    merged: dict[str, Any] = {"properties": {}}
    for value in answer.values():
        mappings = value.get("mappings") or {}
        merged["properties"].update(mappings.get("properties") or {})
        if mappings.get("_meta"):
            merged["_meta"] = mappings["_meta"]
    return merged


def key_of(mappings: dict[str, Any]) -> tuple[str, ...]:
    """The key Portl recorded when it created the index with one, else ()."""
    return tuple(((mappings.get("_meta") or {}).get("portl") or {}).get("key") or ())


# --- writing -------------------------------------------------------------------------------


def documents(batch: pa.RecordBatch) -> tuple[list[dict[str, Any]], list[str]]:
    """The batch's rows as JSON documents, and warnings for values changed on the way."""
    warnings: list[str] = []
    columns: dict[str, list[Any]] = {}
    for field, column in zip(batch.schema, batch.columns):
        columns[field.name] = _json_values(field, column, warnings)
    names = list(columns)
    rows = zip(*columns.values()) if names else iter([() for _ in range(batch.num_rows)])
    return [dict(zip(names, values)) for values in rows], warnings


def _json_values(field: pa.Field, column: pa.Array, warnings: list[str]) -> list[Any]:
    logical = logical_of(field)
    name, t = logical.name, column.type
    if name == "decimal":
        return decimal_text(column if pa.types.is_decimal(t) else column.cast(pa.decimal128(38, 0))).to_pylist()
    if name == "uuid" and isinstance(column, pa.ExtensionArray):
        return uuid_text(column).to_pylist()
    if name == "date":
        return pc.cast(column, pa.string()).to_pylist()
    if name in ("timestamp", "timestamptz"):
        if name == "timestamptz":
            column = pc.cast(column, pa.timestamp("us", "UTC"))
        else:
            column = pc.cast(column, pa.timestamp("us"))
        text = pc.replace_substring(pc.cast(column, pa.string()), " ", "T", max_replacements=1)
        return text.to_pylist()
    if name == "bytes":
        return [None if v is None else base64.b64encode(v).decode("ascii") for v in column.to_pylist()]
    if name == "json":
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return [None if v is None else json.loads(v) for v in column.to_pylist()]
        return column.to_pylist()
    if name == "float":
        values = column.to_pylist()
        if pc.any(pc.invert(pc.is_finite(column.cast(pa.float64())))).as_py():
            warnings.append(f"column {field.name}: NaN and ±Infinity cannot be stored in a JSON document; "
                            "they were written as null")
            return [v if v is None or math.isfinite(v) else None for v in values]
        return values
    return column.to_pylist()


def key_text(values: list[Any]) -> str:
    """A document ``_id`` from the values of its key columns, as the documents hold them.

    One column: its value as text (``42``, ``ann``, ``2024-01-31``). Several: each value's text
    with ``\\`` and ``|`` escaped by a backslash, joined by ``|`` (``7|north\\|east``), so two
    different keys never give the same ``_id``."""
    texts = [_text(v) for v in values]
    if len(texts) == 1:
        return texts[0]
    return "|".join(t.replace("\\", "\\\\").replace("|", "\\|") for t in texts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


# --- reading -------------------------------------------------------------------------------


def to_batch(schema: pa.Schema, sources: list[dict[str, Any]], source: str, first_record: int,
             ids: list[str]) -> tuple[pa.RecordBatch, list[Reject]]:
    """Build a batch of ``schema`` from documents' ``_source``. A value that does not fit its
    column's type rejects its document (named by ``_id``) instead of failing the batch."""
    arrays, bad = [], {}
    for field in schema:
        values = [doc.get(field.name) for doc in sources]
        try:
            arrays.append(_column(field, values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, binascii.Error):
            fixed = []
            for i, v in enumerate(values):
                try:
                    _column(field, [v])
                    fixed.append(v)
                except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, binascii.Error):
                    bad.setdefault(i, (field.name, v))
                    fixed.append(None)
            arrays.append(_column(field, fixed))
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    if not bad:
        return batch, []
    rejects = [Reject(source, f"document {ids[i]}: value {v!r} does not fit column {name} "
                              f"({logical_of(schema.field(name))})", record=first_record + i, column=name, value=v,
                      original=json.dumps(sources[i], ensure_ascii=False, default=str))
               for i, (name, v) in sorted(bad.items())]
    keep = pa.array([i not in bad for i in range(batch.num_rows)])
    return batch.filter(keep), rejects


def _column(field: pa.Field, values: list[Any]) -> pa.Array:
    name, t = logical_of(field).name, field.type
    if name in ("date", "timestamp", "timestamptz"):
        text = pa.array([_date_text(v) for v in values], pa.string())
        if name == "date":
            return pc.cast(pc.utf8_slice_codeunits(text, 0, 10), t)
        if name == "timestamptz":
            return pc.cast(pc.cast(text, pa.timestamp("us", "UTC")), t)
        return pc.cast(text, t)
    if name == "decimal":
        return pc.cast(pa.array([None if v is None else str(v) for v in values], pa.string()), t)
    if name == "bytes":
        return pa.array([None if v is None else base64.b64decode(v, validate=True) for v in values], t)
    if name == "json":
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], t)
    if name == "text" or name == "uuid":
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                         for v in values], t)
    if name == "bool":
        return pa.array([_bool(v) for v in values], t)
    return pa.array(values, t)


def _date_text(value: Any) -> str | None:
    """A date value as ISO text: documents may hold epoch milliseconds as well."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        import datetime as dt

        moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=value)
        return moment.isoformat()
    raise ValueError(f"not a date: {value!r}")


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "false"):  # Elasticsearch takes (and keeps) booleans sent as text
        return value == "true"
    raise ValueError(f"not a boolean: {value!r}")
