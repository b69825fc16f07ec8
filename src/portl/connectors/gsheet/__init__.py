"""Google Sheets (``type: gsheet``): a tab of a spreadsheet as a source or a destination.

- :mod:`.config`: the settings a job writes (spreadsheet ID or URL, tab, range, credentials).
- :mod:`.client`: credentials, the google-api-python-client service, retries, error translation.
- :mod:`.cells`: column types from sampled values and number formats; Arrow <-> cells.
- :mod:`.source`: reading a tab page by page, resumable at a row.
- :mod:`.sink`: append / replace / upsert, each batch and its checkpoint in one batchUpdate.

The Google client is imported only when a spreadsheet is opened.
"""

from __future__ import annotations

from typing import Any

from portl.connectors.gsheet.config import Config

__all__ = ["Config", "open_sink", "open_source", "sink_capabilities"]


def open_source(config: Config, base_dir: str) -> Any:
    """Open a tab (or a range of it) for reading."""
    from portl.connectors.gsheet.source import GsheetSource

    return GsheetSource(config, base_dir)


def open_sink(config: Config, base_dir: str) -> Any:
    """Open a tab for writing; it is created when missing."""
    from portl.connectors.gsheet.sink import GsheetSink

    return GsheetSink(config, base_dir)


def sink_capabilities() -> Any:
    """What a Google Sheets destination can do, as ``portl connectors`` lists it."""
    from portl.connectors.gsheet.sink import GsheetSink

    return GsheetSink.capabilities
