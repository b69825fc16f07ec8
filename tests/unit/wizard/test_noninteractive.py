"""The wizard without a terminal: answers in, a job file out, which loads as `portl validate` loads it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from portl.connectors.base import ConflictStrategy, WriteMode
from portl.engine.plan import plan
from portl.errors import ConfigError

from .conftest import make_table


def comments(text: str) -> str:
    """The comments of a job file as one line of prose."""
    return " ".join(" ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#")).split())


def columns_of(written):
    return written.job().job.mapping.columns


def test_csv_into_sqlite_with_defaults_auto_maps_and_applies_the_suggested_conversions(init, folder):
    written = init(source_path="customers.csv", destination_type="sqlite")

    job = written.job().job
    assert written.path == folder / "customers.yaml"
    assert (job.source.type, job.source.path) == ("csv", "customers.csv")
    assert (job.destination.path, job.destination.table) == ("customers.db", "customers")
    assert job.mapping.auto is True
    assert job.write_mode == WriteMode.APPEND
    signup = job.mapping.columns["signup_date"]
    assert (signup.from_, signup.type, signup.formats) == ("Signup Date", "date", ["%Y-%m-%d", "%d/%m/%Y"])
    assert [t.name for t in job.mapping.columns["lifetime_value"].transform] == ["money"]
    assert job.mapping.columns["active"].type == "bool"


def test_without_detection_auto_mapping_lists_no_columns(init):
    written = init(source_path="customers.csv", destination_type="sqlite", detect=False)

    assert columns_of(written) == {}
    assert "columns:" not in written.text


def test_the_destination_type_follows_from_the_path(init):
    written = init(source_path="customers.csv", destination_path="out.parquet")

    assert written.job().job.destination.type == "parquet"


def test_manual_mapping_writes_exactly_the_columns_given(init):
    written = init(source_path="customers.csv", destination_path="out.csv", mapping="manual",
                   columns=["id=customer_id", "mail=Email", "joined=Signup Date"],
                   column_types=["id=bigint"], transforms=["mail=trim,lower"], date_formats=["joined=%Y-%m-%d|%d/%m/%Y"])

    columns = columns_of(written)
    assert list(columns) == ["id", "mail", "joined"]
    assert (columns["id"].from_, columns["id"].type) == ("customer_id", "bigint")
    assert [t.name for t in columns["mail"].transform] == ["trim", "lower"]
    assert (columns["joined"].type, columns["joined"].formats) == ("date", ["%Y-%m-%d", "%d/%m/%Y"])
    assert written.job().job.mapping.auto is False


def test_a_date_transform_without_formats_gets_the_formats_of_the_sample(init):
    written = init(source_path="customers.csv", destination_path="out.csv", detect=False,
                   transforms={"Signup Date": "date"})

    (step,) = columns_of(written)["signup_date"].transform
    assert (step.name, step.args) == ("date", ["%Y-%m-%d", "%d/%m/%Y"])


def test_transforms_may_name_the_source_column_or_the_destination_column(init):
    by_source = init(source_path="customers.csv", destination_path="a.csv", detect=False, transforms=["Email=upper"],
                     output="a.yaml")
    by_destination = init(source_path="customers.csv", destination_path="a.csv", detect=False,
                          transforms=["email=upper"], output="b.yaml")

    assert columns_of(by_source) == columns_of(by_destination)


def test_an_existing_tables_primary_key_is_the_default_conflict_key(init, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT)")

    written = init(source_path="customers.csv", destination_path="shop.db", conflict_strategy="merge")

    job = written.job().job
    assert job.conflict.key == ["customer_id"]
    assert job.conflict.strategy == ConflictStrategy.MERGE
    assert "a row whose key is there already takes the incoming non-empty values" in comments(written.text)


def test_a_conflict_key_without_a_unique_index_on_an_existing_table_is_refused(init, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (customer_id TEXT, email TEXT)")

    with pytest.raises(ConfigError) as info:
        init(source_path="customers.csv", destination_path="shop.db", conflict_key="customer_id")

    assert "has no primary key or unique index on (customer_id)" in str(info.value)


def test_replace_mode_is_written_without_a_conflict_section(init):
    written = init(source_path="customers.csv", destination_path="out.db", mode="replace")

    job = written.job().job
    assert (job.write_mode, job.conflict) == (WriteMode.REPLACE, None)


@pytest.mark.parametrize(("flag", "event", "kind"), [
    ("before_row_hook", "before_row", "python"),
    ("after_batch_hook", "after_batch", "script"),
    ("after_job_hook", "after_job", "http"),
])
def test_each_kind_of_hook_is_written_for_its_event(init, flag, event, kind):
    target = {"python": "python:hooks:clean_row", "script": "script:./notify.sh",
              "http": "http:https://hooks.example.com/portl"}[kind]

    written = init(source_path="customers.csv", destination_path="out.db", **{flag: target})

    (hook,) = getattr(written.job().job.hooks, event)
    assert hook.type == kind


def test_batching_retries_workers_and_validation_are_written(init):
    written = init(source_path="customers.csv", destination_path="out.db", batch_size="5,000", retry="fail",
                   workers=2, schema_check=False, row_count="n", max_rejects=10)

    job = written.job().job
    assert (job.batch.size, job.retry.strategy, job.parallel.workers) == (5000, "fail", 2)
    assert (job.validation.schema_, job.validation.row_count, job.validation.max_rejects) == (False, False, 10)
    assert "attempts" not in yaml.safe_load(written.text)["retry"]


def test_a_parquet_source_keeps_its_types_and_gets_no_conversions(init, folder):
    pq.write_table(pa.table({"id": [1, 2], "when": pa.array([1, 2], pa.timestamp("us"))}), folder / "events.parquet")

    written = init(source_path="events.parquet", destination_path="events.jsonl")

    assert columns_of(written) == {}
    assert written.job().job.destination.type == "jsonl"


def test_paths_are_written_relative_to_the_job_files_folder(init, folder):
    (folder / "jobs").mkdir()

    written = init(source_path="customers.csv", destination_path="out.db", output="jobs/load.yaml")

    loaded = written.job()
    assert (loaded.job.source.path, loaded.job.destination.path) == ("../customers.csv", "../out.db")
    the_plan = plan(loaded, preview_rows=1)  # the paths resolve from the job's folder
    try:
        assert the_plan.errors == [] and len(the_plan.preview) == 1
    finally:
        the_plan.close()


def test_environment_references_are_kept_as_written_and_resolved_to_look(init, folder):
    written = init(source_path="${env:DATA}/customers.csv", destination_path="out.db", environ={"DATA": str(folder)})

    assert "path: ${env:DATA}/customers.csv" in written.text


def test_a_named_connection_from_the_connections_file_is_referred_to_by_name(init, folder):
    (folder / "connections.yaml").write_text("connections:\n  warehouse: {type: sqlite, path: wh.db}\n")

    written = init(source_path="customers.csv", destination_connection="warehouse")

    assert yaml.safe_load(written.text)["destination"] == {"connection": "warehouse", "table": "customers"}
    assert written.job().job.destination.path == "wh.db"


def test_an_existing_job_file_gets_the_new_job_appended_by_default(init, folder):
    first = init(source_path="customers.csv", destination_path="out.db", output="jobs.yaml")

    second = init(source_path="customers.csv", destination_path="out.db", destination_table="people",
                  output="jobs.yaml")

    assert second.names == ["customers", "people"]
    assert second.job("customers").job.destination.table == "customers"
    assert first.text.splitlines()[0] in second.text


def test_a_second_job_from_the_same_source_gets_a_name_of_its_own(init):
    init(source_path="customers.csv", destination_path="out.db", output="jobs.yaml")

    second = init(source_path="customers.csv", destination_path="out.db", destination_table="customers",
                  conflict_key="none", output="jobs.yaml")

    assert second.names == ["customers", "customers_2"]


def test_overwrite_replaces_the_existing_file(init):
    init(source_path="customers.csv", destination_path="out.db", output="jobs.yaml")

    second = init(source_path="customers.csv", destination_path="out.db", destination_table="people",
                  output="jobs.yaml", if_exists=False)

    assert second.names == ["people"]


def test_a_name_already_in_the_file_is_refused(init):
    init(source_path="customers.csv", destination_path="out.db", output="jobs.yaml")

    with pytest.raises(ConfigError, match="already has a job named 'customers'"):
        init(source_path="customers.csv", destination_path="out.db", output="jobs.yaml", name="customers")


def test_every_missing_answer_is_listed_in_one_error(init):
    with pytest.raises(ConfigError) as info:
        init()

    message = str(info.value)
    for expected in ("--source-type (source_type): missing", "--destination-type (destination_type): missing",
                     "--source-path or --source-url or --source-connection",
                     "--destination-path or --destination-url or --destination-connection"):
        assert expected in message
    assert len(info.value.problems) == 4


def test_invalid_answers_are_listed_with_the_missing_ones(init):
    with pytest.raises(ConfigError) as info:
        init(source_path="nope.csv", batch_size="lots", retry="never", workers=100)

    problems = [p.message for p in info.value.problems]
    assert "--source-path (source_path): no such file: nope.csv" in problems
    assert "--batch-size (batch_size): 'lots' is not a whole number" in problems
    assert any(p.startswith("--retry (retry): 'never' is not a valid answer") for p in problems)
    assert "--workers (workers): 100 is out of range: give a number between 1 and 64" in problems
    assert "--destination-type (destination_type): missing" in problems


def test_a_database_server_without_url_needs_its_database(init):
    with pytest.raises(ConfigError) as info:
        init(source_type="postgres", destination_path="out.db")

    assert [p.message for p in info.value.problems] == [
        "--source-database (source_database) (for database servers, without --source-url): missing"]


def test_a_job_the_dry_run_finds_wrong_is_not_written(init, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (customer_id TEXT, email BIGINT)")

    with pytest.raises(ConfigError, match="the dry run of this job found problems") as info:
        init(source_path="customers.csv", destination_path="shop.db", detect=False, column_types=["email=date"])

    assert "column email: the mapping produces date but the destination column is BIGINT" in str(info.value)
    assert not (folder / "customers.yaml").exists()


def test_a_password_in_a_url_is_never_shown_in_the_error(init):
    with pytest.raises(ConfigError) as info:
        init(source_url="postgresql://loader:s3cr3t@nohost.invalid:5432/shop", source_table="orders",
             destination_path="out.db")

    assert "cannot connect to PostgreSQL at nohost.invalid:5432" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_a_date_format_that_reads_none_of_the_sample_is_listed_under_its_flag(init):
    with pytest.raises(ConfigError) as info:
        init(source_path="customers.csv", destination_path="out.db", date_formats=["Signup Date=%q"])

    assert [p.message for p in info.value.problems] == [
        "--date-format (date_formats): signup_date: %q reads none of the sampled values of Signup Date "
        "('2023-01-15', '16/02/2023', '2023-03-01') as a date; these fit: %Y-%m-%d|%d/%m/%Y"]


def test_a_transform_naming_a_column_not_mapped_says_which_are(init):
    with pytest.raises(ConfigError) as info:
        init(source_path="customers.csv", destination_path="out.db", transforms=["nickname=upper"])

    assert info.value.problems[0].message == (
        "--transform (transforms): nickname: no column 'nickname' in the mapping. Mapped columns: customer_id, "
        "first_name, email, signup_date, lifetime_value, active")


def test_transforms_with_arguments_are_written_in_the_job_language(init):
    written = init(source_path="customers.csv", destination_path="out.db", detect=False,
                   transforms=["Email=coalesce(Email|First Name),null_if(-|n/a),lower", "First Name=default(n/a)",
                               "customer_id=replace(^1|9)"])

    columns = yaml.safe_load(written.text)["mapping"]["columns"]
    assert columns["email"] == {
        "transform": [{"coalesce": ["Email", "First Name"]}, {"null_if": ["-", "n/a"]}, "lower"]}
    assert columns["first_name"] == {"from": "First Name", "transform": {"default": "n/a"}}
    assert columns["customer_id"] == {"transform": {"replace": {"pattern": "^1", "with": "9"}}}
    assert written.job().job.mapping.columns["email"].transform[0].args == ["Email", "First Name"]


def test_concat_of_a_column_the_source_lacks_is_refused(init):
    with pytest.raises(ConfigError) as info:
        init(source_path="customers.csv", destination_path="out.db", transforms=["Email=concat(First Name|Surname)"])

    assert info.value.problems[0].message.startswith(
        "--transform (transforms): email: the source has no column 'Surname'. Its columns: customer_id, First Name")


def test_a_mapping_that_loads_no_column_is_listed_and_nothing_is_written(init, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (code TEXT, label TEXT)")

    with pytest.raises(ConfigError) as info:
        init(source_path="customers.csv", destination_path="shop.db", create_missing_columns=False)

    assert [p.message for p in info.value.problems] == [
        "--mapping: no source column has a column of the same name in customers (code, label), and the missing "
        "columns are not to be added: add them, or map the columns by hand (manual)"]
    assert not (folder / "customers.yaml").exists()


def test_a_source_file_of_another_format_is_refused(init, folder):
    pq.write_table(pa.table({"id": [1]}), folder / "export.csv")

    with pytest.raises(ConfigError) as info:
        init(source_type="csv", source_path="export.csv", destination_path="out.db")

    assert ("--source-path (source_path): export.csv is a parquet file, not csv; give a csv file, or start again "
            "with --source-type parquet") in [p.message for p in info.value.problems]


def test_hooks_whose_script_or_module_is_not_there_yet_are_noted(init, folder):
    (folder / "hooks.py").write_text("def clean(row):\n    return row\n")

    written = init(source_path="customers.csv", destination_path="out.db", before_row_hook="python:hooks:clean",
                   after_row_hook="python:hookz:clean", after_batch_hook="script:./notify.sh --quiet",
                   after_job_hook="script:ls -l")

    flat = " ".join(written.transcript.split())
    assert "note: before_row hook" not in flat and "note: after_job hook" not in flat
    assert "note: after_row hook: no module hookz beside the job file (hookz.py) or on the Python path yet" in flat
    assert "note: after_batch hook: ./notify.sh is not there yet" in flat
    assert written.job().job.hooks.after_batch[0].command == "./notify.sh --quiet"
