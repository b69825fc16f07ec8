"""Jobs for the S3 tests: write a job file, run it in-process, read back what it loaded."""

from __future__ import annotations

import csv
import gzip
import io
import sqlite3
import textwrap
from pathlib import Path

import portl


def csv_text(rows: list[tuple], header: str = "id,name,city") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    writer.writerows(rows)
    return out.getvalue()


def gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def people(first: int, last: int) -> list[tuple]:
    return [(i, f"name-{i:07d}", f"city-{i % 13}") for i in range(first, last + 1)]


def write_job(folder: Path, source: str, destination: str = "{type: sqlite, path: out.db, table: people}",
              body: str = "", name: str = "people") -> str:
    text = f"name: {name}\nsource: {source}\ndestination: {destination}\n" + textwrap.dedent(body)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def run_job(path: str, state: Path, **options) -> portl.RunReport:
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(state), **options))
    finally:
        the_plan.close()


def sqlite_ids(folder: Path, table: str = "people") -> list[int]:
    with sqlite3.connect(folder / "out.db") as db:
        return sorted(int(row[0]) for row in db.execute(f"SELECT id FROM {table}"))


def csv_ids(data: bytes) -> list[int]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return [int(r["id"]) for r in rows]
