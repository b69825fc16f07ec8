"""Quality reports: one :class:`~portl.quality.results.QualityReport` rendered as JSON, JUnit XML
or one self-contained HTML page, and written to files atomically.

::

    render(report, "junit")                       # the text of one format
    write_reports(report, {"html": "out/q.html"}) # each file appears whole or not at all

The renderers import nothing heavy at module import time: the HTML page reads plotly.js from the
installed ``plotly`` package only when it is rendered.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping

from portl.errors import ConfigError, PortlError
from portl.quality.reports.html import render_html
from portl.quality.reports.json_report import render_json
from portl.quality.reports.junit import render_junit
from portl.quality.results import QualityReport

#: Every format a report can be written in, as ``reports:`` in a job and ``--format`` name them.
FORMATS: dict[str, Callable[[QualityReport], str]] = {"json": render_json, "junit": render_junit, "html": render_html}

__all__ = ["FORMATS", "render", "render_html", "render_json", "render_junit", "write_reports"]


def render(report: QualityReport, fmt: str) -> str:
    """The report in format ``fmt`` (``json``, ``junit`` or ``html``)."""
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        raise ConfigError(f"unknown report format {fmt!r}: expected one of {', '.join(FORMATS)}") from None
    return renderer(report)


def write_reports(report: QualityReport, paths: Mapping[str, str | os.PathLike[str]]) -> dict[str, str]:
    """Write the report in each format of ``paths`` (format -> file). Each file is written to a
    temporary file beside it and renamed over it, so a reader never sees half a report and a
    failed write leaves the previous file as it was. Returns format -> path written."""
    texts = {fmt: render(report, fmt) for fmt in paths}  # an unknown format fails before any file is written
    written = {}
    for fmt, path in paths.items():
        target = os.fspath(path)
        _write_atomically(target, texts[fmt])
        written[fmt] = target
    return written


def _write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    temp = None
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        # mkstemp makes the file private (0600); a report is made to be shared, like any file written.
        os.chmod(temp, _file_mode(path))
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise PortlError(f"cannot write the report {path}: {exc.strerror or exc}; check that its folder exists "
                         "and is writable, or choose another path") from exc
    finally:
        if temp is not None and os.path.exists(temp):
            os.remove(temp)


def _file_mode(path: str) -> int:
    """The mode of the file being replaced, else 0666 less the process's umask. The umask is read
    from /proc: setting it to read it back would change it for the other threads meanwhile."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644
