"""``portl report RUN``: a run's quality report as JSON, JUnit XML or one HTML page."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Optional

import typer

from portl.cli.output import configure, err
from portl.errors import ConfigError

RECENT = 5


class ReportFormat(str, enum.Enum):
    """The formats ``portl report`` writes."""

    html = "html"
    json = "json"
    junit = "junit"


_BY_SUFFIX = {".html": ReportFormat.html, ".htm": ReportFormat.html, ".xml": ReportFormat.junit, ".json": ReportFormat.json}


def report_command(
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of it (`portl runs` lists them).", metavar="RUN")],
    format: Annotated[Optional[ReportFormat], typer.Option("--format", help="html, json or junit (default: from the -o file's extension, else json).", case_sensitive=False)] = None,
    output_file: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the report to this file (default: standard output; html needs a file or a pipe).", metavar="FILE")] = None,
    state_dir: Annotated[Optional[str], typer.Option("--state-dir", help="Folder of the run ledger.", envvar="PORTL_STATE_DIR", metavar="DIR")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")] = False,
) -> None:
    """Write the quality report of a run: the one its quality: checks kept, or, for a run without
    checks, one built from the ledger (status, counts, duration, rejects by reason).

    Exit code 0 when the report was written (whatever the checks found), 2 for an unknown run.
    """
    configure(debug=debug)
    fmt = format or (_BY_SUFFIX.get(_suffix(output_file), ReportFormat.json) if output_file else ReportFormat.json)
    if fmt is ReportFormat.html and output_file is None and sys.stdout.isatty():
        raise ConfigError("an HTML report is a page to open in a browser, not text for the terminal: write it to a "
                          f"file with -o report.html (or pipe it: portl report {run_id} --format html > report.html)")
    from portl.cli.runcommands import open_ledger
    from portl.quality.reports import render, write_reports
    from portl.quality.reports.ledger_report import report_for_run

    ledger = open_ledger(state_dir)
    try:
        record = ledger.get(run_id)
        if record is None:
            recent = [r.id for r in ledger.list(limit=RECENT)]
            listed = ("the most recent: " + ", ".join(recent)) if recent else "the ledger holds no runs yet"
            raise ConfigError(f"no run {run_id!r} in {ledger.path}; {listed} (`portl runs` lists more)")
        report = report_for_run(ledger, record)
    finally:
        ledger.close()
    if output_file is None:
        sys.stdout.write(render(report, fmt.value))
        sys.stdout.flush()
        return
    write_reports(report, {fmt.value: output_file})
    err.print(f"wrote the {fmt.value} report of run {record.id} to {output_file}", markup=False, highlight=False)


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:].lower() if dot > max(path.rfind("/"), path.rfind("\\")) else ""
