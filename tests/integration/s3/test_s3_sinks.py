"""Writing objects to S3 (moto's server): multipart uploads of several parts, nothing visible
until a run completes, exact resume from the sidecar, replace, refused append, gzip, Parquet."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

import portl
from portl.connectors import objectsink
from portl.errors import TerminalError
from tests.integration.s3.helpers import csv_ids, csv_text, people, run_job, write_job

MIB = 1 << 20


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of 5 MiB, the least S3 (and moto) takes, so a few MiB of rows make several parts."""
    monkeypatch.setattr(objectsink, "PART_BYTES", 5 * MIB)


def wide_people(tmp_path, count: int) -> None:
    """``count`` rows of about 100 bytes each, in in.csv."""
    rows = [(i, f"name-{i:07d}-" + "x" * 60, f"city-{i % 13}") for i in range(1, count + 1)]
    (tmp_path / "in.csv").write_text(csv_text(rows))


def test_a_large_object_is_written_in_several_parts_and_appears_whole(tmp_path, s3_bucket, small_parts):
    wide_people(tmp_path, 160_000)  # ~15 MiB: parts of 5 MiB or more, and a last one
    job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: csv, path: '{s3_bucket.url('out/people.csv')}'}}",
                    body="batch: {size: 20000}\n")
    report = run_job(job, tmp_path / "state")
    assert report.counts.inserted == 160_000
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="out/people.csv")
    assert int(head["ETag"].strip('"').rsplit("-", 1)[1]) >= 3  # a multipart object's ETag counts its parts
    assert csv_ids(s3_bucket.get("out/people.csv")) == list(range(1, 160_001))
    assert s3_bucket.keys() == ["out/people.csv"]  # no sidecar, no tail left
    assert s3_bucket.uploads() == []


def test_a_killed_run_leaves_no_object_and_resume_loads_each_row_once(tmp_path, s3_bucket, small_parts, crash_hook):
    wide_people(tmp_path, 120_000)
    job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: csv, path: '{s3_bucket.url('people.csv')}'}}",
                    body="batch: {size: 30000}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(job, tmp_path / "state")
    crash_hook.disarm()
    assert "people.csv" not in s3_bucket.keys()  # the upload is invisible until completed
    side = json.loads(s3_bucket.get("people.csv.portl-checkpoint.json"))
    assert [p["PartNumber"] for p in side["parts"]] == [1]  # batches 1 and 2 (~6 MiB) made one part
    assert 30_000 < side["partitions"]["0"]["checkpoint"]["rows"] < 120_000  # where that part ends
    report = run_job(job, tmp_path / "state", resume=True)
    assert report.resumed and (report.counts.read, report.counts.inserted) == (120_000, 120_000)
    assert csv_ids(s3_bucket.get("people.csv")) == list(range(1, 120_001))
    assert s3_bucket.keys() == ["people.csv"] and s3_bucket.uploads() == []


def test_a_crash_before_the_first_part_resumes_from_the_committed_tail(tmp_path, s3_bucket, crash_hook):
    (tmp_path / "in.csv").write_text(csv_text(people(1, 1000)))
    job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: csv, path: '{s3_bucket.url('p.csv.gz')}'}}",
                    body="batch: {size: 40}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(job, tmp_path / "state")
    crash_hook.disarm()
    assert sorted(s3_bucket.keys()) == ["p.csv.gz.0.portl-tail", "p.csv.gz.portl-checkpoint.json"]
    report = run_job(job, tmp_path / "state", resume=True)
    assert report.resumed and report.counts.inserted == 1000
    assert csv_ids(s3_bucket.get("p.csv.gz")) == list(range(1, 1001))
    assert s3_bucket.keys() == ["p.csv.gz"]


def test_replace_swaps_the_object_and_append_to_an_existing_one_is_refused(tmp_path, s3_bucket):
    s3_bucket.put("people.csv", csv_text(people(1, 5)))
    (tmp_path / "in.csv").write_text(csv_text(people(7, 8)))
    target = f"{{type: csv, path: '{s3_bucket.url('people.csv')}'}}"
    append = write_job(tmp_path, "{type: csv, path: in.csv}", target, body="mode: append\n", name="add")
    with pytest.raises(portl.ConfigError, match=r"CSV object .*people\.csv cannot append; it supports: replace"):
        run_job(append, tmp_path / "state")
    unsaid = write_job(tmp_path, "{type: csv, path: in.csv}", target, name="unsaid")
    with pytest.raises(portl.ConfigError, match=r"people\.csv \(\d+ bytes\) already exists .*set mode: replace to write it "
                                                r"anew \(CSV object .* cannot be appended to\)"):
        run_job(unsaid, tmp_path / "state")
    replace = write_job(tmp_path, "{type: csv, path: in.csv}", target, body="mode: replace\n")
    assert run_job(replace, tmp_path / "state").counts.inserted == 2
    assert csv_ids(s3_bucket.get("people.csv")) == [7, 8]


