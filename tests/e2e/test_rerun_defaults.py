"""Re-runs that are safe by default: file destinations are not doubled or lost unless the job says
so, and a run that rejected most of its rows says so in its last lines."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import text_counts

FILES = {"csv": "out.csv", "jsonl": "out.jsonl", "parquet": "out.parquet"}


@pytest.fixture
def source(write) -> Path:
    return write("people.csv", "id,name\n1,Ann\n2,Bob\n3,Cy\n")


def job(write, kind: str, mode: str | None = None) -> None:
    line = f"mode: {mode}\n" if mode else ""
    write("job.yaml", f"source: {{type: csv, path: people.csv}}\ndestination: {{type: {kind}, path: {FILES[kind]}}}\n{line}")


def rows_in(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.read_table(path).num_rows
    lines = [line for line in path.read_text().splitlines() if line]
    return len(lines) - (1 if path.suffix == ".csv" else 0)


@pytest.mark.parametrize("kind", sorted(FILES))
def test_a_second_run_into_an_existing_file_without_a_mode_is_refused_naming_the_key(portl, write, source, tmp_path, kind):
    job(write, kind)
    assert portl("run", "job.yaml").code == 0
    written = (tmp_path / FILES[kind]).read_bytes()

    again = portl("run", "job.yaml")

    assert again.code == 2, again.log
    said = " ".join(again.stderr.split())
    assert f"job.yaml:2:" in said and f"{FILES[kind]} (" in said and "already exists" in said, again.log
    assert "set mode: replace to write it anew" in said, again.log
    if kind == "parquet":
        assert "cannot be appended to" in said and "mode: append" not in said, again.log
    else:
        assert "or mode: append to add the rows to it" in said, again.log
    assert (tmp_path / FILES[kind]).read_bytes() == written
    planned = portl("plan", "job.yaml")
    assert planned.code == 2 and "already exists" in planned.stderr, planned.log


@pytest.mark.parametrize("kind", sorted(FILES))
def test_mode_replace_writes_the_file_anew_on_every_run(portl, write, source, tmp_path, kind):
    job(write, kind, "replace")
    for _ in range(2):
        result = portl("run", "job.yaml")
        assert result.code == 0, result.log
    assert rows_in(tmp_path / FILES[kind]) == 3


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_mode_append_adds_to_the_file_when_asked(portl, write, source, tmp_path, kind):
    job(write, kind, "append")
    for _ in range(2):
        result = portl("run", "job.yaml")
        assert result.code == 0, result.log
    assert rows_in(tmp_path / FILES[kind]) == 6


def amounts_job(write, rows: str, validation: str = "") -> None:
    """A job loading ``id,amount`` rows whose amounts must be integers: other text is rejected."""
    write("amounts.csv", "id,amount\n" + rows)
    write("job.yaml", f"""
        source: {{type: csv, path: amounts.csv}}
        destination: {{type: sqlite, path: out.db, table: amounts}}
        mapping: {{auto: true, columns: {{amount: {{type: int}}}}}}
        {validation}
    """)


def test_a_run_that_rejected_more_than_half_its_rows_ends_with_a_warning_saying_how_many_and_where(portl, write):
    amounts_job(write, "1,10\n2,x\n3,y\n4,z\n5,5\n")

    result = portl("run", "job.yaml")

    assert result.code == 0, result.log
    assert text_counts(result.stderr)["rejected"] == 3
    last = " ".join(result.stderr.strip().splitlines()[-2:])
    said = " ".join(result.stderr.split())
    assert said.count("3 of 5 source rows were rejected (60%)") == 1 and "job.rejects.csv" in said, result.log
    assert "validation.max_rejects" in said and "rejected" in last, result.log


def test_a_run_that_rejected_every_row_says_nothing_was_loaded(portl, write):
    amounts_job(write, "1,x\n2,y\n")

    result = portl("run", "job.yaml")

    said = " ".join(result.stderr.split())
    assert "every source row was rejected (2): nothing was loaded" in said, result.log


def test_no_warning_when_max_rejects_is_set(portl, write):
    amounts_job(write, "1,x\n2,y\n3,3\n", "validation: {max_rejects: 5}")

    result = portl("run", "job.yaml")

    assert result.code == 0 and "were rejected" not in result.stderr, result.log
