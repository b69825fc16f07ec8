"""PostgreSQL (``type: postgres``): read a table, a query or whole schemas; write append /
upsert / replace with ``COPY``.

The package's modules, each doing one thing:

- ``config``: the settings a job writes (no driver import: loading a job stays cheap);
- ``connection``: connecting, the writers' pool, and driver errors translated to Portl's;
- ``typemap``: Postgres types ↔ logical types, and the SQL dialect;
- ``catalog``: what ``pg_catalog`` says about tables;
- ``copytext``: Arrow batches ↔ COPY's CSV text;
- ``textcopy``: COPY of a source's own text (the verbatim path), and which columns may take it;
- ``source``: :class:`PostgresSource` and, for ``tables:``, :class:`PostgresCatalog`;
- ``sink``: :class:`PostgresSink`; ``replace``: the atomic swap of ``mode: replace``;
- ``catalog_sink``: :class:`PostgresCatalogSink`, a schema receiving a whole-database copy;
  ``index_names``: its index and constraint names, unique in the schema.

psycopg is imported only by the modules behind :func:`open_source` and :func:`open_sink`.
"""

from __future__ import annotations

from typing import Any

from portl.connectors.postgres.config import Config
from portl.errors import TerminalError

__all__ = ["Config", "open_source", "open_sink"]


def _driver() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise TerminalError("the PostgreSQL connector needs psycopg: pip install 'portl[postgres]'") from exc


def open_source(config: Config, base_dir: str) -> Any:
    """A :class:`PostgresSource` for ``table`` or ``query``, or a :class:`PostgresCatalog` for ``tables``."""
    _driver()
    from portl.connectors.postgres.source import PostgresCatalog, PostgresSource

    if config.tables:
        return PostgresCatalog(config, base_dir)
    return PostgresSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """A :class:`PostgresSink` for ``table``, or a :class:`PostgresCatalogSink` (a whole schema) without one."""
    _driver()
    if not config.table and not config.query and not config.tables:
        from portl.connectors.postgres.catalog_sink import PostgresCatalogSink

        return PostgresCatalogSink(config, base_dir)
    from portl.connectors.postgres.sink import PostgresSink

    return PostgresSink(config, base_dir)


def sink_capabilities() -> Any:
    """What a PostgreSQL destination can do, as ``portl connectors`` lists it."""
    _driver()
    from portl.connectors.postgres.sink import PostgresSink

    return PostgresSink.capabilities