def test_jsonl_and_parquet_objects_are_written(tmp_path, s3_bucket):
    (tmp_path / "in.csv").write_text(csv_text(people(1, 300)))
    for kind, key in (("jsonl", "out.jsonl"), ("parquet", "out.parquet")):
        job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: {kind}, path: '{s3_bucket.url(key)}'}}",
                        body="mapping: {columns: {id: {type: int}, name: {}}}\nbatch: {size: 100}\n", name=f"to_{kind}")
        assert run_job(job, tmp_path / "state").counts.inserted == 300
    lines = s3_bucket.get("out.jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(1, 301))
    table = pq.read_table(io.BytesIO(s3_bucket.get("out.parquet")))
    assert table.column("id").to_pylist() == list(range(1, 301))
    assert sorted(s3_bucket.keys()) == ["out.jsonl", "out.parquet"]


def test_the_plan_says_how_the_object_is_written(tmp_path, s3_bucket):
    (tmp_path / "in.csv").write_text(csv_text(people(1, 3)))
    job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: csv, path: '{s3_bucket.url('o.csv')}'}}")
    the_plan = portl.plan(portl.load_job(job))
    try:
        target = the_plan.target
        assert "multipart upload" in target.ddl[0] and "o.csv.portl-checkpoint.json" in target.per_batch[0]
    finally:
        the_plan.close()
    assert s3_bucket.keys() == []  # planning writes nothing


def test_one_transaction_for_the_job_streams_its_parts_and_a_failure_keeps_the_old_object(
        tmp_path, s3_bucket, small_parts, crash_hook):
    s3_bucket.put("t.csv", csv_text(people(1, 3)))
    wide_people(tmp_path, 120_000)
    target = f"{{type: csv, path: '{s3_bucket.url('t.csv')}'}}"
    job = write_job(tmp_path, "{type: csv, path: in.csv}", target,
                    body="transaction: job\nmode: replace\nbatch: {size: 30000}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(job, tmp_path / "state")
    crash_hook.disarm()
    assert csv_ids(s3_bucket.get("t.csv")) == [1, 2, 3]
    assert run_job(job, tmp_path / "state").counts.inserted == 120_000
    assert csv_ids(s3_bucket.get("t.csv")) == list(range(1, 120_001))
    assert s3_bucket.keys() == ["t.csv"] and s3_bucket.uploads() == []


def test_writing_to_a_missing_bucket_names_it(tmp_path, s3_bucket):
    (tmp_path / "in.csv").write_text(csv_text(people(1, 3)))
    job = write_job(tmp_path, "{type: csv, path: in.csv}", "{type: csv, path: 's3://portl-no-such-bucket/o.csv'}")
    with pytest.raises(TerminalError, match="cannot write s3://portl-no-such-bucket/o.csv: bucket 'portl-no-such-bucket' does not exist"):
        run_job(job, tmp_path / "state")


def test_a_failed_delete_of_the_old_tail_after_a_commit_neither_fails_nor_undoes_it(tmp_path, s3_bucket, small_parts):
    from botocore.exceptions import ClientError

    from portl.connectors import csv as csv_connector
    from portl.connectors.objectstore import store_for

    wide_people(tmp_path, 120_000)
    url = s3_bucket.url("people.csv")
    job = write_job(tmp_path, "{type: csv, path: in.csv}", f"{{type: csv, path: '{url}'}}", body="batch: {size: 30000}\n")
    refused = []

    def refuse_the_first_tail_delete(params, **_):  # S3 answers the first delete of a tail with an error
        if params["Key"].endswith(".portl-tail") and not refused:
            refused.append(params["Key"])
            raise ClientError({"Error": {"Code": "InternalError", "Message": "try again"}}, "DeleteObject")

    events = store_for(csv_connector.Config(type="csv", path=url)).client.meta.events
    events.register("before-parameter-build.s3.DeleteObject", refuse_the_first_tail_delete)
    try:
        report = run_job(job, tmp_path / "state")
    finally:
        events.unregister("before-parameter-build.s3.DeleteObject", refuse_the_first_tail_delete)
    assert refused == ["people.csv.0.portl-tail"]
    assert (report.counts.read, report.counts.inserted) == (120_000, 120_000)
    assert csv_ids(s3_bucket.get("people.csv")) == list(range(1, 120_001))
    assert s3_bucket.keys() == ["people.csv"] and s3_bucket.uploads() == []  # the tail left over is gone too
