"""What the wizard shows between questions: what it found, the mapping, the dry run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from portl.engine.plan import preview_text
from portl.engine.transforms import output_type
from portl.spec.models import Transform
from portl.types import LogicalType, logical_of
from portl.plural import counted, plural
from portl.wizard.compose import ColumnSetting
from portl.wizard.discover import DestinationFacts, SourceFacts, TableEntry
from portl.wizard.samples import Suggestion, transform_text

SHOWN_ROWS = 5
_CELL = 28


def step(console: Console, number: int, total: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{number}/{total} {escape(title)}[/]", align="left")


def note(console: Console, message: str) -> None:
    console.print(f"[yellow]note:[/] {escape(message)}")


def tables(console: Console, entries: list[TableEntry] | None, what: str) -> None:
    """A database's tables, numbered, with their row counts."""
    if entries is None:
        console.print(f"[dim]{escape(what)} does not exist yet: it is created by the first run.[/]")
        return
    if not entries:
        console.print(f"[dim]{escape(what)} has no tables yet.[/]")
        return
    listing = Table("#", "table", "rows", box=None, pad_edge=False)
    for number, entry in enumerate(entries, 1):
        rows = "?" if entry.rows is None else ("~" if entry.approximate else "") + f"{entry.rows:,}"
        listing.add_row(str(number), escape(entry.name), rows)
    console.print(f"{escape(what)} has {len(entries)} table{'s' if len(entries) != 1 else ''}:")
    console.print(listing)


def source(console: Console, facts: SourceFacts) -> None:
    """The source's columns with their types and the first rows, one line per column."""
    estimate = facts.estimate
    size = ""
    if estimate.rows is not None:
        size = f", {'' if estimate.exact else 'about '}{counted(estimate.rows, 'row')}"
    elif estimate.bytes:
        size = f", {estimate.bytes / 1e6:,.1f} MB"
    console.print(f"Found [bold]{escape(facts.description)}[/]: {counted(len(facts.columns), 'column')}{size}.")
    rows = facts.rows(SHOWN_ROWS)
    sample = Table("column", "type", *[f"row {i}" for i in range(1, len(rows) + 1)], box=None, pad_edge=False)
    for column in facts.columns:
        sample.add_row(escape(column.name), column.type, *[escape(_cell(r[column.name])) for r in rows])
    console.print(sample)
    if facts.primary_key:
        console.print(f"primary key: {escape(', '.join(facts.primary_key))}")
    for line in facts.notes:
        console.print(f"[dim]note: {escape(line)}[/]")


def destination(console: Console, facts: DestinationFacts) -> None:
    """Whether the destination exists, with its columns, keys and row count."""
    if facts.table is None:
        console.print(f"{escape(facts.description)}: does not exist yet; the first run creates it.")
        return
    rows = "" if facts.rows is None else f", {counted(facts.rows, 'row')}"
    console.print(f"{escape(facts.description)}: exists{rows}.")
    columns = ", ".join(f"{c.name} ({c.declared or c.type})" for c in facts.table.columns)
    console.print(f"columns: {escape(columns)}")
    if facts.table.primary_key:
        console.print(f"primary key: {escape(', '.join(facts.table.primary_key))}")


def suggestions(console: Console, found: Mapping[str, Suggestion]) -> None:
    if not found:
        return
    console.print("Conversions suggested by the sample:")
    listing = Table(box=None, pad_edge=False, show_header=False)
    for name, suggestion in found.items():
        listing.add_row(f"  {escape(name)}", f"→ {escape(suggestion.describe())}", f"[dim]{escape(suggestion.reason)}[/]")
    console.print(listing)


def mapping(console: Console, columns: Sequence[ColumnSetting], unmapped: Sequence[str]) -> None:
    """Source column → transforms → destination column, type."""
    listing = Table("source", "transform", "destination", "type", box=None, pad_edge=False)
    for c in columns:
        kind = (c.type + (f" ({' or '.join(c.formats)})" if c.formats else "")) if c.type else _produced(c.transforms)
        listing.add_row(escape(c.source), escape(", ".join(transform_text(t) for t in c.transforms) or "—"),
                        escape(c.dest), escape(kind))
    console.print(listing)
    if unmapped:
        console.print(f"[dim]not loaded: {escape(', '.join(unmapped))}[/]")


def dry_run(console: Console, plan: Any, destination_rows: int | None) -> None:
    """The preview of mapped rows, the schema check's findings and the row counts."""
    if plan.preview:
        good = [r for r in plan.preview if r.values is not None]
        first = "The first row" if len(plan.preview) == 1 else f"The first {len(plan.preview)} rows"
        console.print(f"{first} as {plural(len(plan.preview), 'it')} would be written:")
        preview = Table(box=None, pad_edge=False)
        preview.add_column("column", no_wrap=True)
        for r in good:
            preview.add_column(r.where())
        for c in plan.mapping.columns:
            preview.add_row(escape(c.name), *[escape(preview_text(r.values.get(c.name), _CELL)) for r in good])
        if good:
            console.print(preview)
        for r in plan.preview:
            if r.values is None:
                why = escape(f"{r.where()}, column {r.column or '?'}: {r.error or ''}")
                console.print(f"  [red]would be rejected[/]: {why}")
    if plan.job.job.validation.schema_:
        verdict = "[red]problems[/]" if plan.errors else "[green]ok[/]"
        console.print(f"Schema check: {verdict}")
    for error in plan.errors:
        console.print(f"  [red]error:[/] {escape(error)}")
    for warning in plan.warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
    console.print(row_counts(plan, destination_rows))


def row_counts(plan: Any, destination_rows: int | None) -> str:
    """The source's row count beside the destination's, and what the run should leave."""
    est = plan.estimate
    if est.rows is None:
        return "Row counts: the source does not say how many rows it holds before it is read."
    src = f"{'' if est.exact else 'about '}{est.rows:,}"
    now = destination_rows or 0
    mode = plan.spec.mode.value
    if mode == "replace":
        after = f"{est.rows:,}"
    elif mode == "upsert" and not now:
        after = f"{est.rows:,} (fewer when a key repeats in the source)"
    elif mode == "upsert":
        after = f"between {now:,} and {now + est.rows:,} (keys already there are not added again)"
    else:
        after = f"{now + est.rows:,}"
    return (f"Row counts: source {src}; destination now {now:,}; after the run {after}, "
            "less the rows rejected.")


def yaml_text(console: Console, text: str) -> None:
    console.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default", word_wrap=True))


def _produced(steps: Sequence[Any]) -> str:
    """The type a column without a ``type`` gets: the last transform's that decides one (``percent``
    writes decimals, ``trim`` text), else the source column's."""
    kind = None
    for step in steps:
        name = step if isinstance(step, str) else next(k for k in step if k != "sep")
        produced = output_type(Transform.model_construct(name=name), pa.null(), LogicalType("text"))
        if not pa.types.is_null(produced):
            kind = f"{logical_of(pa.field(name, produced))} (what {name} writes)"
    return kind or "as the source"


def _cell(value: Any) -> str:
    return preview_text(value, _CELL)
