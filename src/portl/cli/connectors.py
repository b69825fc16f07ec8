"""``portl connectors``: the connector types a job can name, and what each can do, read from the
connector registry and each connector's declared capabilities."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from portl.cli.output import out, print_json, settings


def show_connectors() -> None:
    """Print every registered connector type and its capabilities, as text or JSON."""
    from portl.connectors.registry import connector_types

    described = [describe(t) for t in connector_types()]
    if settings.json:
        print_json(described)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("type", "reads", "writes", "databases", "modes", "upsert strategies", "atomic", "resumes"):
        table.add_column(column, no_wrap=column != "upsert strategies")
    for d in described:
        sink = d["sink"] or {}
        databases = [w for w, able in (("from", d["whole_database"]), ("into", sink.get("whole_databases"))) if able]
        table.add_row(
            escape(", ".join([d["type"], *d["aliases"]])), _yes(d["source"]), _yes(d["destination"]),
            ", ".join(databases) or "—", ", ".join(sink.get("modes", [])) or "—",
            ", ".join(sink.get("upsert_strategies", [])) or "—", _yes(sink.get("transactional")), _yes(sink.get("resumable")),
        )
    out.print(table)
    for d in described:
        if d["unavailable"]:
            out.print(f"[yellow]{escape(d['type'])}[/]: {escape(d['unavailable'])}", soft_wrap=True)
    if settings.verbose:
        for d in described:
            if d["sink"]:
                out.print(f"[bold]{escape(d['type'])}[/] writes with {escape(d['sink']['bulk_method'])}")
    else:
        out.print("[dim]databases: whole-database copies (tables: '*') from it, into it; atomic: a batch and its checkpoint commit "
                  "together; how each writes: --verbose[/]")


def describe(kind: Any) -> dict[str, Any]:
    """One connector type as data: names, roles, and its sink's declared capabilities."""
    caps = kind.capabilities
    sink = None
    if caps is not None:
        sink = {
            "modes": sorted(m.value for m in caps.modes),
            "upsert_strategies": sorted(s.value for s in caps.upsert_strategies),
            "transactional": caps.transactional,
            "resumable": caps.resumable,
            "concurrent_writers": caps.concurrent_writers,
            "alters_tables": caps.alters_tables,
            "whole_databases": caps.whole_databases,
            "keeps_runs": caps.keeps_runs,  # can hold an incremental job's mark
            "bulk_method": caps.bulk_method,
        }
    return {
        "type": kind.names[0],
        "aliases": list(kind.names[1:]),
        "module": kind.module,
        "source": kind.source,
        "destination": kind.destination,
        "whole_database": kind.whole_database,
        "sink": sink,
        "unavailable": kind.unavailable,
    }


def _yes(value: Any) -> str:
    return "—" if value is None else "yes" if value else "no"
