"""The checks of a job's ``validation:`` section: schema compatibility before, row counts after."""

from __future__ import annotations

import pyarrow as pa

from portl.connectors.base import ColumnInfo, TableInfo, WriteMode, WriteSpec
from portl.engine.mapping import MappingPlan
from portl.plural import counted
from portl.types import LogicalType, logical_of

# Conversions a database performs without losing anything: mapped type -> destination type.
_WIDENING = {
    ("int", "bigint"), ("int", "float"), ("int", "decimal"), ("bigint", "decimal"), ("bigint", "float"),
    ("date", "timestamp"), ("date", "timestamptz"), ("timestamp", "timestamptz"), ("json", "text"),
    ("uuid", "text"), ("bool", "int"), ("bool", "bigint"),
}


def check_schema(mapping: MappingPlan, destination: TableInfo | None, spec: WriteSpec) -> tuple[list[str], list[str]]:
    """Type and nullability compatibility of mapped batches with an existing table.

    Returns ``(errors, warnings)``; errors stop the run before anything is written.
    """
    errors: list[str] = []
    warnings: list[str] = []
    if destination is None:
        return errors, warnings
    mapped = {c.name: c for c in mapping.columns}
    for column in destination.columns:
        if column.name not in mapped and not column.nullable and not column.has_default:
            errors.append(f"destination column {column.name} is NOT NULL without a default, and nothing maps to it")
    for name, plan in mapped.items():
        existing = destination.column(name)
        if existing is None:
            continue
        have, want = plan.logical, logical_of_column(existing)
        if have.name == want.name:
            if have.name == "decimal" and (have.precision, have.scale) != (want.precision, want.scale):
                warnings.append(f"column {name}: mapped as {have} but the destination column is {existing.declared or want}")
            continue
        if (have.name, want.name) in _WIDENING or want.name == "text":
            continue
        errors.append(
            f"column {name}: the mapping produces {have} but the destination column is "
            f"{existing.declared or want}; set type: {want} in mapping.columns.{name}, or change the column"
        )
        if not existing.nullable and not plan.required:
            warnings.append(f"column {name} is NOT NULL in the destination: rows where it is NULL will be rejected")
    return errors, warnings  # conflict key columns that are not mapped: the plan reports them at conflict.key


def logical_of_column(column: ColumnInfo) -> LogicalType:
    """The logical type of an introspected destination column."""
    return logical_of(pa.field(column.name, column.type))


def check_row_count(mode: WriteMode, before: int | None, after: int | None, inserted: int) -> str | None:
    """After the run: did the destination gain exactly the rows reported inserted?"""
    if before is None or after is None:
        return None
    expected = inserted if mode == WriteMode.REPLACE else before + inserted
    if after != expected:
        base = "" if mode == WriteMode.REPLACE else f"{before:,} before + "
        return (f"row count check failed: the destination holds {counted(after, 'row')}, expected {base}{inserted:,} inserted = "
                f"{expected:,}; another writer may have changed the table during the run")
    return None
