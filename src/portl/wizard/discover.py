"""Looking at sources and destinations while the wizard asks about them.

Everything goes through the connector seam, the same code a run uses: a file is opened with
``open_source`` and its first rows read; a database lists its tables through its catalog (the
one behind ``tables: "*"``); a destination is opened with ``open_sink`` to learn whether its
table exists, its columns and keys, its row count, and what it can do (its capabilities).
Nothing is written: sinks create files and tables only when a run writes.

Connector settings arrive as plain dicts, as a job file would hold them; ``${env:NAME}`` in them is
replaced from the environment here, and kept as written in the job.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml
from pydantic import ValidationError

from portl.connectors import registry
from portl.connectors.base import Capabilities, Estimate, TableInfo, WriteMode
from portl.connectors.config import resolve_path
from portl.errors import ConfigError, PortlError, SourceError
from portl.spec.connections import CONNECTIONS_ENV, DEFAULT_FILE
from portl.spec.envsubst import substitute
from portl.types import logical_of
from portl.wizard.samples import ColumnSample, Suggestion, suggest

FILE, DATABASE_FILE, SERVER, SPREADSHEET = "file", "database file", "server", "spreadsheet"
SAMPLE_ROWS = 200
"""Rows read to suggest conversions; the first few are shown."""
ESTIMATES_AT_MOST = 20
"""Tables whose row count is asked for one by one when the catalog has no estimate."""
_ALIASES = {"postgresql": "postgres"}
_PROBE_TABLE = "_portl_init_probe"


@dataclass
class SourceFacts:
    """What reading the first rows of a source found."""

    description: str
    columns: list[ColumnSample]
    estimate: Estimate
    primary_key: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def rows(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` sampled rows."""
        depth = min([len(c.values) for c in self.columns] or [0])
        return [{c.name: c.values[i] for c in self.columns} for i in range(min(count, depth))]

    def suggestions(self) -> dict[str, Suggestion]:
        """Suggested conversions by source column."""
        found = {c.name: suggest(c) for c in self.columns}
        return {name: s for name, s in found.items() if s is not None}


@dataclass(frozen=True)
class TableEntry:
    """A table of a database and its row count (estimated when ``approximate``)."""

    name: str
    rows: int | None
    approximate: bool = False


@dataclass
class DestinationFacts:
    """What opening a destination found: its table (or file columns), capabilities, row count."""

    description: str
    table: TableInfo | None
    capabilities: Capabilities
    rows: int | None = None

    @property
    def upserts(self) -> bool:
        return WriteMode.UPSERT in self.capabilities.modes


# --- connector types ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def kinds() -> dict[str, str]:
    """Every connector type the wizard can ask about, with its kind: a file (``path``), a database
    file (``path`` and ``table``), a database server (``url``) or a spreadsheet (``spreadsheet``
    and ``sheet``). Aliases are left out."""
    found = {}
    for name in registry.modules():
        if name in _ALIASES:
            continue
        fields = config_fields(name)
        if "url" in fields and "table" in fields:
            found[name] = SERVER
        elif "path" in fields and "table" in fields:
            found[name] = DATABASE_FILE
        elif "path" in fields:
            found[name] = FILE
        elif "spreadsheet" in fields and "sheet" in fields:
            found[name] = SPREADSHEET
    return found


def types_for(role: str) -> list[str]:
    """The connector types usable as a ``source`` or a ``destination``."""
    wanted = "open_source" if role == "source" else "open_sink"
    return [name for name in kinds() if hasattr(registry.module_for(name), wanted)]


def canonical(type_name: str) -> str:
    return _ALIASES.get(type_name, type_name)


def config_fields(type_name: str) -> set[str]:
    """The keys a connector's config takes (aliases as written, e.g. ``schema``)."""
    model = registry.module_for(type_name).Config
    return {f.alias or name for name, f in model.model_fields.items()}


def default_port(type_name: str) -> int | None:
    model = registry.module_for(type_name).Config
    return getattr(importlib.import_module(model.__module__), "DEFAULT_PORT", None)


