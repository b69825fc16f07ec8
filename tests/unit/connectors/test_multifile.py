"""A glob of local files as one source: order, partitions, checkpoints, and the incremental
protocol (the files loaded so far as the mark; only new or changed files read next time)."""

from __future__ import annotations

import os

import pytest

from portl.connectors import csv as csv_connector
from portl.connectors.base import Checkpoint, IncrementalSource
from portl.connectors.multifile import MultiFileSource
from portl.errors import SourceError


def write_csv(folder, name: str, first: int, last: int) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(first, last + 1)))


def open_glob(folder, pattern: str = "data/*.csv") -> MultiFileSource:
    config = csv_connector.Config(type="csv", path=pattern)
    source = csv_connector.open_source(config, str(folder))
    assert isinstance(source, MultiFileSource)
    return source


def ids(source, start=None, batch: int = 1000) -> list[int]:
    return [int(r["id"]) for chunk in source.read(batch, start) for r in chunk.data.to_pylist()]


def test_files_are_read_in_the_order_of_their_sorted_names(tmp_path):
    write_csv(tmp_path, "data/b.csv", 4, 6)
    write_csv(tmp_path, "data/a.csv", 1, 3)
    source = open_glob(tmp_path)
    assert [f.name for f in source.files] == [os.path.join("data", "a.csv"), os.path.join("data", "b.csv")]
    assert ids(source) == [1, 2, 3, 4, 5, 6]
    source.close()


def test_a_checkpoint_names_the_file_and_resumes_inside_it(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 3)
    write_csv(tmp_path, "data/b.csv", 4, 9)
    source = open_glob(tmp_path)
    chunks = list(source.read(2, None))
    after = chunks[2].checkpoint  # rows 1-2, 3, then 4-5 of b.csv
    assert after.position["name"] == os.path.join("data", "b.csv") and after.rows == 5 and not after.done
    assert ids(source, after) == [6, 7, 8, 9]
    assert chunks[-1].checkpoint.done
    source.close()


def test_partitions_of_many_files_are_one_file_each_largest_first(tmp_path):
    for n in range(4):
        write_csv(tmp_path, f"data/{n}.csv", n * 10 + 1, n * 10 + 10)
    source = open_glob(tmp_path)
    starts = source.partitions(2)
    # 0.csv holds the shortest ids, so the fewest bytes: it comes last
    assert [(s.partition, s.position["file"], s.position["end_file"]) for s in starts] == \
        [("1", 1, 2), ("2", 2, 3), ("3", 3, 4), ("0", 0, 1)]
    assert sorted(i for s in starts for i in ids(source, s)) == list(range(1, 41))
    source.close()


def test_with_one_worker_one_partition_walks_the_files_in_order(tmp_path):
    for n in range(3):
        write_csv(tmp_path, f"data/{n}.csv", n * 10 + 1, n * 10 + 10)
    source = open_glob(tmp_path)
    (only,) = source.partitions(1)
    assert (only.position["file"], only.position["end_file"]) == (0, 3)
    assert ids(source, only) == list(range(1, 31))
    source.close()


