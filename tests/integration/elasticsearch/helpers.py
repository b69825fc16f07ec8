"""Running jobs against the stand-in search cluster (:mod:`tests.fakes.search_server`)."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import portl


def write_people(folder: Path, rows: list[tuple]) -> None:
    lines = ["id,name,city"] + [",".join(str(v) for v in row) for row in rows]
    (folder / "in.csv").write_text("\n".join(lines) + "\n")


def run_job(folder: Path, text: str, name: str = "job", **options) -> portl.RunReport:
    """Write ``text`` as a job file in ``folder``, plan it and run it."""
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(folder / "state"), **options))
    finally:
        the_plan.close()


def rejects(folder: Path, name: str = "job") -> list[dict[str, str]]:
    with open(folder / f"{name}.rejects.csv", newline="") as handle:
        return list(csv.DictReader(handle))


PEOPLE = "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"
