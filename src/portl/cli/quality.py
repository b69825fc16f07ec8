"""``portl check``: run data-quality checks on a source alone, nothing loaded."""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional

import typer

from portl.cli import output
from portl.cli.output import Format, configure, err, out, print_json
from portl.errors import EXIT_CHECKS, ConfigError

_TYPES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
          ".parquet": "parquet", ".pq": "parquet"}
_SEVERITY_ORDER = ("critical", "warning", "info")
OutputFormat = Annotated[Format, typer.Option("--format", help="text for people, or json (the whole report) for programs.",
                                              case_sensitive=False)]


def check(
    target: Annotated[str, typer.Argument(help="A job file with quality: checks, or (with --checks) a data file, glob or s3:// URL.", metavar="JOB_OR_FILE")],
    checks: Annotated[Optional[str], typer.Option("--checks", "-c", help="A YAML file of checks (a quality: list, and optionally mapping: and source options) for a data file given as JOB_OR_FILE.", metavar="FILE")] = None,
    job: Annotated[Optional[str], typer.Option("--job", "-j", help="The job to check, in a file holding several.", metavar="NAME")] = None,
    format: OutputFormat = Format.text,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Partitions read at once (files of a glob, ranges of a large file). Default: the job's parallel.workers, at least 2.", min=1, max=64, metavar="N")] = None,
    fail_on: Annotated[str, typer.Option("--fail-on", help="Lowest severity whose failure makes the exit code non-zero: critical, warning or info.", metavar="SEVERITY")] = "critical",
    html: Annotated[Optional[str], typer.Option("--html", help="Also write the report as one HTML page with charts.", metavar="FILE")] = None,
    junit: Annotated[Optional[str], typer.Option("--junit", help="Also write the report as JUnit XML (one test case per check).", metavar="FILE")] = None,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Also write the report as JSON.", metavar="FILE")] = None,
    connections: Annotated[Optional[str], typer.Option("--connections", help="Named connections file.", envvar="PORTL_CONNECTIONS", metavar="FILE")] = None,
    state_dir: Annotated[Optional[str], typer.Option("--state-dir", help="Folder of the run ledger (anomaly history; the report is kept there for portl report).", envvar="PORTL_STATE_DIR", metavar="DIR")] = None,
) -> None:
    """Run a job's quality checks on its source alone: read it once, load nothing.

    The source is read in parallel (the files of a glob, byte ranges of a large file), each batch
    mapped as the load would map it, with memory flat whatever the size. Checks that read the
    destination (sql, referential, unique in the destination) are skipped. The report is kept in
    the ledger (portl report ID). Exit code 4 when a check of severity --fail-on or worse failed,
    2 when the checks cannot run (unknown column, bad filter, unknown holiday calendar), else 0.
    """
    configure(format=format)
    if fail_on not in _SEVERITY_ORDER:
        raise typer.BadParameter("give critical, warning or info", param_hint="--fail-on")
    from portl.cli.checkprogress import CheckProgress
    from portl.engine.check import CheckOptions, check_job, check_source
    from portl.engine.events import Events

    events = Events()
    progress = CheckProgress(err, enabled=err.is_terminal and not output.settings.quiet and not output.settings.json)
    events.subscribe(progress)
    options = CheckOptions(workers=workers, events=events, state_dir=state_dir)
    with progress:
        if checks is None:
            from portl.spec.loader import load_job

            loaded = load_job(target, job, connections)
            report = check_job(loaded, options)
        else:
            source, mapping, listed, base_dir, name = _file_and_checks(target, checks)
            report = check_source(source, mapping, listed, base_dir, name=name, path=os.path.abspath(checks),
                                  batch_rows=50_000, workers=workers or 2, options=options)
    written = {fmt: path for fmt, path in (("html", html), ("junit", junit), ("json", json_file)) if path}
    if written:
        from portl.quality.reports import write_reports

        write_reports(report, written)
    if output.settings.json:
        print_json(report.to_json())
    else:
        _render(report, written)
    worst = _SEVERITY_ORDER.index(fail_on)
    if any(r.status in ("failed", "error") and _SEVERITY_ORDER.index(r.severity) <= worst for r in report.results):
        raise typer.Exit(EXIT_CHECKS)


