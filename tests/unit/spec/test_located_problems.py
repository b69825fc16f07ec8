"""Problems found across keys, or after the job loaded, are located at the key they are about."""

from __future__ import annotations

import os

import pytest

import portl
from portl.spec.loader import load_job

HEAD = """\
name: j
source: {type: csv, path: in.csv}
destination: {type: sqlite, path: out.db, table: t}
"""


def located(problems) -> list[tuple[str, int, int]]:
    return [(p.message, p.line, p.column) for p in problems]


def test_conflict_with_a_mode_other_than_upsert_is_reported_at_the_conflict_key(write, problems_of):
    path = write("job.yaml", HEAD + "mode: append\nconflict:\n  key: [id]\n")
    assert located(problems_of(load_job, str(path))) == [
        ("'conflict' only applies to mode upsert, but mode is 'append'", 5, 1)]


def test_upsert_without_a_conflict_section_is_reported_at_the_mode_key(write, problems_of):
    path = write("job.yaml", HEAD + "description: upserts\nmode: upsert\n")
    assert located(problems_of(load_job, str(path))) == [
        ("mode 'upsert' needs a 'conflict' section with the key columns", 5, 1)]


def test_conflict_rule_of_one_job_of_a_multi_job_file_points_into_that_entry(write, problems_of):
    path = write("jobs.yaml", """\
jobs:
  - name: first
    source: {type: csv, path: in.csv}
    destination: {type: sqlite, path: out.db, table: t}
    mode: replace
    conflict: {key: [id]}
""")
    assert located(problems_of(load_job, str(path))) == [
        ("'conflict' only applies to mode upsert, but mode is 'replace'", 6, 5)]


def test_an_unmapped_conflict_key_is_a_plan_error_at_the_conflict_key_line(write):
    write("in.csv", "id,name\n1,a\n")
    path = write("job.yaml", HEAD + "conflict:\n  strategy: skip\n  key: [idx]\n")
    the_plan = portl.plan(load_job(str(path)))
    try:
        assert the_plan.errors == [f"{path}:6:8: conflict.key: column idx is not mapped; did you mean 'id'?"]
    finally:
        the_plan.close()


def test_a_rejects_path_inside_a_file_is_a_problem_at_its_key(write, problems_of):
    folder = write("notes.txt", "not a folder\n")
    path = write("job.yaml", HEAD + "rejects:\n  path: notes.txt/bad.csv\n")
    assert located(problems_of(load_job, str(path))) == [
        (f"rejects.path: the reject file {folder}/bad.csv cannot be created: {folder} is a file, not a folder; "
         "give a path whose folders are folders", 5, 3)]


def test_a_rejects_path_under_a_missing_folder_below_a_file_is_a_problem(write, problems_of):
    folder = write("notes.txt", "not a folder\n")
    path = write("job.yaml", HEAD + "rejects: {path: notes.txt/more/bad.csv}\n")
    [problem] = problems_of(load_job, str(path))
    assert (problem.line, f"{folder} is a file, not a folder" in problem.message) == (4, True)


def test_a_rejects_path_that_is_a_folder_is_a_problem(write, problems_of, tmp_path):
    (tmp_path / "rejects").mkdir()
    path = write("job.yaml", HEAD + "rejects:\n  path: rejects\n")
    [problem] = problems_of(load_job, str(path))
    assert problem.message == (f"rejects.path: the reject file {tmp_path}/rejects cannot be created: it is a folder; "
                               "give a file name, e.g. rejects.csv inside it")


def test_a_rejects_path_in_a_read_only_folder_is_a_problem(write, problems_of, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user can write in a folder with mode 500 (root), so it cannot be made read-only")
        path = write("job.yaml", HEAD + "rejects:\n  path: locked/bad.csv\n")
        [problem] = problems_of(load_job, str(path))
        assert problem.message.endswith(f"this user cannot write in folder {locked}; change its permissions or give another path")
    finally:
        locked.chmod(0o700)


def test_a_rejects_path_in_new_folders_is_fine(write):
    path = write("job.yaml", HEAD + "rejects:\n  path: out/rejects/bad.csv\n")
    assert load_job(str(path)).job.rejects.path == "out/rejects/bad.csv"


def test_a_default_reject_file_that_cannot_be_created_is_a_plan_warning(write, tmp_path):
    write("in.csv", "id\n1\n")
    (tmp_path / "j.rejects.csv").mkdir()
    the_plan = portl.plan(load_job(str(write("job.yaml", HEAD))))
    try:
        assert (f"rejected rows would go to {tmp_path}/j.rejects.csv, which cannot be created: it is a folder; give a "
                "file name, e.g. rejects.csv inside it; set rejects.path to a file in a folder you can write") in the_plan.warnings
        assert the_plan.errors == []
    finally:
        the_plan.close()


def test_a_reject_file_that_cannot_be_written_during_a_run_is_a_sentence(tmp_path):
    from portl.connectors.base import Reject
    from portl.engine.rejects import RejectFile
    from portl.errors import PortlError

    (tmp_path / "full").write_text("")
    rejects = RejectFile(str(tmp_path / "full" / "rejects.csv"))
    with pytest.raises(PortlError) as info:
        rejects.append([Reject("in.csv", "not a number", line=3)])
    assert str(info.value).startswith(f"cannot write the reject file {tmp_path}/full/rejects.csv: ")
    assert str(info.value).endswith("the batch was not committed. Free the space or fix the folder (or set "
                                    "rejects.path), then continue with --resume")
