"""Partitions of a glob of files for a parallel load: one per file, large plain files cut into
byte ranges, compressed files whole, largest first; and the line per file a run's commits make."""

from __future__ import annotations

import gzip
import os

import pytest

from portl.connectors import csv as csv_connector
from portl.connectors.base import Checkpoint
from portl.connectors.fileset_partitions import SPLIT_BYTES, check_disjoint, cut_files, split_bytes
from portl.connectors.fileset_progress import FileProgress
from portl.connectors.multifile import FileUnreadable, MultiFileSource
from portl.errors import ConfigError, ResumeError


def byte_ranges(sizes: list[int]):
    """A stand-in for a source's own cutting: ``count`` equal byte ranges of file ``index``."""
    asked: list[tuple[int, int]] = []

    def ranges(index: int, count: int) -> list[Checkpoint]:
        asked.append((index, count))
        size = sizes[index]
        bounds = [size * k // count for k in range(count)] + [None]
        return [Checkpoint(str(k), {"offset": bounds[k], "end": bounds[k + 1]}) for k in range(count)]

    return ranges, asked


def test_each_file_is_a_partition_named_after_its_place_largest_first():
    sizes = [30, 90, 10, 60]
    ranges, asked = byte_ranges(sizes)
    parts = cut_files(sizes, ranges, threshold=1000)
    assert [(p.name, p.file, p.size, p.inner) for p in parts] == \
        [("1", 1, 90, None), ("3", 3, 60, None), ("0", 0, 30, None), ("2", 2, 10, None)]
    assert asked == []  # no file is large enough to be cut


def test_a_large_file_is_cut_into_ranges_of_about_the_threshold():
    sizes = [100, 1000, 50, 50]  # average 300: file 1 is above the threshold and holds 3 ranges of 300
    ranges, asked = byte_ranges(sizes)
    parts = cut_files(sizes, ranges, threshold=200)
    assert asked == [(1, 3)]  # 1000 bytes in pieces of max(200, 300)
    assert [(p.name, p.size) for p in parts] == [("1.2", 334), ("1.0", 333), ("1.1", 333), ("0", 100), ("2", 50), ("3", 50)]
    assert [p.inner.position for p in parts[:3]] == [
        {"offset": 666, "end": None}, {"offset": 0, "end": 333}, {"offset": 333, "end": 666}]


def test_two_large_files_among_small_ones_are_both_cut():
    sizes = [1000, 1000, 30, 10]  # average 510: each large file holds two ranges of it
    ranges, asked = byte_ranges(sizes)
    parts = cut_files(sizes, ranges, threshold=100)
    assert asked == [(0, 2), (1, 2)]
    assert [p.name for p in parts] == ["0.0", "0.1", "1.0", "1.1", "2", "3"]


def test_a_file_above_the_threshold_but_about_the_average_stays_whole():
    sizes = [300, 400, 350]
    ranges, asked = byte_ranges(sizes)
    assert [p.name for p in cut_files(sizes, ranges, threshold=200)] == ["1", "2", "0"]
    assert asked == []


def test_a_file_its_source_cannot_cut_stays_whole():
    parts = cut_files([5000, 10, 10], lambda index, count: [Checkpoint("0", {"offset": 0, "end": None})], threshold=100)
    assert [(p.name, p.inner) for p in parts] == [("0", None), ("1", None), ("2", None)]


def test_the_threshold_comes_from_the_environment_and_must_be_a_number():
    assert split_bytes({}) == SPLIT_BYTES == 256 << 20
    assert split_bytes({"PORTL_SPLIT_BYTES": "64_000_000"}) == 64_000_000
    with pytest.raises(ConfigError, match=r"PORTL_SPLIT_BYTES='lots' is not a number of bytes: .*e\.g\. 268435456"):
        split_bytes({"PORTL_SPLIT_BYTES": "lots"})


def write_rows(path, first: int, last: int, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "id,amount\n" + "".join(f"{i},{i * 7}\n" for i in range(first, last + 1))
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Two plain files of about 370 kB, a gzip file of about 190 kB and three small ones (the
    average file is about 160 kB); files above 100 kB holding two ranges of that average are cut."""
    monkeypatch.setenv("PORTL_SPLIT_BYTES", "100000")
    write_rows(tmp_path / "data" / "a.csv", 1, 30_000)
    write_rows(tmp_path / "data" / "b.csv", 30_001, 60_000)
    write_rows(tmp_path / "data" / "c.csv.gz", 60_001, 100_000, compress=True)
    for n, name in enumerate("def"):
        write_rows(tmp_path / "data" / f"{name}.csv", 200_001 + n * 100, 200_100 + n * 100)
    source = csv_connector.open_source(csv_connector.Config(type="csv", path="data/*.csv*"), str(tmp_path))
    assert isinstance(source, MultiFileSource)
    yield source
    source.close()


def read_ids(source, start, batch: int = 1000) -> list[int]:
    return [int(i) for chunk in source.read(batch, start) for i in chunk.data.column("id").to_pylist()]


def test_large_plain_files_are_read_in_ranges_and_every_row_comes_once(files):
    starts = files.partitions(2)
    names = [s.partition for s in starts]
    assert sorted(names) == ["0.0", "0.1", "1.0", "1.1", "2", "3", "4", "5"], names
    assert names[-3:] == ["3", "4", "5"]  # the small files last
    seen = [i for s in starts for i in read_ids(files, s)]
    assert sorted(seen) == list(range(1, 100_001)) + list(range(200_001, 200_301))


def test_ranges_start_on_line_starts_and_cover_the_file(files, tmp_path):
    data = (tmp_path / "data" / "a.csv").read_bytes()
    ranges = sorted((s.position["at"]["position"] for s in files.partitions(2) if s.partition.startswith("0.")),
                    key=lambda p: p["offset"])
    assert ranges[0]["offset"] == len(b"id,amount\n") and ranges[-1]["end"] is None
    for before, after in zip(ranges, ranges[1:]):
        assert before["end"] == after["offset"] and data[after["offset"] - 1:after["offset"]] == b"\n"
        assert after["line"] == data[:after["offset"]].count(b"\n") + 1  # line numbers of rejects stay right


def test_a_compressed_file_stays_whole_however_large(files):
    gz = [s for s in files.partitions(4) if s.position["name"].endswith(".gz")]
    assert [(s.partition, s.position["at"]) for s in gz] == [("2", None)]


def test_progress_bytes_of_a_compressed_file_add_up_to_its_stored_size(files, tmp_path):
    start = next(s for s in files.partitions(2) if s.partition == "2")
    read = sum(chunk.size_bytes for chunk in files.read(5000, start))
    stored = os.path.getsize(tmp_path / "data" / "c.csv.gz")
    assert stored * 0.999 < read <= stored  # the header's bytes are not in a chunk
    assert files.estimate().bytes == sum(f.size for f in files.files)


def test_a_damaged_gzip_file_is_named_with_the_compressed_byte_where_it_broke(files, tmp_path):
    path = tmp_path / "data" / "c.csv.gz"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a truncated member
    start = next(s for s in files.partitions(2) if s.partition == "2")
    with pytest.raises(FileUnreadable) as caught:
        read_ids(files, start)
    message = str(caught.value)
    assert caught.value.file == os.path.join("data", "c.csv.gz") and caught.value.confined
    assert f"cannot read gzip file {os.path.join('data', 'c.csv.gz')} at compressed byte {len(whole) // 2:,} " \
           f"of {len(whole) // 2:,}" in message
    assert "Compressed file ended before the end-of-stream marker was reached" in message
    assert "continue the run with --resume" in message


def test_a_file_is_loaded_once_every_range_of_it_has_committed_its_end():
    progress = FileProgress()
    starts = [Checkpoint("0.0", {"file": 0, "end_file": 1, "at": {"offset": 9}}),
              Checkpoint("0.1", {"file": 0, "end_file": 1, "at": {"offset": 500}}),
              Checkpoint("1", {"file": 1, "end_file": 2, "at": None})]
    progress.expect(starts, ["a.csv", "b.csv"])
    progress.began("0.0", 0, 0)
    progress.began("0.1", 0, 0)
    progress.read(0, 30)
    progress.read(0, 20)
    assert progress.committed(Checkpoint("0.1", {"file": 0, "end_file": 1}, 20, done=True)) == []
    assert progress.committed(Checkpoint("1", {"file": 1, "end_file": 2}, 5)) == []
    news = progress.committed(Checkpoint("0.0", {"file": 0, "end_file": 1}, 30, done=True))
    assert [(event, d["file"], d["rows"]) for event, d in news] == [("file_finished", "a.csv", 50)]
    assert progress.committed(Checkpoint("0.0", {"file": 0, "end_file": 1}, 30, done=True)) == []  # said once


def test_one_partition_walking_the_files_finishes_each_as_it_moves_on():
    progress = FileProgress()
    progress.expect([Checkpoint("0", {"file": 0, "end_file": 3, "at": None})], ["a.csv", "b.csv", "c.csv"])
    for index, rows in enumerate((3, 4, 5)):
        progress.began("0", index, 0)
        progress.read(index, rows)
    assert progress.committed(Checkpoint("0", {"file": 0, "end_file": 3}, 3)) == []
    moved = progress.committed(Checkpoint("0", {"file": 2, "end_file": 3}, 7))  # a.csv and b.csv are behind it
    assert [(d["file"], d["rows"]) for _, d in moved] == [("a.csv", 3), ("b.csv", 4)]
    done = progress.committed(Checkpoint("0", {"file": 2, "end_file": 3}, 12, done=True))
    assert [(d["file"], d["rows"]) for _, d in done] == [("c.csv", 5)]


def test_a_resumed_file_counts_the_rows_committed_before_apart_once_whatever_the_read_retries():
    progress = FileProgress()
    progress.expect([Checkpoint("0", {"file": 0, "end_file": 1, "at": {"offset": 100}}, 40)], ["a.csv"])
    progress.began("0", 0, 40)
    progress.read(0, 6)
    progress.began("0", 0, 46)  # the read opened again after a dropped connection, at a checkpoint of this run
    progress.read(0, 4)
    (news,) = progress.committed(Checkpoint("0", {"file": 0, "end_file": 1}, 50, done=True))
    assert (news[1]["rows"], news[1]["earlier_rows"]) == (10, 40)


def at(partition: str, file: int, end_file: int, inner: dict | None, rows: int = 0, done: bool = False) -> Checkpoint:
    """A glob's checkpoint: standing in ``file``, at ``inner`` (a position of that file's source)."""
    place = None if inner is None else {"partition": "0", "position": inner, "rows": 0, "done": False}
    return Checkpoint(partition, {"file": file, "end_file": end_file, "at": place}, rows, done)


def test_ranges_that_do_not_meet_and_finished_partitions_pass_the_check():
    check_disjoint([at("0.0", 0, 1, {"offset": 10, "end": 500}), at("0.1", 0, 1, {"offset": 500, "end": None}),
                    at("1", 1, 2, None), at("2", 1, 3, None, done=True)], ["a.csv", "b.csv", "c.csv"])


def test_a_whole_file_partition_beside_a_range_of_the_same_file_is_refused():
    # committed by a run whose file 0 was one partition, and cut again into ranges on resume
    starts = [at("0", 0, 1, {"offset": 4000, "end": None}, rows=200), at("0.1", 0, 1, {"offset": 9000, "end": None})]
    with pytest.raises(ResumeError, match=r"partitions 0 and 0\.1 of the run being resumed would both read a\.csv"):
        check_disjoint(starts, ["a.csv", "b.csv"])


def test_a_run_of_files_from_an_earlier_version_beside_a_file_partition_is_refused():
    starts = [at("0", 0, 2, {"offset": 300, "end": None}, rows=10), at("1", 1, 2, None)]
    with pytest.raises(ResumeError, match="would both read b.csv.*PORTL_SPLIT_BYTES"):
        check_disjoint(starts, ["a.csv", "b.csv"])


def test_parts_that_are_not_byte_ranges_are_left_to_their_source():
    check_disjoint([at("0", 0, 1, {"row_group": 0}), at("1", 0, 1, {"row_group": 3})], ["a.parquet"])


def test_partitions_read_at_once_share_a_file_and_close_it_when_the_last_is_done(files):
    from concurrent.futures import ThreadPoolExecutor

    starts = files.partitions(4)
    with ThreadPoolExecutor(4) as pool:
        seen = [i for got in pool.map(lambda s: read_ids(files, s, batch=700), starts) for i in got]
    assert sorted(seen) == list(range(1, 100_001)) + list(range(200_001, 200_301))
    assert list(files._open_sources) in ([], [0])  # the first file's source stays open for the schema