def test_rejects_name_the_file_they_come_from(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    (tmp_path / "data" / "b.csv").write_text("id,name\n3,x\n4,y,z\n")
    source = open_glob(tmp_path)
    rejects = [r for chunk in source.read(100, None) for r in chunk.rejects]
    assert [(r.source, r.line) for r in rejects] == [(os.path.join("data", "b.csv"), 3)]
    source.close()


def test_a_file_with_other_columns_is_named(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    (tmp_path / "data" / "b.csv").write_text("id,label\n3,x\n")
    source = open_glob(tmp_path)
    with pytest.raises(SourceError, match=r"b\.csv has the columns id, label, but data/a\.csv has id, name"):
        ids(source)
    source.close()


def test_a_glob_matching_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(SourceError, match=r"no file matches data/\*\.csv"):
        open_glob(tmp_path)


# --- incremental ---------------------------------------------------------------------------------


def test_a_glob_source_is_an_incremental_source(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    assert isinstance(open_glob(tmp_path), IncrementalSource)


def test_the_first_run_reads_every_file_and_its_mark_lists_them(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    write_csv(tmp_path, "data/b.csv", 3, 4)
    source = open_glob(tmp_path)
    mark = source.incremental_mark(None)
    assert sorted(mark["files"]) == [os.path.join("data", "a.csv"), os.path.join("data", "b.csv")]
    assert mark["files"][os.path.join("data", "a.csv")]["size"] == len("id,name\n1,n1\n2,n2\n")
    source.restrict(None, mark)
    assert ids(source) == [1, 2, 3, 4]
    source.close()


def test_the_next_run_reads_only_new_and_changed_files(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    write_csv(tmp_path, "data/b.csv", 3, 4)
    first = open_glob(tmp_path)
    previous = first.incremental_mark(None)
    first.close()
    write_csv(tmp_path, "data/c.csv", 5, 6)  # new
    write_csv(tmp_path, "data/b.csv", 3, 5)  # changed: another size
    source = open_glob(tmp_path)
    mark = source.incremental_mark(previous)
    source.restrict(previous, mark)
    assert [f.name for f in source.files] == [os.path.join("data", "b.csv"), os.path.join("data", "c.csv")]
    assert ids(source) == [3, 4, 5, 5, 6]
    lines = source.describe_incremental(previous, mark)
    assert lines[0].startswith("1 new file, 1 changed file of 3 files")
    source.close()


def test_a_run_with_nothing_new_reads_nothing(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    first = open_glob(tmp_path)
    previous = first.incremental_mark(None)
    first.close()
    source = open_glob(tmp_path)
    mark = source.incremental_mark(previous)
    source.restrict(previous, mark)
    assert mark == previous
    assert source.files == [] and ids(source) == [] and source.estimate().bytes == 0
    assert source.partitions(2)[0].done
    source.close()


def test_a_file_gone_since_stays_in_the_mark(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    write_csv(tmp_path, "data/b.csv", 3, 4)
    first = open_glob(tmp_path)
    previous = first.incremental_mark(None)
    first.close()
    os.remove(tmp_path / "data" / "a.csv")
    source = open_glob(tmp_path)
    mark = source.incremental_mark(previous)
    assert os.path.join("data", "a.csv") in mark["files"]  # not loaded again should it come back unchanged
    source.close()


def test_a_glob_never_reads_what_portl_keeps_beside_a_file_it_writes(tmp_path):
    write_csv(tmp_path, "data/a.csv", 1, 2)
    (tmp_path / "data" / "b.csv.portl-checkpoint.json").write_text("{}")
    (tmp_path / "data" / "c.csv.portl-tmp").write_text("id,name\n9,x\n")
    source = open_glob(tmp_path, "data/*")
    assert [f.name for f in source.files] == [os.path.join("data", "a.csv")]
    source.close()


@pytest.mark.parametrize("path, problem", [
    ("gs://bucket/a.csv", "gs:// paths are not supported"),
    ("s3://bucket", "names no bucket or no key"),
])
def test_paths_of_other_stores_and_without_a_key_are_refused(path, problem):
    with pytest.raises(ValueError, match=problem):
        csv_connector.Config(type="csv", path=path)


@pytest.mark.parametrize("path, incremental, problem", [
    ("data/a.csv", {}, "'data/a.csv' is one file; write a glob"),
    ("data/*.csv", {"cursor": "updated_at"}, "it takes no cursor"),
])
def test_incremental_on_a_file_source_needs_a_glob_and_no_cursor(path, incremental, problem):
    with pytest.raises(ValueError, match=problem):
        csv_connector.Config(type="csv", path=path, incremental=incremental)


def test_a_file_whose_name_holds_brackets_is_read_as_that_file(tmp_path):
    write_csv(tmp_path, "data[1].csv", 1, 2)
    write_csv(tmp_path, "data1.csv", 8, 9)
    source = csv_connector.open_source(csv_connector.Config(type="csv", path="data[1].csv"), str(tmp_path))
    assert not isinstance(source, MultiFileSource)
    assert ids(source) == [1, 2]
    source.close()


def test_resuming_a_partition_that_never_committed_after_a_file_was_added_is_refused(tmp_path):
    for n in range(4):
        write_csv(tmp_path, f"data/{n}.csv", n * 10 + 1, n * 10 + 10)
    source = open_glob(tmp_path)
    second = next(s for s in source.partitions(2) if s.partition == "2")  # file 2; nothing of it committed yet
    source.close()
    write_csv(tmp_path, "data/1b.csv", 100, 105)  # sorts before 2.csv: the run would read 1b and 2 instead
    again = open_glob(tmp_path)
    with pytest.raises(SourceError) as caught:
        ids(again, second)
    again.close()
    assert "data/*.csv no longer finds the files" in str(caught.value)
    assert f"a file before {os.path.join('data', '2.csv')}" in str(caught.value)


def test_resuming_after_a_later_file_was_removed_is_refused_naming_the_counts(tmp_path):
    for n in range(3):
        write_csv(tmp_path, f"data/{n}.csv", n * 10 + 1, n * 10 + 10)
    source = open_glob(tmp_path)
    first = next(s for s in source.partitions(2) if s.partition == "0")
    source.close()
    os.remove(tmp_path / "data" / "2.csv")
    again = open_glob(tmp_path)
    with pytest.raises(SourceError, match=r"found 3 files and finds 2 now: a file was added or removed"):
        ids(again, first)
    again.close()


def test_rows_of_a_file_already_read_past_can_still_be_quoted_and_parsed_again(tmp_path):
    from portl.connectors.base import VerbatimRequest

    write_csv(tmp_path, "data/a.csv", 1, 3)
    write_csv(tmp_path, "data/b.csv", 4, 6)
    source = open_glob(tmp_path)
    chunks = list(source.read(100, None))  # read ahead past a.csv: its source is released
    assert source.raw_rows(chunks[0], [0, 2]) == {0: "1,n1", 2: "3,n3"}
    verbatim = list(source.read_verbatim(100, None, VerbatimRequest()))
    assert [r["id"] for r in source.parse_verbatim(verbatim[0]).data.to_pylist()] == ["1", "2", "3"]
    source.close()


def test_a_run_of_whole_files_from_an_earlier_version_resumes_as_it_was_cut(tmp_path):
    for n in range(4):
        write_csv(tmp_path, f"data/{n}.csv", n * 10 + 1, n * 10 + 10)
    source = open_glob(tmp_path)
    chunks = list(source.read(4, source.partitions(1)[0]))  # 4, 4 and 2 rows of each file
    inside = chunks[6].checkpoint.position  # in 2.csv after its first 4 rows
    assert (inside["name"], inside["at"]["position"]["record"]) == (os.path.join("data", "2.csv"), 5)
    inside = inside["at"]
    source.close()
    # The second of two runs of files (2.csv and 3.csv) as partitions were cut before, standing in 2.csv.
    earlier = Checkpoint("1", {"file": 2, "end_file": 4, "at": inside, "name": os.path.join("data", "2.csv"),
                               "files": 4}, 4)
    again = open_glob(tmp_path)
    assert ids(again, earlier, batch=4) == list(range(25, 41))
    again.close()
