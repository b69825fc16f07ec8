"""A reject file that cannot be created is a problem of the job file, found before anything runs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_clean_failure


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_rejects_path_inside_a_file_is_reported_at_its_key(portl, write, tmp_path, command):
    write("in.csv", "id\n1\nnot a number\n")
    write("notes.txt", "a file, not a folder\n")
    write("job.yaml", """\
        source: {type: csv, path: in.csv}
        destination: {type: sqlite, path: out.db, table: t}
        mapping: {columns: {id: {type: bigint}}}
        rejects:
          path: notes.txt/rejects.csv
        """)
    result = portl(command, "job.yaml")
    assert_clean_failure(result, 2)
    assert (f"job.yaml:5:3: rejects.path: the reject file {tmp_path}/notes.txt/rejects.csv cannot be created: "
            f"{tmp_path}/notes.txt is a file, not a folder; give a path whose folders are folders") in result.stderr
    assert not (tmp_path / "out.db").exists()
