"""Elasticsearch (``type: elasticsearch``) and OpenSearch (``type: opensearch``): read an index in a
point in time; write append / replace / upsert with the bulk API.

The package's modules, each doing one thing:

- ``config``: the settings a job writes (no driver import: loading a job stays cheap);
- ``client``: the one place where the two products differ: their clients, the point-in-time
  calls, and client errors translated to Portl's;
- ``typemap``: logical types ↔ index mappings, batches → documents, hits → batches;
- ``source``: :class:`ElasticsearchSource`; ``sink``: :class:`ElasticsearchSink`.

The clients (``elasticsearch``, ``opensearch-py``) are imported only when a source or a
destination is opened.
"""

from __future__ import annotations

from typing import Any

from portl.connectors.elasticsearch.config import Config

__all__ = ["Config", "open_source", "open_sink"]


def open_source(config: Config, base_dir: str) -> Any:
    """An :class:`ElasticsearchSource` for ``index``."""
    from portl.connectors.elasticsearch.client import require_driver

    require_driver(config.type)
    from portl.connectors.elasticsearch.source import ElasticsearchSource

    return ElasticsearchSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """An :class:`ElasticsearchSink` for ``index``."""
    from portl.connectors.elasticsearch.client import require_driver

    require_driver(config.type)
    from portl.connectors.elasticsearch.sink import ElasticsearchSink

    return ElasticsearchSink(config, base_dir)


def sink_capabilities() -> Any:
    """What an Elasticsearch or OpenSearch destination can do, as ``portl connectors`` lists it."""
    from portl.connectors.elasticsearch.client import require_driver

    require_driver("elasticsearch")
    from portl.connectors.elasticsearch.sink import ElasticsearchSink

    return ElasticsearchSink.capabilities
