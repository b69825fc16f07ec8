"""Where rows come from and go: the questions of steps 1 and 2, and looking at the answers.

A side (``source`` or ``destination``) is a connector type, then either a named connection from
the connections file, a path (files and SQLite), or a server's URL or host, port, user... and,
for databases, a table; or a spreadsheet (its ID or URL, a credentials file) and a tab. The check
that completes a location looks at it right away: a source file or tab is read, a database lists
its tables, a destination is opened without writing.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from rich.markup import escape

from portl.connectors import registry
from portl.connectors.objectstore.paths import has_glob, is_object_url
from portl.engine.mapping import normalise_name
from portl.errors import PortlError
from portl.secrets import mask_url
from portl.wizard import discover
from portl.wizard.browse import matches_of
from portl.wizard.checks import choice, integer, resolved_path, text
from portl.wizard.compose import LOCATION_KEYS
from portl.wizard.discover import DATABASE_FILE, FILE, SERVER, SPREADSHEET
from portl.wizard.interview import REQUIRED, Interview, Question, Unsettled

_EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite",
}
_SCHEMES = {
    "postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mysql+pymysql": "mysql", "mariadb": "mariadb",
}
_FILE_SUFFIX = {"csv": "csv", "tsv": "tsv", "parquet": "parquet", "jsonl": "jsonl"}


def kind(iv: Interview, side: str) -> str:
    """``file``, ``database file`` or ``server``; Unsettled while the type is not known."""
    type_name = iv.value(f"{side}_type")
    if type_name is None:
        raise Unsettled(f"{side}_type")
    return discover.kinds()[type_name]


def connection(iv: Interview, side: str) -> dict[str, Any] | None:
    """The settings of the named connection chosen for ``side``, if one was."""
    name = iv.value(f"{side}_connection")
    return dict(iv.facts.get("connections", {}).get(name, {})) if name else None


def location(iv: Interview, side: str, **override: Any) -> dict[str, Any]:
    """The connector settings answered so far for ``side``, as a job holds them."""
    data = connection(iv, side) or {"type": iv.value(f"{side}_type")}
    for key in LOCATION_KEYS:
        value = override.get(key, iv.answers.get(f"{side}_{key}"))
        if value not in (None, ""):
            data[key] = value
    table = override.get("table", iv.answers.get(f"{side}_table"))
    if table:
        data["table"] = table
    return data


def base_name(iv: Interview) -> str:
    """A name for the job, the destination table and the files: the source table or file stem."""
    table = (iv.answers.get("source_table") or iv.answers.get("source_sheet")
             or (connection(iv, "source") or {}).get("table"))
    if table:
        return normalise_name(str(table).rsplit(".", 1)[-1]) or "job"
    path = iv.answers.get("source_path") or (connection(iv, "source") or {}).get("path")
    if path:
        name = os.path.basename(str(path))
        for suffix in (".gz",):
            name = name.removesuffix(suffix)
        return normalise_name(os.path.splitext(name)[0]) or "job"
    return "job"


def look(iv: Interview, side: str, **override: Any) -> None:
    """Look at the location answered for ``side`` (without a table): read a source file, open a
    destination file, or list a database's tables. Raises the connector's error."""
    data = location(iv, side, **override)
    data.pop("table", None)
    k = kind(iv, side)
    if k == SPREADSHEET:
        if data.get("sheet"):
            _look_at_tab(iv, side, data)
    elif k == FILE and side == "source":
        iv.facts["source"] = discover.read_source(data, iv.cwd, iv.environ)
    elif k == FILE:
        iv.facts["destination"] = discover.inspect_destination(data, iv.cwd, iv.environ)
    else:
        tables = discover.list_tables(data, iv.cwd, iv.environ, role=side)
        if side == "source" and not tables:
            raise ValueError(f"{discover.build_config(data, iv.environ).describe()} holds no tables to read")
        iv.facts[f"{side}_tables"] = tables  # None: a database file that the first run creates


def _look_at_tab(iv: Interview, side: str, data: dict[str, Any]) -> None:
    """Read a source tab's header and first rows, or open a destination tab without writing."""
    if side == "source":
        iv.facts["source"] = discover.read_source(data, iv.cwd, iv.environ)
    else:
        iv.facts["destination"] = discover.inspect_destination(data, iv.cwd, iv.environ)


