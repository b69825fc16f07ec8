"""The mapping stage: which destination columns are written, and how each is computed per batch.

:func:`resolve_mapping` checks a job's ``mapping:`` against the source schema and the destination
table once, before anything is read, and returns a :class:`MappingPlan` (shown by the dry-run).
:func:`apply_mapping` runs that plan on each source batch: per destination column, the source value
(or ``concat``/``coalesce`` of several, or nothing but a default) goes through the transforms in
order, is coerced to the destination type, gets its default where null, and is checked for
``required``. A value that fails rejects its row, not the batch.

Auto-mapping compares normalised names (:func:`normalise_name`). It maps the source columns that no
explicit ``columns:`` entry reads: a column renamed explicitly is not mapped a second time under its
own name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from portl.connectors.base import ColumnInfo, TableInfo
from portl.engine import transforms
from portl.engine.coerce import BYTES_FORMATS, Step, accepts, coerce, kind_of, or_masks, reject
from portl.errors import ConfigError, Problem, SourceError
from portl.spec.models import ColumnSpec, Mapping, Transform
from portl.types import META_KEY, LogicalType, arrow_field, logical_of

_TYPE_TRANSFORMS = {
    "money": LogicalType("decimal", *transforms.MONEY_DEFAULT),
    "percent": LogicalType("decimal", *transforms.PERCENT_DEFAULT),
    "date": LogicalType("date"),
    "datetime": LogicalType("timestamp"),
}
_DECLARED_TYPES = {"json": "json", "jsonb": "json", "uuid": "uuid"}


@dataclass(frozen=True)
class ColumnPlan:
    """How one destination column is computed."""

    name: str
    sources: tuple[str, ...]
    transforms: tuple[Transform, ...]
    logical: LogicalType
    field: pa.Field
    required: bool
    default: Any
    formats: tuple[str, ...]
    origin: str
    """``explicit`` or ``auto``, followed by where the type came from when not from the mapping."""
    type_source: str
    """``mapping``, ``destination``, ``transform``, ``source`` or ``default``."""


@dataclass(frozen=True)
class MappingPlan:
    """The resolved mapping: destination columns in order, their schema, and what the plan shows."""

    columns: tuple[ColumnPlan, ...]
    schema: pa.Schema
    unmapped_source: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RowError:
    """Why one input row was rejected: the first failing column and its value."""

    index: int
    column: str
    value: Any
    error: str


@dataclass
class MappedBatch:
    """A mapped batch: clean rows, where each came from, the rejected rows, and data warnings."""

    data: pa.RecordBatch
    source_index: pa.Array
    rejects: list[RowError]
    warnings: list[str] = field(default_factory=list)
    """Notes about values seen in this batch, e.g. offsets converted to UTC; the same note recurs
    batch after batch, so show each distinct one once."""


def normalise_name(name: str) -> str:
    """The name auto-mapping compares: trimmed, lowercase, runs of spaces/hyphens/dots as ``_``."""
    return re.sub(r"[\s.\-]+", "_", name.strip().lower())


# --- resolving -------------------------------------------------------------------------------


@dataclass
class _Draft:
    name: str
    sources: tuple[str, ...]
    spec: ColumnSpec
    origin: str


def resolve_mapping(mapping: Mapping, source_schema: pa.Schema, destination: TableInfo | None) -> MappingPlan:
    """Resolve ``mapping`` against the source schema and the destination table (None: not there yet).

    Raises :class:`~portl.errors.ConfigError` listing every problem: source columns that do not
    exist, destination columns that do not exist (when columns may not be created), destination
    columns nothing maps to (``extra_destination_columns: error``), two mappings to one column,
    impossible conversions and invalid defaults.
    """
    problems: list[str] = []
    existing = {c.name: c for c in destination.columns} if destination else {}
    drafts = _explicit_drafts(mapping, source_schema, existing, problems)
    if mapping.auto:
        drafts = _with_auto(mapping, source_schema, destination, drafts, problems)
    warnings: list[str] = []
    if destination is not None:
        _check_destination(mapping, destination, drafts, problems, warnings)
    columns = [_column_plan(d, source_schema, existing, problems, warnings) for d in drafts]
    if not columns and not problems:
        problems.append("the mapping writes no columns: set mapping.auto: true or list the columns under "
                        "mapping.columns")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else None, [Problem(p) for p in problems])
    read = {s for c in columns for s in c.sources}
    return MappingPlan(
        columns=tuple(columns),
        schema=pa.schema([c.field for c in columns]),
        unmapped_source=tuple(n for n in source_schema.names if n not in read),
        warnings=tuple(warnings),
    )


def _explicit_drafts(mapping: Mapping, source: pa.Schema, existing: dict[str, ColumnInfo],
                     problems: list[str]) -> list[_Draft]:
    by_normal = {normalise_name(n): n for n in reversed(list(existing))}
    drafts: list[_Draft] = []
    written: dict[str, str] = {}
    for key, spec in mapping.columns.items():
        name = key if key in existing else by_normal.get(normalise_name(key), key)
        if name in written:
            problems.append(f"columns {written[name]!r} and {key!r} both write destination column {name!r}; keep one")
            continue
        written[name] = key
        sources = _explicit_sources(key, spec, source, problems)
        if sources is not None:
            drafts.append(_Draft(name, sources, spec, "explicit"))
    return drafts


def _explicit_sources(key: str, spec: ColumnSpec, source: pa.Schema, problems: list[str]) -> tuple[str, ...] | None:
    names = source.names
    first = spec.transform[0] if spec.transform else None
    if first is not None and first.name in transforms.SOURCE_TRANSFORMS:
        if spec.from_ is not None:
            problems.append(f"column {key!r}: give either 'from' or '{first.name}', not both")
            return None
        missing = [a for a in first.args if a not in names]
        problems.extend(_missing_source(key, a, names) for a in missing)
        return None if missing else tuple(first.args)
    if spec.from_ is not None:
        if spec.from_ in names:
            return (spec.from_,)
        problems.append(_missing_source(key, spec.from_, names))
        return None
    if key in names:
        return (key,)
    normal = [n for n in names if normalise_name(n) == normalise_name(key)]
    if normal:
        return (normal[0],)
    if spec.default is not None:
        return ()
    problems.append(_missing_source(key, key, names) + f"; set 'from' to the source column that fills {key!r}")
    return None


def _missing_source(key: str, wanted: str, names: list[str]) -> str:
    normal = [n for n in names if normalise_name(n) == normalise_name(wanted)]
    close = normal or difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    if not close:
        lowered = {n.lower(): n for n in names}
        close = [lowered[m] for m in difflib.get_close_matches(wanted.lower(), list(lowered), n=1, cutoff=0.6)]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return f"column {key!r}: the source has no column {wanted!r}{hint} (source columns: {shown})"


def _with_auto(mapping: Mapping, source: pa.Schema, destination: TableInfo | None, drafts: list[_Draft],
               problems: list[str]) -> list[_Draft]:
    """Add auto-mapped columns; explicit columns keep the place of the source column they read."""
    by_normal = {normalise_name(c.name): c.name for c in reversed(destination.columns)} if destination else {}
    taken = {d.name for d in drafts}
    read = {s for d in drafts for s in d.sources}
    placed: list[_Draft] = []
    pending = list(drafts)
    auto_from: dict[str, str] = {}
    for name in source.names:
        for draft in [d for d in pending if d.sources and d.sources[0] == name]:
            placed.append(draft)
            pending.remove(draft)
        if name in read:
            continue
        target = by_normal.get(normalise_name(name)) if destination is not None else normalise_name(name)
        if target is None:
            if not mapping.create_missing_columns:
                continue  # left in the plan's unmapped_source
            target = normalise_name(name)
        if target in taken:
            if target in auto_from:
                problems.append(f"source columns {auto_from[target]!r} and {name!r} both auto-map to destination "
                                f"column {target!r}; map one of them explicitly under mapping.columns")
            continue
        taken.add(target)
        auto_from[target] = name
        placed.append(_Draft(target, (name,), ColumnSpec(), "auto"))
    return placed + pending


def _check_destination(mapping: Mapping, destination: TableInfo, drafts: list[_Draft], problems: list[str],
                       warnings: list[str]) -> None:
    written = {d.name for d in drafts}
    if not mapping.create_missing_columns:
        problems.extend(
            f"destination table {destination.name} has no column {d.name!r}; add it or set "
            "mapping.create_missing_columns: true" for d in drafts if destination.column(d.name) is None)
    idle = [c for c in destination.columns if c.name not in written]
    if idle and mapping.extra_destination_columns == "error":
        problems.append(f"nothing maps to destination column{'s' if len(idle) > 1 else ''} "
                        f"{', '.join(repr(c.name) for c in idle)} of {destination.name} "
                        "(extra_destination_columns: error); map them or set extra_destination_columns: ignore")
    warnings.extend(f"destination column {c.name!r} is NOT NULL without a default, but nothing maps to it: "
                    "inserting rows will fail" for c in idle if not c.nullable and not c.has_default)


def _column_plan(draft: _Draft, source: pa.Schema, existing: dict[str, ColumnInfo], problems: list[str],
                 warnings: list[str]) -> ColumnPlan:
    spec, name = draft.spec, draft.name
    entering = _start_type(draft, source)
    steps = list(spec.transform)
    if steps and steps[0].name in transforms.SOURCE_TRANSFORMS:
        steps = steps[1:]
    for step in steps:
        try:
            transforms.validate(step)
        except ValueError as exc:
            problems.append(f"column {name!r}: {exc}")
    logical, type_source = _column_type(draft, existing, entering, _tagged_source(draft, source))
    for step in steps:
        entering = transforms.output_type(step, entering, logical)
    if draft.sources and not accepts(entering, logical):
        problems.append(f"column {name!r}: cannot convert {entering} values to {logical}; give it a type "
                        "they convert to, or transform them first")
    elif draft.sources and (note := conversion_note(entering, logical)):
        warnings.append(f"column {name!r} ({entering} -> {logical}): {note}")
    formats = tuple(spec.formats)
    if formats and logical.name == "bytes" and (len(formats) != 1 or formats[0] not in BYTES_FORMATS):
        problems.append(f"column {name!r}: the format of bytes text is one of {', '.join(BYTES_FORMATS)}, "
                        f"not {spec.format!r}")
    if spec.default is not None:
        try:
            failure = coerce(pa.array([spec.default]), logical, formats).errors.get(0, (None, None))[1]
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            failure = str(exc)
        if failure:
            problems.append(f"column {name!r}: default {spec.default!r} is not a valid {logical} value ({failure})")
    info = existing.get(name)
    required = spec.required or (info is not None and not info.nullable and not info.has_default)
    origin = draft.origin + ("" if type_source == "mapping" else f" (type from {type_source})")
    return ColumnPlan(name=name, sources=draft.sources, transforms=tuple(spec.transform), logical=logical,
                      field=arrow_field(name, logical, nullable=not required), required=required,
                      default=spec.default, formats=formats, origin=origin, type_source=type_source)


def conversion_note(source: pa.DataType, logical: LogicalType) -> str | None:
    """What the plan says about a conversion that can lose information or reject values, if anything."""
    kind, name = kind_of(source), logical.name
    if kind == "float" and name == "decimal":
        return f"float values are rounded to {logical.scale} decimal places"
    if kind == "decimal" and name == "decimal" and source.scale > (logical.scale or 0):
        return f"values are rounded from {source.scale} to {logical.scale} decimal places (half away from zero)"
    if kind == "decimal" and name == "float":
        return "decimal values may lose precision as float"
    if kind in {"float", "decimal"} and name in {"int", "bigint"}:
        return f"values with a fraction are rejected by {name}"
    if kind == "int" and name == "int" and (source.bit_width > 32 or source == pa.uint32()):
        return "values outside the int range are rejected"
    if kind == "timestamp" and source.tz and name == "timestamp":
        return "converted to UTC and stored without a time zone"
    if kind == "timestamp" and name == "date":
        return "timestamps with a time of day are rejected"
    if kind == "timestamp" and source.unit == "ns" and name in {"timestamp", "timestamptz"}:
        return "sub-microsecond digits are dropped"
    return None


def _start_type(draft: _Draft, source: pa.Schema) -> pa.DataType:
    types = [source.field(s).type for s in draft.sources]
    types = [t.value_type if pa.types.is_dictionary(t) else t for t in types]
    first = draft.spec.transform[0].name if draft.spec.transform else None
    if not types:
        return pa.null()
    if first == "concat" or (first == "coalesce" and len({str(t) for t in types} - {"null"}) > 1):
        return pa.string()
    return next((t for t in types if not pa.types.is_null(t)), types[0])


def _tagged_source(draft: _Draft, source: pa.Schema) -> pa.Field | None:
    """The source field a column copies as it is (one source, no transforms) when its metadata
    says what its Arrow type alone cannot (a ``json`` or ``uuid`` column is a string), else None."""
    if len(draft.sources) != 1 or draft.spec.transform:
        return None
    field = source.field(draft.sources[0])
    return field if META_KEY in (field.metadata or {}) else None


def _column_type(draft: _Draft, existing: dict[str, ColumnInfo], entering: pa.DataType,
                 copied: pa.Field | None = None) -> tuple[LogicalType, str]:
    spec = draft.spec
    if spec.logical_type is not None:
        return spec.logical_type, "mapping"
    info = existing.get(draft.name)
    if info is not None:
        declared = _DECLARED_TYPES.get(info.declared.strip().lower())
        return (LogicalType(declared) if declared else logical_of(pa.field(info.name, info.type))), "destination"
    typed = [t.name for t in spec.transform if t.name in _TYPE_TRANSFORMS]
    if typed:
        return _TYPE_TRANSFORMS[typed[-1]], "transform"
    if copied is not None:
        return logical_of(copied), "source"
    if draft.sources:
        return logical_of(pa.field(draft.name, entering)), "source"
    return _logical_of_value(spec.default), "default"


def _logical_of_value(value: Any) -> LogicalType:
    try:
        return logical_of(pa.field("default", pa.scalar(value).type))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return LogicalType("text")


# --- applying --------------------------------------------------------------------------------


def apply_mapping(plan: MappingPlan, batch: pa.RecordBatch) -> MappedBatch:
    """Map one source batch: clean rows in the destination schema, and one error per rejected row.

    A row is rejected for the first column (in plan order) whose value fails; the rows that map
    cleanly keep their order, and ``source_index`` gives each one's index in ``batch``.
    """
    arrays: list[pa.Array] = []
    failed: pa.Array | None = None
    errors: dict[int, RowError] = {}
    warnings: list[str] = []
    for column in plan.columns:
        step = _map_column(column, batch)
        arrays.append(step.array)
        failed = or_masks(failed, step.failed)
        for index, (value, message) in step.errors.items():
            errors.setdefault(index, RowError(index, column.name, value, message))
        warnings.extend(w for w in (f"column {column.name!r}: {w}" for w in step.warnings) if w not in warnings)
    data = pa.RecordBatch.from_arrays(arrays, schema=plan.schema)
    if failed is None:
        every = pc.is_null(pa.nulls(batch.num_rows))
        return MappedBatch(data, pc.cast(pc.indices_nonzero(every), pa.int64()), [], warnings)
    keep = pc.invert(failed)
    return MappedBatch(data.filter(keep), pc.cast(pc.indices_nonzero(keep), pa.int64()),
                       [errors[i] for i in sorted(errors)], warnings)


def _map_column(column: ColumnPlan, batch: pa.RecordBatch) -> Step:
    steps = list(column.transforms)
    first = steps[0].name if steps else None
    if first in transforms.SOURCE_TRANSFORMS:
        parts = [_source(batch, s) for s in column.sources]
        start = transforms.concat(parts, steps[0].sep) if first == "concat" else transforms.coalesce(parts)
        steps = steps[1:]
    elif column.sources:
        start = _source(batch, column.sources[0])
    else:
        start = pa.nulls(batch.num_rows)
    step = Step(start)
    for transform in steps:
        step = step.then(transforms.apply(transform, step.array, column.logical))
    step = step.then(coerce(step.array, column.logical, column.formats))
    if column.default is not None:
        fill = coerce(pa.array([column.default]), column.logical, column.formats).array[0]
        step.array = pc.fill_null(step.array, fill)
    if column.required:
        missing = pc.is_null(step.array)
        if step.failed is not None:
            missing = pc.and_(missing, pc.invert(step.failed))
        step = step.then(reject(step.array, missing, pa.nulls(len(missing)), lambda _: "required value is missing"))
    return step


def _source(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        raise SourceError(f"a source batch has no column {name!r}, although the source schema had it; "
                          "did the source change while it was being read?")
    return batch.column(index)
