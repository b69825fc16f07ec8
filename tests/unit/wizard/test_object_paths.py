"""The wizard with a glob of files or an S3 object as the source: it reads them through the
connector, as a run would, instead of looking for one local file of that name."""

from __future__ import annotations

import pytest

from portl.engine.plan import plan
from portl.errors import ConfigError

PART = "id,name\n{0},n{0}\n"


def planned_columns(written) -> list[str]:
    the_plan = plan(written.job())
    try:
        return the_plan.source.schema().names
    finally:
        the_plan.close()


def test_a_glob_of_local_files_is_read_as_one_source(init, folder):
    for n in (1, 2):
        (folder / f"part-{n}.csv").write_text(PART.format(n))

    written = init(source_path="part-*.csv", destination_type="sqlite", destination_path="parts.db")

    job = written.job().job
    assert (job.source.type, job.source.path) == ("csv", "part-*.csv")
    assert planned_columns(written) == ["id", "name"]
    assert job.mapping.columns["id"].type == "bigint"  # typed from the rows read


def test_a_glob_that_finds_nothing_says_so(init):
    with pytest.raises(ConfigError) as info:
        init(source_path="nothing-*.csv", destination_type="sqlite")
    [problem] = [p.message for p in info.value.problems if p.message.startswith("--source-path")]
    assert "nothing-*.csv" in problem and "no file" in problem.lower(), problem


def test_an_s3_object_is_read_through_the_object_store(init, s3_bucket):
    s3_bucket.put("in/people.csv", "id,name\n1,ann\n2,bob\n")

    written = init(source_path=s3_bucket.url("in/people.csv"), destination_type="sqlite", destination_path="p.db")

    assert written.job().job.source.path == s3_bucket.url("in/people.csv")
    assert planned_columns(written) == ["id", "name"]


def test_a_missing_bucket_is_named(init, s3_bucket):
    with pytest.raises(ConfigError) as info:
        init(source_path="s3://no-such-bucket-here/in.csv", destination_type="sqlite")
    [problem] = [p.message for p in info.value.problems if p.message.startswith("--source-path")]
    assert "no-such-bucket-here" in problem, problem


def test_an_s3_destination_is_written_as_its_url(init, s3_bucket):
    written = init(source_path="customers.csv", destination_type="csv", destination_path=s3_bucket.url("out/c.csv"),
                   mode="replace")

    assert written.job().job.destination.path == s3_bucket.url("out/c.csv")