def _spreadsheet_check(side: str):
    def check(value: Any, iv: Interview) -> str:
        given = text(value, "the spreadsheet ID or URL")
        config = discover.build_config({"type": iv.value(f"{side}_type"), "spreadsheet": given}, iv.environ)
        return config.spreadsheet  # the ID, also when a URL was pasted
    return check


def _credentials_check(value: Any, iv: Interview) -> str | None:
    if value is None or not str(value).strip():
        return None
    path = str(value).strip()
    full = resolved_path(path, iv.cwd, iv.environ)
    if not os.path.isfile(full):
        raise ValueError(f"no such file: {path}{_nearby(full)}")
    return path


def _sheet_default(side: str):
    def default(iv: Interview) -> Any:
        named = (connection(iv, side) or {}).get("sheet")
        if named:
            return named
        return base_name(iv) if side == "destination" else REQUIRED
    return default


def _sheet_check(side: str):
    def check(value: Any, iv: Interview) -> str:
        name = text(value, "the tab name")
        iv.value(f"{side}_spreadsheet")  # Unsettled while the spreadsheet is not known
        _look_at_tab(iv, side, location(iv, side, sheet=name))
        return name
    return check


def _spreadsheet_details(side: str):
    return lambda iv: kind(iv, side) == SPREADSHEET and connection(iv, side) is None


def _type_default(side: str):
    def default(iv: Interview) -> Any:
        named = iv.given.get(f"{side}_connection")
        if named and named in iv.facts.get("connections", {}):
            return iv.facts["connections"][named]["type"]
        path = iv.given.get(f"{side}_path")
        if isinstance(path, str):
            lowered = path.lower().removesuffix(".gz")
            return _EXTENSIONS.get(os.path.splitext(lowered)[1], REQUIRED)
        if iv.given.get(f"{side}_spreadsheet"):
            sheets = [name for name, k in discover.kinds().items() if k == SPREADSHEET]
            return sheets[0] if len(sheets) == 1 else REQUIRED
        url = iv.given.get(f"{side}_url")
        if isinstance(url, str) and "://" in url:
            return _SCHEMES.get(url.split("://", 1)[0].lower(), REQUIRED)
        return REQUIRED
    return default


def _type_check(side: str):
    def check(value: Any, iv: Interview) -> str:
        chosen = choice(discover.canonical(str(value).strip().lower()), discover.types_for(side), f"{side} type")
        iv.facts.pop(side, None)
        iv.facts.pop(f"{side}_tables", None)
        return chosen
    return check


def _connection_names(iv: Interview, side: str) -> list[str]:
    wanted = iv.value(f"{side}_type")
    return [n for n, s in iv.facts.get("connections", {}).items() if discover.canonical(s["type"]) == wanted]


def _connection_check(side: str):
    def check(value: Any, iv: Interview) -> str | None:
        if value is None or str(value).strip().lower() in ("", "none", "no"):
            return None
        name = choice(value, _connection_names(iv, side), "connection name")
        iv.answers[f"{side}_connection"] = name  # look() reads the location from the answers
        try:
            look(iv, side)
        finally:
            iv.answers.pop(f"{side}_connection", None)
        return name
    return check


def _path_check(side: str):
    def check(value: Any, iv: Interview) -> str:
        path = text(value, "the path")
        if is_object_url(path) or (side == "source" and has_glob(path)):
            if side == "source" and has_glob(path) and iv.interactive:
                _show_matches(iv, path)
            # An object, or a glob of files: the connector itself finds them (and says what is wrong).
            look(iv, side, path=path)
            return path
        full = resolved_path(path, iv.cwd, iv.environ)
        if side == "source":
            if not os.path.exists(full):
                raise ValueError(f"no such file: {path}{_nearby(full)}")
            if os.path.isdir(full):
                raise ValueError(f"{path} is a folder; give the path of a file")
            _same_format(full, path, iv.value(f"{side}_type"))
        else:
            folder = os.path.dirname(full)
            if not os.path.isdir(folder):
                raise ValueError(f"folder {os.path.dirname(path)} does not exist; create it first")
            if os.path.isdir(full):
                raise ValueError(f"{path} is a folder; give the path of a file")
        look(iv, side, path=path)
        return path
    return check