def build_config(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Any:
    """The connector config for ``data``, with ``${env:NAME}`` substituted; ConfigError if invalid."""
    environ = os.environ if environ is None else environ
    resolved, result = substitute(dict(data), environ)
    if result.failures:
        raise ConfigError("; ".join(reason for _, reason in result.failures))
    model = registry.module_for(str(resolved.get("type"))).Config
    try:
        return model.model_validate(resolved)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigError("; ".join(problems)) from None


# --- sources -----------------------------------------------------------------------------------


def read_source(data: Mapping[str, Any], base_dir: str, environ: Mapping[str, str] | None = None) -> SourceFacts:
    """Open a source, read its schema, estimate and first :data:`SAMPLE_ROWS` rows, and close it."""
    config = build_config(data, environ)
    source = registry.open_source(config, base_dir)
    try:
        schema = source.schema()
        estimate = source.estimate()
        first = None
        reader = source.read(SAMPLE_ROWS, None)
        try:
            first = next(iter(reader), None)
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()
        batch = first.data.to_pydict() if first is not None else {}
        columns = [ColumnSample(f.name, str(logical_of(f)), list(batch.get(f.name, []))) for f in schema]
        notes = list(getattr(source, "notes", []) or [])
    finally:
        source.close()
    primary_key = []
    if kinds().get(canonical(config.type)) in (DATABASE_FILE, SERVER):
        # The sink's introspection is the seam that reports keys; opening it writes nothing.
        primary_key = list((inspect_destination(data, base_dir, environ).table or _NO_TABLE).primary_key)
    return SourceFacts(source.description, columns, estimate, primary_key, notes)


_NO_TABLE = TableInfo("", [])


def list_tables(data: Mapping[str, Any], base_dir: str, environ: Mapping[str, str] | None = None,
                role: str = "destination") -> list[TableEntry] | None:
    """The tables of the database ``data`` points at, with row counts; None for a database file
    that does not exist yet. Connection problems raise the connector's error, worded for the
    ``role`` the database plays (``source`` or ``destination``)."""
    settings = {k: v for k, v in data.items() if k not in ("table", "query", "tables")}
    config = build_config(settings, environ)
    if kinds().get(canonical(config.type)) == DATABASE_FILE and not os.path.exists(resolve_path(config.path, base_dir)):
        return None
    try:
        catalog = registry.open_source(build_config({**settings, "tables": "*"}, environ), base_dir)
    except SourceError as refused:
        # Some catalogs refuse a schema without tables. Whether the server answers at all
        # tells "no tables yet" from a real failure, which this raises.
        try:
            probe = registry.open_sink(build_config({**settings, "table": _PROBE_TABLE}, environ), base_dir)
            try:
                probe.table_info()
            finally:
                probe.close()
        except PortlError:
            if role == "source":
                raise refused from None  # the sink's words would call a source "the destination"
            raise
        return []
    try:
        approximate = kinds().get(canonical(config.type)) == SERVER
        entries = [TableEntry(t.name, t.rows, approximate) for t in catalog.tables()]
        unknown = [e for e in entries if e.rows is None][:ESTIMATES_AT_MOST]
        counted = {e.name: _estimate(catalog, e.name) for e in unknown}
    finally:
        catalog.close()
    return [TableEntry(e.name, counted[e.name].rows, not counted[e.name].exact) if e.name in counted else e for e in entries]


def _estimate(catalog: Any, name: str) -> Estimate:
    try:
        source = catalog.table_source(name)
    except Exception:  # an estimate is a courtesy: a table that cannot be opened shows "?"
        return Estimate()
    try:
        return source.estimate()
    finally:
        source.close()


# --- destinations ------------------------------------------------------------------------------


def inspect_destination(data: Mapping[str, Any], base_dir: str,
                        environ: Mapping[str, str] | None = None) -> DestinationFacts:
    """Open a destination without writing: its table (None when missing), capabilities, rows."""
    config = build_config(data, environ)
    sink = registry.open_sink(config, base_dir)
    try:
        table = sink.table_info()
        rows = sink.count_rows() if table is not None else None
        return DestinationFacts(sink.description, table, sink.capabilities, rows)
    finally:
        sink.close()


# --- named connections -------------------------------------------------------------------------


def connections_file(given: str | None, environ: Mapping[str, str], folder: str) -> str | None:
    """The connections file a run from ``folder`` would read: ``--connections``, else
    ``$PORTL_CONNECTIONS``, else ``connections.yaml`` in ``folder`` when it exists."""
    if given:
        return given
    if environ.get(CONNECTIONS_ENV):
        return environ[CONNECTIONS_ENV]
    beside = os.path.join(folder, DEFAULT_FILE)
    return beside if os.path.isfile(beside) else None


def named_connections(path: str | None) -> dict[str, dict[str, Any]]:
    """The connections defined in a connections file, by name (only well-formed ones)."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"connections file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read connections file {path}: {exc}") from None
    listed = data.get("connections") if isinstance(data, dict) else None
    if not isinstance(listed, dict):
        return {}
    return {str(name): dict(settings) for name, settings in listed.items()
            if isinstance(settings, dict) and isinstance(settings.get("type"), str)}
