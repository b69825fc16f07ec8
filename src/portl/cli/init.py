"""``portl init``: every answer of the wizard as a flag; the work is done by :mod:`portl.wizard`.

Each parameter is named after its answers-file key (``source_type`` is ``--source-type``), so the
flags given become the wizard's answers as they are.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from portl.errors import EXIT_INTERRUPTED

SOURCE, DESTINATION = "Source", "Destination"
MAPPING, CONFLICTS = "Mapping and transforms", "Conflicts"
HOOKS = "Hooks: TYPE:TARGET, e.g. python:hooks:clean_row, script:./notify.sh, http:https://..., or none"
SAVING = "Batching, validation, saving"


def _text(flag: str, metavar: str, help: str, panel: str | None) -> Any:
    return Annotated[Optional[str], typer.Option(flag, metavar=metavar, help=help, rich_help_panel=panel)]


def _many(flag: str, metavar: str, help: str) -> Any:
    return Annotated[Optional[list[str]], typer.Option(flag, metavar=metavar, help=help, rich_help_panel=MAPPING)]


def _switch(flags: str, help: str, panel: str) -> Any:
    return Annotated[Optional[bool], typer.Option(flags, help=help, rich_help_panel=panel)]


def _side(side: str, panel: str) -> dict[str, Any]:
    """The options that say where a side is; ``--source-...`` and ``--destination-...`` alike."""
    return {
        "type": _text(f"--{side}-type", "TYPE", "csv, tsv, parquet, jsonl, sqlite, postgres, mysql, mariadb, gsheet "
                      f"(default: from --{side}-path or --{side}-url).", panel),
        "connection": _text(f"--{side}-connection", "NAME", "A named connection from the connections file.", panel),
        "path": _text(f"--{side}-path", "PATH", "File or SQLite database.", panel),
        "url": _text(f"--{side}-url", "URL", "Database URL, e.g. postgresql://user@host/db; ${env:NAME} works.", panel),
        "host": _text(f"--{side}-host", "HOST", f"Database host, without --{side}-url (default 127.0.0.1).", panel),
        "port": _text(f"--{side}-port", "PORT", "Database port (default: the type's).", panel),
        "user": _text(f"--{side}-user", "USER", "Database user.", panel),
        "password": _text(f"--{side}-password", "PASSWORD", "Database password; prefer ${env:NAME}.", panel),
        "database": _text(f"--{side}-database", "NAME", "Database name.", panel),
        "schema": _text(f"--{side}-schema", "SCHEMA", "Schema, for PostgreSQL (default public).", panel),
        "spreadsheet": _text(f"--{side}-spreadsheet", "ID|URL", "Google Sheets: the spreadsheet's ID or URL.", panel),
        "credentials": _text(f"--{side}-credentials", "FILE", "Google Sheets: a service-account key or an "
                             "authorized-user file (default: Application Default Credentials).", panel),
        "endpoint": _text(f"--{side}-endpoint", "URL", "Google Sheets: the API's root URL (a proxy or emulator).", panel),
        "sheet": _text(f"--{side}-sheet", "TAB", "Google Sheets: the tab" + (" (created when missing; default: the "
                       "source's name)." if side == "destination" else "."), panel),
        "table": _text(f"--{side}-table", "TABLE", "Table; a new destination table is created (default: the "
                       "source's name)." if side == "destination" else "Table to read.", panel),
    }


_SOURCE_OPTIONS, _DESTINATION_OPTIONS = _side("source", SOURCE), _side("destination", DESTINATION)
_HOOK = "Hook run {}."


def _hook(event: str, when: str) -> Any:
    return _text(f"--{event.replace('_', '-')}-hook", "TYPE:TARGET", _HOOK.format(when), HOOKS)


Answers = Annotated[Optional[str], typer.Option(
    "--answers", metavar="FILE", help="YAML file of answers, keyed like the flags without dashes (source_type: csv). "
    "Paths in it are relative to its folder. Flags win over it.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing: every answer not given takes its default.")]
SourceType, DestinationType = _SOURCE_OPTIONS["type"], _DESTINATION_OPTIONS["type"]
SourceConnection, DestinationConnection = _SOURCE_OPTIONS["connection"], _DESTINATION_OPTIONS["connection"]
SourcePath, DestinationPath = _SOURCE_OPTIONS["path"], _DESTINATION_OPTIONS["path"]
SourceUrl, DestinationUrl = _SOURCE_OPTIONS["url"], _DESTINATION_OPTIONS["url"]
SourceHost, DestinationHost = _SOURCE_OPTIONS["host"], _DESTINATION_OPTIONS["host"]
SourcePort, DestinationPort = _SOURCE_OPTIONS["port"], _DESTINATION_OPTIONS["port"]
SourceUser, DestinationUser = _SOURCE_OPTIONS["user"], _DESTINATION_OPTIONS["user"]
SourcePassword, DestinationPassword = _SOURCE_OPTIONS["password"], _DESTINATION_OPTIONS["password"]
SourceDatabase, DestinationDatabase = _SOURCE_OPTIONS["database"], _DESTINATION_OPTIONS["database"]
SourceSchema, DestinationSchema = _SOURCE_OPTIONS["schema"], _DESTINATION_OPTIONS["schema"]
SourceTable, DestinationTable = _SOURCE_OPTIONS["table"], _DESTINATION_OPTIONS["table"]
SourceSpreadsheet, DestinationSpreadsheet = _SOURCE_OPTIONS["spreadsheet"], _DESTINATION_OPTIONS["spreadsheet"]
SourceCredentials, DestinationCredentials = _SOURCE_OPTIONS["credentials"], _DESTINATION_OPTIONS["credentials"]
SourceEndpoint, DestinationEndpoint = _SOURCE_OPTIONS["endpoint"], _DESTINATION_OPTIONS["endpoint"]
SourceSheet, DestinationSheet = _SOURCE_OPTIONS["sheet"], _DESTINATION_OPTIONS["sheet"]
MappingKind = _text("--mapping", "auto|manual", "auto: by name; manual: the --column list.", MAPPING)
Columns = _many("--column", "DEST=SOURCE", "A column to load, once per column (manual mapping).")
ColumnTypes = _many("--column-type", "COL=TYPE", "A column's type, e.g. amount=decimal(12,2).")
Transforms = _many("--transform", "COL=SPEC", "A column's transforms, e.g. email=trim,lower.")
DateFormats = _many("--date-format", "COL=FORMAT", "A column's strptime formats, joined by |.")
Detect = _switch("--detect/--no-detect", "Apply the conversions the sample suggests (default: on).", MAPPING)
CreateMissingColumns = _switch("--create-missing-columns/--no-create-missing-columns",
                               "Add the columns an existing table lacks (default: on).", MAPPING)
ExtraDestinationColumns = _text("--extra-destination-columns", "ignore|error",
                                "Destination columns nothing maps to (default: ignore).", MAPPING)
ConflictKey = _text("--conflict-key", "COLUMNS",
                    "Key columns, comma-separated (default: the primary key); none for no key.", CONFLICTS)
Strategy = _text("--conflict-strategy", "STRATEGY", "skip, overwrite, merge or fail (default: overwrite).", CONFLICTS)
Mode = _text("--mode", "append|replace", "Without a key (default: append).", CONFLICTS)
Hooks = _switch("--hooks/--no-hooks", "Ask for hooks (default: on when a hook is given).", HOOKS)
BeforeRowHook = _hook("before_row", "before each row is written")
AfterRowHook = _hook("after_row", "after each row's batch commits")
BeforeBatchHook = _hook("before_batch", "before each batch is written")
AfterBatchHook = _hook("after_batch", "after each batch commits")
BeforeJobHook = _hook("before_job", "before the job writes")
AfterJobHook = _hook("after_job", "after the job ran")
BatchSize = _text("--batch-size", "ROWS", "Rows per batch (default 25000).", SAVING)
Retry = _text("--retry", "retry|skip|fail", "When a batch fails (default: retry).", SAVING)
RetryAttempts = _text("--retry-attempts", "N", "Attempts per batch (default 3).", SAVING)
Workers = _text("--workers", "N", "Parallel workers (default 1).", SAVING)
SchemaCheck = _switch("--schema-check/--no-schema-check",
                      "Check types against the destination before writing (default: on).", SAVING)
RowCount = _switch("--row-count/--no-row-count", "Check the row count after the run (default: on).", SAVING)
MaxRejects = _text("--max-rejects", "N", "Stop past this many rejected rows (default: no limit).", SAVING)
PreviewRows = _text("--preview-rows", "N", "Rows shown by the dry run (default 5).", SAVING)
Output = Annotated[Optional[str], typer.Option("--output", "-o", metavar="FILE", rich_help_panel=SAVING,
                                               help="Job file to write (default: <name>.yaml).")]
IfExists = _switch("--append/--overwrite",
                   "When the job file exists: add this job to it (default), or replace the file.", SAVING)
Name = _text("--name", "NAME", "Job name (default: the destination table's).", SAVING)
Run = _switch("--run/--no-run", "Run the job once it is saved (default: no).", SAVING)
Connections = Annotated[Optional[str], typer.Option(
    "--connections", metavar="FILE", envvar="PORTL_CONNECTIONS", rich_help_panel=SAVING,
    help="Connections file to offer named connections from (default: connections.yaml here).")]
StateDir = Annotated[Optional[str], typer.Option("--state-dir", metavar="DIR", envvar="PORTL_STATE_DIR", rich_help_panel=SAVING,
                                                 help="Folder of the run ledger, for --run (default: .portl beside the job file).")]
Debug = Annotated[bool, typer.Option("--debug", envvar="PORTL_DEBUG", rich_help_panel=SAVING,
                                     help="Show tracebacks of errors.")]
CHECKING = "Checking a new file against a job written before"
CheckFile = Annotated[Optional[str], typer.Option(
    "--check-file", metavar="FILE", rich_help_panel=CHECKING,
    help="Instead of writing a job: read FILE's header and say whether the job of --job-file can load it (missing, "
         "extra and renamed columns; exit 0 when it can, 1 when not). --name picks a job of a multi-job file.")]
JobFile = Annotated[Optional[str], typer.Option("--job-file", metavar="JOB.yaml", rich_help_panel=CHECKING,
                                                help="The job --check-file compares FILE with.")]


def init_command(
    answers: Answers = None,
    yes: Yes = False,
    source_type: SourceType = None,
    source_connection: SourceConnection = None,
    source_path: SourcePath = None,
    source_url: SourceUrl = None,
    source_host: SourceHost = None,
    source_port: SourcePort = None,
    source_user: SourceUser = None,
    source_password: SourcePassword = None,
    source_database: SourceDatabase = None,
    source_schema: SourceSchema = None,
    source_table: SourceTable = None,
    source_spreadsheet: SourceSpreadsheet = None,
    source_credentials: SourceCredentials = None,
    source_endpoint: SourceEndpoint = None,
    source_sheet: SourceSheet = None,
    destination_type: DestinationType = None,
    destination_connection: DestinationConnection = None,
    destination_path: DestinationPath = None,
    destination_url: DestinationUrl = None,
    destination_host: DestinationHost = None,
    destination_port: DestinationPort = None,
    destination_user: DestinationUser = None,
    destination_password: DestinationPassword = None,
    destination_database: DestinationDatabase = None,
    destination_schema: DestinationSchema = None,
    destination_table: DestinationTable = None,
    destination_spreadsheet: DestinationSpreadsheet = None,
    destination_credentials: DestinationCredentials = None,
    destination_endpoint: DestinationEndpoint = None,
    destination_sheet: DestinationSheet = None,
    mapping: MappingKind = None,
    columns: Columns = None,
    column_types: ColumnTypes = None,
    transforms: Transforms = None,
    date_formats: DateFormats = None,
    detect: Detect = None,
    create_missing_columns: CreateMissingColumns = None,
    extra_destination_columns: ExtraDestinationColumns = None,
    conflict_key: ConflictKey = None,
    conflict_strategy: Strategy = None,
    mode: Mode = None,
    hooks: Hooks = None,
    before_row_hook: BeforeRowHook = None,
    after_row_hook: AfterRowHook = None,
    before_batch_hook: BeforeBatchHook = None,
    after_batch_hook: AfterBatchHook = None,
    before_job_hook: BeforeJobHook = None,
    after_job_hook: AfterJobHook = None,
    batch_size: BatchSize = None,
    retry: Retry = None,
    retry_attempts: RetryAttempts = None,
    workers: Workers = None,
    schema_check: SchemaCheck = None,
    row_count: RowCount = None,
    max_rejects: MaxRejects = None,
    preview_rows: PreviewRows = None,
    output: Output = None,
    if_exists: IfExists = None,
    name: Name = None,
    run: Run = None,
    connections: Connections = None,
    state_dir: StateDir = None,
    debug: Debug = False,
    check_file: CheckFile = None,
    job_file: JobFile = None,
) -> None:
    """Write a job file by answering questions, or from flags and an answers file.

    On a terminal each question shows its default; Enter takes it. With --yes, or without a
    terminal, nothing is asked: answers not given take their defaults, and the answers that have
    none are listed in one error (exit code 2). Ctrl-C at any question exits with code 130 and
    writes nothing. The job is checked as `portl validate` checks it before it is saved.

    With --check-file FILE --job-file JOB.yaml nothing is asked or written: FILE's columns are
    compared with those the job was written for, and the job's mapping is resolved against them.
    """
    if check_file is not None or job_file is not None:
        _check_file(check_file, job_file, name, connections, debug)
        return
    # Every parameter but the few below is an answer, named by its answers-file key.
    flags = {key: value for key, value in locals().items()
             if key not in _NOT_ANSWERS and value is not None and value != []}
    from portl.cli import app as cli
    from portl.cli.output import configure
    from portl.wizard import PATH_KEYS, WizardOptions, answer_keys, run_wizard
    from portl.wizard.answers import read_answers_file, relative_to_answers

    configure(debug=debug)
    given: dict[str, Any] = {}
    if answers:
        given = relative_to_answers(read_answers_file(answers, answer_keys()), answers, PATH_KEYS)
    given.update(flags)

    console = Console(highlight=False)
    options = WizardOptions(interactive=sys.stdin.isatty() and not yes, connections_file=connections,
                            show_plan=_render_plan)
    try:
        outcome = run_wizard(given, console, options)
    except (KeyboardInterrupt, EOFError):
        Console(stderr=True, highlight=False).print("\n[yellow]cancelled: nothing was written[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if outcome.run:
        cli.run(outcome.path, job=outcome.name, connections=outcome.connections_file, state_dir=state_dir, debug=debug)


_NOT_ANSWERS = frozenset({"answers", "yes", "connections", "state_dir", "debug", "check_file", "job_file"})


def _check_file(file: str | None, job_file: str | None, name: str | None, connections: str | None, debug: bool) -> None:
    """``--check-file``: print whether the job can load the file; exit 1 when it cannot."""
    from rich.markup import escape

    from portl.cli.output import configure, out
    from portl.wizard.filecheck import check_file

    configure(debug=debug)
    if not file or not job_file:
        given, needed = ("--check-file", "--job-file") if file else ("--job-file", "--check-file")
        raise typer.BadParameter(f"{given} needs {needed} too: the file to check and the job to check it against",
                                 param_hint=needed)
    result = check_file(file, job_file, name, connections)
    for line in result.lines():
        out.print(escape(line), soft_wrap=True)
    if not result.loadable:
        raise typer.Exit(1)


def _render_plan(console: Console, plan: Any) -> None:
    from portl.cli.render import render_plan

    render_plan(console, plan)