def _show_matches(iv: Interview, pattern: str) -> None:
    """The files a glob matches, with their sizes, listed as the source connector finds them."""
    from portl.connectors.objectstore import find_files

    try:
        found = find_files(discover.build_config(location(iv, "source", path=pattern), iv.environ), iv.cwd)
    except PortlError:
        return  # no match, or a store that cannot be listed: look() says so, with what to do
    matches = matches_of(pattern, ((f.name, f.size) for f in found))
    iv.console.print(escape("\n".join(matches.lines())), highlight=False)


#: The first bytes of binary files, by connector type: read as text they would only give garbage.
_MAGIC = {b"PAR1": "parquet", b"SQLite format 3\x00": "sqlite"}


def _same_format(full: str, shown: str, type_name: str) -> None:
    """ValueError when the file's first bytes say it is of another type than the one chosen."""
    try:
        with open(full, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise ValueError(f"cannot read {shown}: {exc.strerror or exc}") from None
    found = next((t for magic, t in _MAGIC.items() if head.startswith(magic)), None)
    if found and found != type_name:
        raise ValueError(f"{shown} is a {found} file, not {type_name}; give a {type_name} file, or start again "
                         f"with --source-type {found}")


def _nearby(full: str) -> str:
    folder = os.path.dirname(full)
    try:
        names = os.listdir(folder)
    except OSError:
        return ""
    close = difflib.get_close_matches(os.path.basename(full), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _url_check(side: str):
    def check(value: Any, iv: Interview) -> str | None:
        url = "" if value is None else str(value).strip()
        if not url:
            return None
        discover.build_config({"type": iv.value(f"{side}_type"), "url": url}, iv.environ)
        return url
    return check


def _table_default(side: str):
    def default(iv: Interview) -> Any:
        named = (connection(iv, side) or {}).get("table")
        if named:
            return named
        if side == "destination":
            return base_name(iv)
        tables = iv.fact("source_tables")
        return tables[0].name if len(tables) == 1 else REQUIRED
    return default


def _table_check(side: str):
    def check(value: Any, iv: Interview) -> str:
        name = text(value, "the table name")
        tables = [t.name for t in iv.facts.get(f"{side}_tables") or []]
        if side == "source" or (name.isdigit() and tables):
            name = choice(name, tables, "table") if tables else name
        if side == "source":
            iv.facts["source"] = discover.read_source(location(iv, side, table=name), iv.cwd, iv.environ)
            return name
        iv.facts["destination"] = discover.inspect_destination(location(iv, side, table=name), iv.cwd, iv.environ)
        close = difflib.get_close_matches(name, tables, n=1) if name not in tables else []
        if close and iv.interactive:
            # A new name is allowed, so a typo would quietly create a second table: say so.
            iv.console.print(f"[yellow]note:[/] no table {escape(name)} yet (did you mean {escape(close[0])}?); "
                             "the first run creates it")
        return name
    return check


def _path_default(side: str):
    def default(iv: Interview) -> Any:
        if side == "source":
            return REQUIRED
        if kind(iv, side) == DATABASE_FILE:
            return f"{base_name(iv)}.db"
        return f"{base_name(iv)}.{_FILE_SUFFIX.get(iv.value('destination_type'), 'out')}"
    return default


def _server_details(side: str):
    return lambda iv: kind(iv, side) == SERVER and connection(iv, side) is None and not iv.value(f"{side}_url")


def _field_default(side: str, name: str):
    def default(iv: Interview) -> Any:
        model = registry.module_for(iv.value(f"{side}_type")).Config
        for key, f in model.model_fields.items():
            if (f.alias or key) == name and isinstance(f.default, str):
                return f.default
        return REQUIRED
    return default


def side_questions(side: str) -> dict[str, Question]:
    """The questions that say where rows come from (``source``) or go (``destination``)."""
    role = "Source" if side == "source" else "Destination"
    files = "for file and SQLite " + ("sources" if side == "source" else "destinations")
    servers = "for database servers, without --" + side + "-url"
    return {q.key: q for q in (
        Question(f"{side}_type", f"{role} type", kind="choice", default=_type_default(side), check=_type_check(side),
                 choices=lambda iv, s=side: discover.types_for(s)),
        Question(f"{side}_connection", "Use a named connection from the connections file", kind="choice",
                 default=lambda iv: "none", check=_connection_check(side),
                 choices=lambda iv, s=side: ["none", *_connection_names(iv, s)],
                 applies=lambda iv, s=side: bool(_connection_names(iv, s)), shown=lambda v: v or "none"),
        Question(f"{side}_path", f"{role} file path" if side == "source" else f"{role} path",
                 default=_path_default(side), check=_path_check(side), when=files, paths=True,
                 applies=lambda iv, s=side: kind(iv, s) in (FILE, DATABASE_FILE) and connection(iv, s) is None,
                 hint="Relative paths are taken from the current folder; ${env:NAME} reads a variable."),
        Question(f"{side}_url", "Connection URL (empty: enter host, port, user... one by one)",
                 default=lambda iv: None, check=_url_check(side),
                 applies=lambda iv, s=side: kind(iv, s) == SERVER and connection(iv, s) is None,
                 hint="For example postgresql://user@host:5432/db or mysql://user@host:3306/db; "
                      "${env:NAME} keeps the secret out of the file.",
                 shown=lambda v: mask_url(v) if v else ""),
        Question(f"{side}_host", "Host", default=lambda iv: "127.0.0.1", check=lambda v, iv: text(v, "the host"),
                 applies=_server_details(side)),
        Question(f"{side}_port", "Port", default=lambda iv, s=side: discover.default_port(iv.value(f"{s}_type")),
                 check=lambda v, iv: integer(v, 1, 65535), applies=_server_details(side)),
        Question(f"{side}_user", "User (empty: the driver's default)", default=lambda iv: None,
                 check=lambda v, iv: str(v).strip() or None if v is not None else None, applies=_server_details(side)),
        Question(f"{side}_password", "Password (empty: none)", kind="secret", default=lambda iv: None,
                 check=lambda v, iv: str(v) if v not in (None, "") else None, applies=_server_details(side),
                 hint="Write ${env:NAME} to read it from the environment when the job runs; "
                      "anything else is stored in the job file as typed.",
                 shown=lambda v: "" if not v else (v if "${env:" in v else "**********")),
        Question(f"{side}_database", "Database", check=lambda v, iv: text(v, "the database name"),
                 applies=_server_details(side), when=servers),
        Question(f"{side}_schema", "Schema", default=_field_default(side, "schema"),
                 check=lambda v, iv: text(v, "the schema"),
                 applies=lambda iv, s=side: kind(iv, s) == SERVER and connection(iv, s) is None
                 and "schema" in discover.config_fields(iv.value(f"{s}_type"))),
        Question(f"{side}_spreadsheet", "Spreadsheet ID or URL", check=_spreadsheet_check(side),
                 applies=_spreadsheet_details(side), when="for Google Sheets " + ("sources" if side == "source" else "destinations"),
                 hint="The ID is the part of the spreadsheet's URL after /spreadsheets/d/; the whole URL works too."),
        Question(f"{side}_credentials", "Credentials file (service account or OAuth user; empty: Application Default "
                 "Credentials)", default=lambda iv: None, check=_credentials_check, applies=_spreadsheet_details(side),
                 paths=True,
                 hint="A service-account key (share the spreadsheet with its e-mail) or an authorized-user file."),
        Question(f"{side}_endpoint", "Sheets API endpoint", default=lambda iv: None,
                 check=lambda v, iv: str(v).strip() or None if v is not None else None,
                 applies=_spreadsheet_details(side), asked=lambda iv: False),
        Question(f"{side}_sheet", "Tab name" + (" (created when missing)" if side == "destination" else ""),
                 default=_sheet_default(side), check=_sheet_check(side),
                 applies=lambda iv, s=side: kind(iv, s) == SPREADSHEET,
                 when="for Google Sheets " + ("sources" if side == "source" else "destinations")),
        Question(f"{side}_table", f"{role} table", default=_table_default(side), check=_table_check(side),
                 applies=lambda iv, s=side: kind(iv, s) in (DATABASE_FILE, SERVER),
                 when="for database " + ("sources" if side == "source" else "destinations"),
                 choices=lambda iv, s=side: [t.name for t in iv.facts.get(f"{s}_tables") or []]),
    )}
