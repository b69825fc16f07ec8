"""Snowflake (``type: snowflake``): read a table or a query as Arrow batches; write append /
upsert / replace by ``PUT`` of gzip CSV files to a temporary stage and ``COPY INTO``.

The package's modules, each doing one thing:

- ``config``: the settings a job writes, named as ``snowflake.connector.connect()`` names them
  (no driver import: loading a job stays cheap);
- ``typemap``: Snowflake types ↔ logical types, and the SQL dialect;
- ``connection``: logging in, table names, and driver errors translated to Portl's;
- ``csvparts``: Arrow batches as the gzip CSV files COPY loads;
- ``source``: :class:`SnowflakeSource`;
- ``sink``: :class:`SnowflakeSink`; ``staging``: the staging table, the conversions and the MERGE;
  ``replace``: the swap of ``mode: replace``.

snowflake-connector-python is imported only by the modules behind :func:`open_source` and
:func:`open_sink`.
"""

from __future__ import annotations

from typing import Any

from portl.connectors.snowflake.config import Config
from portl.errors import TerminalError

__all__ = ["Config", "open_source", "open_sink"]


def _driver() -> None:
    try:
        import snowflake.connector  # noqa: F401
    except ImportError as exc:
        raise TerminalError("the Snowflake connector needs snowflake-connector-python: "
                            "pip install 'portl[snowflake]'") from exc


def open_source(config: Config, base_dir: str) -> Any:
    """A :class:`SnowflakeSource` for ``table`` or ``query``."""
    _driver()
    from portl.connectors.snowflake.source import SnowflakeSource

    return SnowflakeSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """A :class:`SnowflakeSink` for ``table``."""
    _driver()
    from portl.connectors.snowflake.sink import SnowflakeSink

    return SnowflakeSink(config, base_dir)


def sink_capabilities() -> Any:
    """What a Snowflake destination can do, as ``portl connectors`` lists it."""
    _driver()
    from portl.connectors.snowflake.sink import SnowflakeSink

    return SnowflakeSink.capabilities