def _file_and_checks(target: str, checks_file: str) -> tuple[Any, Any, list[Any], str, str]:
    """A source config for a data file, and the checks (with an optional mapping) of a checks file."""
    from pydantic import Field, ValidationError, create_model

    from portl.spec.models import Mapping, Model, job_model
    from portl.spec.positions import parse_yaml
    from portl.spec.problems import Context, validation_problems
    from portl.spec.quality import Check

    try:
        with open(checks_file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the checks file {checks_file}: {exc.strerror}") from None
    parsed = parse_yaml(text, checks_file)
    if parsed.problems:
        raise ConfigError(problems=list(parsed.problems))
    if not isinstance(parsed.data, dict):
        raise ConfigError(f"{checks_file}: a checks file is a mapping with quality: (a list of checks), and optionally "
                          "mapping: and source: (the file's options, e.g. delimiter)")
    lowered = target.lower().removesuffix(".gz")
    kind = next((t for suffix, t in _TYPES.items() if lowered.endswith(suffix)), None)
    document_model = create_model(
        "ChecksFile", __base__=Model,
        quality=(list[Check], Field(min_length=1, description="The checks.")),
        mapping=(Mapping, Field(default_factory=lambda: Mapping(auto=True), description="How columns are read and typed.")),
        source=(dict[str, Any], Field(default_factory=dict, description="Options of the data file's connector.")),
    )
    try:
        document = document_model.model_validate(parsed.data)
    except ValidationError as exc:
        raise ConfigError(problems=validation_problems(exc, document_model, Context(parsed.data, parsed.positions,
                                                                                    root=checks_file))) from None
    source = {"type": kind, **document.source, "path": target}
    if source["type"] is None:
        raise ConfigError(f"cannot tell the format of {target} from its name: say it in {checks_file}, "
                          "e.g. source: {type: csv, delimiter: ';'}")
    # The job model checks the source's options; nothing is ever written to the destination named here.
    job = {"name": "check", "source": source, "destination": {"type": "csv", "path": os.devnull}}
    try:
        loaded = job_model(frozenset({source["type"], "csv"})).model_validate(job)
    except ValidationError as exc:
        problems = [parsed.positions.problem(("source",), f"source.{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}")
                    for e in exc.errors() if e["loc"][:1] == ("source",)]
        raise ConfigError(problems=problems or [str(exc)]) from None
    # Named after the checks file: today's file is judged against the counts of the files checked before it.
    name = os.path.splitext(os.path.basename(checks_file))[0] or "checks"
    return loaded.source, document.mapping, list(document.quality), os.getcwd(), name


def _render(report: Any, written: dict[str, str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    colour = {"passed": "green", "passed_with_warnings": "yellow", "failed_checks": "red"}[report.status]
    out.print(f"[bold {colour}]{report.status.replace('_', ' ')}[/]: {report.rows:,} rows of {escape(report.source)} "
              f"checked; {escape(report.gate)}")
    table = Table(box=None, pad_edge=False)
    for name in ("status", "severity", "check", "observed", "expected"):
        table.add_column(name, no_wrap=name in ("status", "severity"))
    for r in report.results:
        shade = {"passed": "green", "failed": "red", "error": "red", "skipped": "dim"}[r.status]
        table.add_row(f"[{shade}]{r.status}[/]", r.severity, escape(r.name), escape(r.observed), escape(r.expected))
    out.print(table)
    for r in report.results:
        if r.status != "passed":
            out.print(f"  [bold]{escape(r.name)}[/]: {escape(r.message)}")
    for fmt, path in written.items():
        out.print(f"{fmt} report: {escape(path)}")
    if report.run_id:
        out.print(f"kept as {report.run_id}: portl report {report.run_id} --format html -o report.html")
