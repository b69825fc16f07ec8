"""Loading job files: the job, its name and folder, choosing a job, and file-level errors."""

import os

import pytest

from portl.connectors.base import WriteMode
from portl.errors import ConfigError
from portl.spec.loader import LoadedJob, job_names, load_job

SIMPLE = """
    source:
      type: csv
      path: data/customers.csv
    destination:
      type: sqlite
      path: out/warehouse.db
      table: customers
    conflict:
      key: id
"""

MULTI = """
    connections:
      db: {type: sqlite, path: w.db}
    jobs:
      - name: customers
        source: {type: csv, path: customers.csv}
        destination: {connection: db, table: customers}
      - name: orders
        source: {type: csv, path: orders.csv}
        destination: {connection: db, table: orders}
"""


def test_valid_single_job_loads_with_its_settings(write):
    path = write("customers.yaml", SIMPLE)

    loaded = load_job(path, environ={})

    assert isinstance(loaded, LoadedJob)
    assert loaded.job.source.type == "csv"
    assert loaded.job.destination.table == "customers"
    assert loaded.job.conflict.key == ["id"]
    assert loaded.job.write_mode == WriteMode.UPSERT


def test_job_name_defaults_to_the_file_stem(write):
    loaded = load_job(write("nightly-customers.yaml", SIMPLE), environ={})

    assert loaded.name == "nightly-customers"
    assert loaded.job.name == "nightly-customers"


def test_job_name_written_in_the_file_wins_over_the_stem(write):
    loaded = load_job(write("job.yaml", "name: load_customers\n" + SIMPLE.replace("\n    ", "\n")), environ={})

    assert loaded.name == "load_customers"


def test_path_base_dir_and_text_describe_the_file(write, tmp_path):
    path = write("jobs/customers.yaml", SIMPLE)

    loaded = load_job(path, environ={})

    assert loaded.path == os.path.abspath(path)
    assert loaded.base_dir == str(tmp_path / "jobs")
    assert loaded.text == open(path, encoding="utf-8").read()


def test_relative_paths_are_left_as_written(write):
    loaded = load_job(write("jobs/customers.yaml", SIMPLE), environ={})

    assert loaded.job.source.path == "data/customers.csv"
    assert loaded.job.destination.path == "out/warehouse.db"


def test_multi_job_file_loads_the_job_chosen_by_name(write):
    path = write("daily.yaml", MULTI)

    loaded = load_job(path, job_name="orders", environ={})

    assert loaded.name == "orders"
    assert loaded.job.source.path == "orders.csv"
    assert loaded.job.destination.table == "orders"
    assert loaded.job.destination.path == "w.db"


def test_multi_job_file_without_a_job_name_lists_the_jobs(write, problems_of):
    path = write("daily.yaml", MULTI)

    problems = problems_of(load_job, path, environ={})

    assert [p.message for p in problems] == ["this file holds 2 jobs (customers, orders); choose one with --job NAME"]
    assert (problems[0].file, problems[0].line) == (path, 3)


def test_multi_job_file_with_one_job_needs_no_job_name(write):
    text = MULTI.split("      - name: orders")[0]

    loaded = load_job(write("daily.yaml", text), environ={})

    assert loaded.name == "customers"


def test_unknown_job_name_suggests_the_closest(write, problems_of):
    problems = problems_of(load_job, write("daily.yaml", MULTI), job_name="order", environ={})

    assert problems[0].message == "no job named 'order' in this file; did you mean 'orders'? Jobs: customers, orders"


