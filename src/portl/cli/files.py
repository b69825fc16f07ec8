"""``portl files …``: the tenant's files folder on a Portl server, where the relative paths of
its jobs point: upload a local file, list the folder, delete a file. Same server, key and
output options as ``portl jobs``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from portl.cli.client import DEFAULT_SERVER, ApiKey, Debug, OutputFormat, Server, _connect
from portl.cli.output import Format, configure, out, print_json, settings
from portl.errors import ConfigError

files_app = typer.Typer(help="Upload, list and delete the files of your tenant on a Portl server (what its jobs' "
                        "relative paths read).", no_args_is_help=True, rich_markup_mode=None)

RemotePath = Annotated[str, typer.Argument(help="The file's path in your files folder, as `portl files list` shows it.",
                                           metavar="PATH")]


@files_app.command("upload")
def files_upload(
    local_file: Annotated[str, typer.Argument(help="The file to upload.", metavar="LOCAL")],
    as_path: Annotated[Optional[str], typer.Option("--as", help="Its path in your files folder, with / between folders (default: its own name).", metavar="PATH")] = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Upload a file to your files folder on the server, replacing a file of that path. A job then
    reads it by that path, e.g. `source: {type: csv, path: people.csv}`."""
    configure(debug=debug, format=format)
    local = Path(local_file)
    if not local.is_file():
        raise ConfigError(f"cannot upload {str(local)!r}: " + ("it is a folder; upload its files one by one"
                                                                if local.is_dir() else "there is no such file"))
    with _connect(server, api_key) as client, local.open("rb") as content:
        stored = client.request("POST", "/api/v1/files", files={"file": (local.name, content)},
                                data={"path": as_path} if as_path is not None else None)
    if settings.json:
        print_json(stored)
    else:
        out.print(f"uploaded {escape(stored['path'])} ({stored['size']:,} bytes, sha256 {stored['sha256']})")


@files_app.command("list")
def files_list(server: Server = DEFAULT_SERVER, api_key: ApiKey = None, format: OutputFormat = Format.text,
               debug: Debug = False) -> None:
    """List the files of your files folder on the server: path, size, last modified."""
    configure(debug=debug, format=format)
    with _connect(server, api_key) as client:
        files = client.request("GET", "/api/v1/files")["files"]
        where = client.shown
    if settings.json:
        print_json(files)
        return
    _render(files, where)


@files_app.command("delete")
def files_delete(path: RemotePath, server: Server = DEFAULT_SERVER, api_key: ApiKey = None,
                 format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Delete a file of your files folder on the server (and the folders it leaves empty)."""
    configure(debug=debug, format=format)
    with _connect(server, api_key) as client:
        client.request("DELETE", "/api/v1/files/" + quote(path, safe="/"))
    if settings.json:
        print_json({"path": path, "deleted": True})
    else:
        out.print(f"deleted {escape(path)}")


def _render(files: list[dict[str, Any]], server: str) -> None:
    if not files:
        out.print(f"no files on {escape(server)} for this tenant; `portl files upload LOCAL` uploads one")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("path", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("modified", no_wrap=True)
    for f in files:
        table.add_row(escape(f["path"]), f"{f['size']:,}", _when(f["modified"]))
    out.print(table)


def _when(ts: str) -> str:
    try:
        at = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
