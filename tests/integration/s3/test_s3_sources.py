"""Reading objects from S3 (moto's server, through boto3's own client): one object, globs of
many (gzip, JSON lines, Parquet), local globs, byte-range partitions, resume, and errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import portl
from portl.connectors import registry
from portl.errors import ConfigError, SourceError
from tests.integration.s3.helpers import csv_text, gz, people, run_job, sqlite_ids, write_job


def test_one_csv_object_loads_every_row(tmp_path, s3_bucket):
    s3_bucket.put("in/people.csv", csv_text(people(1, 500)))
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/people.csv')}'}}")
    report = run_job(job, tmp_path / "state")
    assert (report.counts.read, report.counts.inserted) == (500, 500)
    assert sqlite_ids(tmp_path) == list(range(1, 501))


def test_a_glob_reads_every_matching_object_across_prefixes_in_key_order(tmp_path, s3_bucket):
    s3_bucket.put("logs/2024/02/b.csv.gz", gz(csv_text(people(11, 20))))
    s3_bucket.put("logs/2024/01/a.csv.gz", gz(csv_text(people(1, 10))))
    s3_bucket.put("logs/2024/01/notes.txt", "not a match")
    s3_bucket.put("logs/c.csv.gz", gz(csv_text(people(21, 25))))
    s3_bucket.put("other/d.csv.gz", gz(csv_text(people(100, 101))))
    source = _open(tmp_path, f"{{type: csv, path: '{s3_bucket.url('logs/**/*.csv.gz')}'}}")
    try:
        assert [f.name.rsplit("/", 2)[-2:] for f in source.files] == [["01", "a.csv.gz"], ["02", "b.csv.gz"],
                                                                       ["logs", "c.csv.gz"]]
        ids = [int(r["id"]) for chunk in source.read(4, None) for r in chunk.data.to_pylist()]
    finally:
        source.close()
    assert ids == list(range(1, 26))


def test_jsonl_objects_and_parquet_objects_load_through_a_glob(tmp_path, s3_bucket):
    for n, first in enumerate((1, 4)):
        lines = "".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(first, first + 3))
        s3_bucket.put(f"j/part-{n}.jsonl", lines)
        table = pa.table({"id": list(range(first, first + 3)), "name": [f"n{i}" for i in range(first, first + 3)]})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        s3_bucket.put(f"p/part-{n}.parquet", sink.getvalue())
    for kind, key in (("jsonl", "j/*.jsonl"), ("parquet", "p/part-?.parquet")):
        job = write_job(tmp_path, f"{{type: {kind}, path: '{s3_bucket.url(key)}'}}", name=f"load_{kind}",
                        destination=f"{{type: sqlite, path: out.db, table: {kind}}}")
        assert run_job(job, tmp_path / "state").counts.inserted == 6
        assert sqlite_ids(tmp_path, kind) == [1, 2, 3, 4, 5, 6]


def test_a_glob_of_local_files_reads_them_as_one_source(tmp_path):
    (tmp_path / "data" / "more").mkdir(parents=True)
    (tmp_path / "data" / "b.csv").write_text(csv_text(people(4, 6)))
    (tmp_path / "data" / "a.csv").write_text(csv_text(people(1, 3)))
    (tmp_path / "data" / "more" / "c.csv").write_text(csv_text(people(7, 9)))
    job = write_job(tmp_path, "{type: csv, path: 'data/**/*.csv'}")
    assert run_job(job, tmp_path / "state").counts.inserted == 9
    assert sqlite_ids(tmp_path) == list(range(1, 10))


def test_rejects_name_the_object_and_its_line(tmp_path, s3_bucket):
    s3_bucket.put("r/a.csv", csv_text(people(1, 3)))
    s3_bucket.put("r/b.csv", "id,name,city\n4,ok,x\n5,too,many,fields\n")
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('r/*.csv')}'}}")
    report = run_job(job, tmp_path / "state")
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (5, 4, 1)
    rejects = (tmp_path / "people.rejects.csv").read_text()
    assert s3_bucket.url("r/b.csv") in rejects and ",3," in rejects


def test_a_file_whose_header_differs_is_an_error_naming_it(tmp_path, s3_bucket):
    s3_bucket.put("h/a.csv", csv_text(people(1, 3)))
    s3_bucket.put("h/b.csv", "id,full_name,city\n4,x,y\n")
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('h/*.csv')}'}}")
    with pytest.raises(SourceError, match=r"h/b\.csv has the columns id, full_name, city, but .*h/a\.csv has id, name, city"):
        run_job(job, tmp_path / "state")


def test_two_workers_read_byte_ranges_of_one_object(tmp_path, s3_bucket):
    s3_bucket.put("big.csv", csv_text(people(1, 20000)))
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('big.csv')}'}}",
                    body="parallel: {workers: 2}\nbatch: {size: 1000}\n")
    the_plan = portl.plan(portl.load_job(job))
    starts = the_plan.source.partitions(2)
    the_plan.close()
    assert len(starts) == 2 and starts[1].position["offset"] > 0 and starts[1].position["line"] > 2
    report = run_job(job, tmp_path / "state")
    assert report.counts.inserted == 20000
    assert sqlite_ids(tmp_path) == list(range(1, 20001))


def test_a_crash_in_the_second_object_resumes_inside_it(tmp_path, s3_bucket, crash_hook):
    s3_bucket.put("c/1.csv", csv_text(people(1, 30)))
    s3_bucket.put("c/2.csv", csv_text(people(31, 300)))
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('c/*.csv')}'}}",
                    body="batch: {size: 40}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(job, tmp_path / "state")
    crash_hook.disarm()
    assert sqlite_ids(tmp_path) == list(range(1, 71))  # a batch holds rows of one object: 1-30, then 31-70
    report = run_job(job, tmp_path / "state", resume=True)
    assert report.resumed and report.counts.read == 300
    assert sqlite_ids(tmp_path) == list(range(1, 301))


def test_a_missing_bucket_is_named(tmp_path, s3_bucket):
    job = write_job(tmp_path, "{type: csv, path: 's3://portl-no-such-bucket/in.csv'}")
    with pytest.raises(SourceError, match="bucket 'portl-no-such-bucket' does not exist"):
        run_job(job, tmp_path / "state")


def test_a_glob_matching_nothing_names_the_pattern(tmp_path, s3_bucket):
    s3_bucket.put("in/a.csv", csv_text(people(1, 2)))
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/*.tsv')}'}}")
    with pytest.raises(SourceError, match=rf"no object matches {s3_bucket.url('in/')}\*\.tsv"):
        run_job(job, tmp_path / "state")


def test_a_missing_object_names_bucket_and_key(tmp_path, s3_bucket):
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/none.csv')}'}}")
    with pytest.raises(SourceError, match=rf"no such object \(bucket '{s3_bucket.name}', key 'in/none.csv'\)"):
        run_job(job, tmp_path / "state")


def test_wrong_credentials_are_refused_with_a_clear_error_and_exit_code(tmp_path, s3_bucket, monkeypatch):
    import moto.settings

    s3_bucket.put("in/a.csv", csv_text(people(1, 2)))
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server checks keys now
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/a.csv')}'}}")
    result = subprocess.run([sys.executable, "-m", "portl.cli.app", "run", job, "--state-dir", str(tmp_path / "state")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "S3 refused the credentials (InvalidAccessKeyId)" in result.stderr + result.stdout
    assert s3_bucket.url("in/a.csv") in result.stderr + result.stdout


def test_store_options_on_a_local_path_are_refused(tmp_path):
    (tmp_path / "in.csv").write_text(csv_text(people(1, 2)))
    job = write_job(tmp_path, "{type: csv, path: in.csv, region: eu-west-1}")
    with pytest.raises(ConfigError, match="region only apply to s3:// paths"):
        portl.load_job(job)


def test_keys_given_in_the_job_never_show_in_the_plan(tmp_path, s3_bucket):
    s3_bucket.put("in/a.csv", csv_text(people(1, 2)))
    source = (f"{{type: csv, path: '{s3_bucket.url('in/a.csv')}', aws_access_key_id: portl-test, "
              "aws_secret_access_key: portl-test-secret}")
    job = write_job(tmp_path, source)
    loaded = portl.load_job(job)
    assert "portl-test-secret" not in repr(loaded.job.source)
    the_plan = portl.plan(loaded)
    try:
        shown = json.dumps(the_plan.resolved_config(), default=str)
    finally:
        the_plan.close()
    assert "portl-test-secret" not in shown and "aws_secret_access_key" in shown
    assert run_job(job, tmp_path / "state").counts.inserted == 2


def _open(tmp_path, source_yaml: str):
    job = write_job(tmp_path, source_yaml)
    return registry.open_source(portl.load_job(job).job.source, str(tmp_path))


def test_an_incremental_glob_of_objects_reads_only_new_and_rewritten_objects(tmp_path, s3_bucket):
    s3_bucket.put("inc/a.csv", csv_text(people(1, 2)))
    s3_bucket.put("inc/b.csv", csv_text(people(3, 4)))
    first = _open(tmp_path, f"{{type: csv, path: '{s3_bucket.url('inc/*.csv')}'}}")
    previous = first.incremental_mark(None)
    first.close()
    s3_bucket.put("inc/b.csv", csv_text(people(3, 4)).replace("name-", "NAME-"))  # same size, new ETag
    s3_bucket.put("inc/c.csv", csv_text(people(5, 6)))
    source = _open(tmp_path, f"{{type: csv, path: '{s3_bucket.url('inc/*.csv')}'}}")
    mark = source.incremental_mark(previous)
    source.restrict(previous, mark)
    try:
        rows = [r for chunk in source.read(100, None) for r in chunk.data.to_pylist()]
    finally:
        source.close()
    assert [(r["id"], r["name"][:4]) for r in rows] == [("3", "NAME"), ("4", "NAME"), ("5", "name"), ("6", "name")]
    assert mark["files"][s3_bucket.url("inc/a.csv")] == previous["files"][s3_bucket.url("inc/a.csv")]


def test_without_boto3_an_s3_path_says_which_extra_to_install(tmp_path):
    shadow = tmp_path / "shadow" / "boto3"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("boto3 is not installed here (test stand-in)")\n')
    job = write_job(tmp_path, "{type: csv, path: 's3://some-bucket/in.csv'}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-m", "portl.cli.app", "plan", job], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 1
    assert "s3:// paths need boto3: pip install 'portl[aws]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_utf16_object_and_a_parquet_object_read_by_two_workers(tmp_path, s3_bucket):
    s3_bucket.put("u16.csv", csv_text(people(1, 300)).encode("utf-16"))
    table = pa.table({"id": list(range(1, 1001)), "name": [f"n{i}" for i in range(1, 1001)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=250)
    s3_bucket.put("rg.parquet", sink.getvalue())
    utf16 = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('u16.csv')}', encoding: utf-16}}", name="u16",
                      destination="{type: sqlite, path: out.db, table: u16}")
    assert run_job(utf16, tmp_path / "state").counts.inserted == 300
    assert sqlite_ids(tmp_path, "u16") == list(range(1, 301))
    groups = write_job(tmp_path, f"{{type: parquet, path: '{s3_bucket.url('rg.parquet')}'}}", name="rg",
                       destination="{type: sqlite, path: out.db, table: rg}", body="parallel: {workers: 2}\n")
    the_plan = portl.plan(portl.load_job(groups))
    assert len(the_plan.source.partitions(2)) == 2
    the_plan.close()
    assert run_job(groups, tmp_path / "state").counts.inserted == 1000
    assert sqlite_ids(tmp_path, "rg") == list(range(1, 1001))


def test_an_incremental_job_over_a_glob_of_objects_loads_only_the_new_ones(tmp_path, s3_bucket):
    s3_bucket.put("land/a.csv", csv_text(people(1, 3)))
    s3_bucket.put("land/b.csv", csv_text(people(4, 5)))
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('land/*.csv')}', incremental: {{}}}}")
    assert run_job(job, tmp_path / "state").counts.inserted == 5
    s3_bucket.put("land/c.csv", csv_text(people(6, 7)))
    the_plan = portl.plan(portl.load_job(job))
    lines = the_plan.incremental.lines
    the_plan.close()
    assert lines[0].startswith("1 new file, 0 changed files of 3 files") and "2 files loaded before" in lines[0]
    report = run_job(job, tmp_path / "state")
    assert (report.counts.read, report.counts.inserted) == (2, 2)
    assert sqlite_ids(tmp_path) == list(range(1, 8))
    assert run_job(job, tmp_path / "state").counts.read == 0  # nothing new


def test_two_workers_over_a_glob_resume_each_run_of_files_where_it_stopped(tmp_path, crash_hook):
    (tmp_path / "data").mkdir()
    for n in range(4):
        (tmp_path / "data" / f"part-{n}.csv").write_text(csv_text(people(n * 5000 + 1, n * 5000 + 5000)))
    job = write_job(tmp_path, "{type: csv, path: 'data/part-*.csv'}",
                    body="parallel: {workers: 2}\nbatch: {size: 1000}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(job, tmp_path / "state")
    crash_hook.disarm()
    assert 0 < len(sqlite_ids(tmp_path)) < 20000
    report = run_job(job, tmp_path / "state", resume=True)
    assert report.resumed and report.counts.read == 20000
    assert sqlite_ids(tmp_path) == list(range(1, 20001))


def test_credentials_come_from_a_named_profile_of_the_shared_files(tmp_path, s3_bucket, monkeypatch):
    s3_bucket.put("in/a.csv", csv_text(people(1, 2)))
    (tmp_path / "credentials").write_text("[loader]\naws_access_key_id = portl-profile\naws_secret_access_key = s\n")
    (tmp_path / "config").write_text("[profile loader]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/a.csv')}', profile: loader}}")
    assert run_job(job, tmp_path / "state").counts.inserted == 2
    missing = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/a.csv')}', profile: nobody}}", name="nobody")
    with pytest.raises(ConfigError, match="nobody"):
        run_job(missing, tmp_path / "state")


def test_a_user_without_permission_is_told_access_is_denied(tmp_path, s3_bucket, monkeypatch):
    import boto3
    import moto.settings

    s3_bucket.put("in/a.csv", csv_text(people(1, 2)))
    iam = boto3.client("iam", endpoint_url=s3_bucket.endpoint_url)
    iam.create_user(UserName="no-rights")
    key = iam.create_access_key(UserName="no-rights")["AccessKey"]
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    job = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('in/a.csv')}'}}")
    with pytest.raises(SourceError, match=rf"cannot read {s3_bucket.url('in/a.csv')}: access denied; the credentials in "
                                          rf"use may not read objects of bucket '{s3_bucket.name}'"):
        run_job(job, tmp_path / "state")


def test_an_object_that_grew_after_a_glob_listed_it_is_read_whole_by_a_later_job(tmp_path, s3_bucket):
    s3_bucket.put("grow/a.csv", csv_text(people(1, 5)))
    glob = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('grow/*.csv')}'}}", name="by_glob",
                     destination="{type: sqlite, path: out.db, table: globbed}")
    assert run_job(glob, tmp_path / "state").counts.inserted == 5
    s3_bucket.put("grow/a.csv", csv_text(people(1, 50)))  # the same key, now larger
    one = write_job(tmp_path, f"{{type: csv, path: '{s3_bucket.url('grow/a.csv')}'}}", name="by_key")
    report = run_job(one, tmp_path / "state")
    assert (report.counts.read, report.counts.inserted) == (50, 50)
    assert sqlite_ids(tmp_path) == list(range(1, 51))