def test_every_job_of_a_multi_job_file_needs_a_name(write, problems_of):
    path = write("daily.yaml", """
        jobs:
          - source: {type: csv, path: a.csv}
            destination: {type: csv, path: b.csv}
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line, p.column) for p in problems] == [
        ("jobs[0] has no 'name'; every job in a multi-job file needs one", 2, 5)
    ]


def test_unknown_top_level_key_of_a_multi_job_file_is_reported(write, problems_of):
    path = write("daily.yaml", "conections: {}\n" + MULTI.replace("\n    ", "\n"))

    problems = problems_of(load_job, path, job_name="orders", environ={})

    assert [(p.message, p.line) for p in problems] == [("unknown key 'conections' in a multi-job file; did you mean 'connections'?", 1)]


def test_multi_job_problems_are_located_in_the_entry_and_name_the_path_inside_the_job(write, problems_of):
    path = write("daily.yaml", MULTI.replace("path: orders.csv", "path: orders.csv, header: maybe"))

    problems = problems_of(load_job, path, job_name="orders", environ={})

    assert [str(p) for p in problems] == [f"{path}:8:51: source.header: expected true or false, got 'maybe'"]


def test_job_names_lists_the_jobs_of_a_multi_job_file(write):
    assert job_names(write("daily.yaml", MULTI)) == ["customers", "orders"]


def test_job_names_of_a_single_job_file_is_its_name(write):
    assert job_names(write("customers.yaml", SIMPLE)) == ["customers"]


def test_job_name_that_does_not_match_a_single_job_file_is_an_error(write, problems_of):
    problems = problems_of(load_job, write("customers.yaml", SIMPLE), job_name="orders", environ={})

    assert problems[0].message == "this file holds one job (customers), not 'orders'"


def test_empty_file_is_a_clear_error(write, problems_of):
    path = write("empty.yaml", "# nothing yet\n")

    problems = problems_of(load_job, path, environ={})

    assert [str(p) for p in problems] == [f"{path}:1:1: the job file is empty; a job needs at least 'source' and 'destination'"]


def test_top_level_list_is_a_clear_error(write, problems_of):
    path = write("list.yaml", "- source: a\n- destination: b\n")

    problems = problems_of(load_job, path, environ={})

    assert problems[0].message == "a job file must be a mapping of keys (source:, destination:, ...), but this one holds a list"
    assert (problems[0].line, problems[0].column) == (1, 1)


def test_yaml_syntax_error_reports_line_and_column_in_plain_words(write, problems_of):
    path = write("broken.yaml", """
        source:
          type: csv
          path: a.csv: b
    """)

    problems = problems_of(load_job, path, environ={})

    assert len(problems) == 1
    assert problems[0].message == "could not parse YAML: mapping values are not allowed here"
    assert (problems[0].file, problems[0].line, problems[0].column) == (path, 3, 14)


def test_tab_indentation_gets_a_hint(write, problems_of):
    path = write("tabs.yaml", "source:\n\ttype: csv\n")

    problems = problems_of(load_job, path, environ={})

    assert "use spaces" in problems[0].message
    assert (problems[0].line, problems[0].column) == (2, 1)


def test_duplicate_key_is_reported_at_the_second_one(write, problems_of):
    path = write("dup.yaml", """
        source:
          type: csv
          path: a.csv
          path: b.csv
        destination: {type: csv, path: out.csv}
    """)

    problems = problems_of(load_job, path, environ={})

    assert [(p.message, p.line, p.column) for p in problems] == [
        ("duplicate key 'path' in source; a key may appear only once in a mapping", 4, 3)
    ]


def test_missing_file_is_a_config_error(tmp_path):
    path = str(tmp_path / "nope.yaml")

    with pytest.raises(ConfigError, match="does not exist"):
        load_job(path, environ={})


def test_yaml_merge_keys_are_not_duplicates(write, problems_of):
    path = write("merge.yaml", """
        defaults: &csv {type: csv, path: a.csv, header: true}
        source:
          <<: *csv
          path: b.csv
        destination: {type: csv, path: out.csv}
    """)

    problems = problems_of(load_job, path, environ={})

    # the only problem is the anchor's holder, which is not a job key
    assert [p.message for p in problems] == ["unknown key 'defaults' in the job; valid keys: version, name, description, mode, mapping, conflict, batch, retry, parallel, transaction, hooks, validation, rejects, service, copy, quality, reports, source, destination, connections"]


def test_top_level_scalar_is_an_error_that_does_not_echo_the_value(write, problems_of):
    path = write("token.yaml", "ghp_s3cr3tt0ken\n")

    problems = problems_of(load_job, path, environ={})

    assert problems[0].message == "a job file must be a mapping of keys (source:, destination:, ...), but this one holds a single value"
