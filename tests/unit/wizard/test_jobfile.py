"""Writing a job as commented YAML, and adding a job to single-job and multi-job files."""

import textwrap

import pytest
import yaml

from portl.spec.loader import job_names, load_job
from portl.wizard.jobfile import append_job, job_text

NEW_JOB = {
    "name": "orders",
    "source": {"type": "csv", "path": "orders.csv"},
    "destination": {"type": "sqlite", "path": "shop.db", "table": "orders"},
    "mapping": {"auto": True, "columns": {"placed": {"from": "Placed", "type": "date", "format": "%d/%m/%Y"}}},
    "mode": "append",
}

SINGLE = textwrap.dedent("""\
    # Nightly customer export.

    # The export comes from the CRM.
    source: {type: csv, path: customers.csv}   # utf-8
    destination: {type: sqlite, path: shop.db, table: customers}
    conflict: {key: id}
""")

MULTI = textwrap.dedent("""\
    connections:
      shop: {type: sqlite, path: shop.db}
    jobs:
      # customers first
      - name: customers
        source: {type: csv, path: customers.csv}
        destination: {connection: shop, table: customers}
""")


def entry(several=True):
    return job_text(NEW_JOB, "jobs.yaml", several=several)


def write_loaded(tmp_path, text, name="jobs.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_job_text_holds_the_job_and_a_comment_per_section():
    written = job_text(NEW_JOB, "orders.yaml")

    assert yaml.safe_load(written.text) == NEW_JOB
    assert "# Where rows come from." in written.text
    assert "# Columns: every source column is loaded" in written.text
    assert "# append: rows are added" in written.text


def test_column_specs_are_written_on_one_line_each():
    text = job_text(NEW_JOB, "orders.yaml").text

    assert "    placed: {from: Placed, type: date, format: '%d/%m/%Y'}\n" in text


def test_the_header_tells_how_to_run_the_job_and_names_it_in_a_multi_job_file():
    assert "#   run it:             portl run jobs.yaml --job orders" in entry(several=True).text
    assert "#   run it:             portl run orders.yaml\n" in job_text(NEW_JOB, "orders.yaml").text


def test_appending_to_a_single_job_file_makes_it_a_jobs_list_named_after_the_file(tmp_path):
    text, kept = append_job(SINGLE, str(tmp_path / "nightly.yaml"), entry())
    path = write_loaded(tmp_path, text, "nightly.yaml")

    assert kept
    assert job_names(path) == ["nightly", "orders"]
    assert load_job(path, "nightly", environ={}).job.conflict.key == ["id"]
    assert load_job(path, "orders", environ={}).job.destination.table == "orders"


def test_appending_to_a_single_job_file_keeps_its_comments(tmp_path):
    text, _ = append_job(SINGLE, str(tmp_path / "nightly.yaml"), entry())

    assert text.startswith("# Nightly customer export.\n\njobs:\n")
    assert "    # The export comes from the CRM.\n  - name: nightly\n" in text
    assert "    source: {type: csv, path: customers.csv}   # utf-8\n" in text


def test_a_single_job_that_has_a_name_keeps_it(tmp_path):
    text, _ = append_job("name: crm\n" + SINGLE, str(tmp_path / "nightly.yaml"), entry())

    assert job_names(write_loaded(tmp_path, text)) == ["crm", "orders"]


def test_the_commands_of_a_header_written_by_init_name_the_job_once_the_file_holds_two(tmp_path):
    first = job_text({**NEW_JOB, "name": "customers"}, "jobs.yaml").text

    text, _ = append_job(first, str(tmp_path / "jobs.yaml"), entry())

    assert "#   run it:             portl run jobs.yaml --job customers\n" in text


def test_appending_to_a_multi_job_file_adds_an_entry_and_keeps_the_rest_as_written(tmp_path):
    text, kept = append_job(MULTI, str(tmp_path / "jobs.yaml"), entry())
    path = write_loaded(tmp_path, text)

    assert kept
    assert text.startswith(MULTI)
    assert job_names(path) == ["customers", "orders"]
    assert load_job(path, "customers", environ={}).job.destination.path == "shop.db"


def test_a_jobs_list_in_flow_style_is_rewritten_from_its_data(tmp_path):
    existing = "# old\njobs: [{name: a, source: {type: csv, path: a.csv}, destination: {type: csv, path: b.csv}}]\n"

    text, kept = append_job(existing, str(tmp_path / "jobs.yaml"), entry())

    assert not kept
    assert job_names(write_loaded(tmp_path, text)) == ["a", "orders"]


def test_an_empty_file_gets_the_job_alone(tmp_path):
    text, kept = append_job("\n", str(tmp_path / "jobs.yaml"), entry(several=False))

    assert kept and yaml.safe_load(text) == NEW_JOB


@pytest.mark.parametrize(("existing", "message"), [
    ("- a\n- b\n", "does not hold a job"),
    ("jobs: {a: 1}\n", "'jobs' is not a list"),
    ("source: [unclosed\n", "is not valid YAML"),
])
def test_a_file_that_is_not_a_job_file_is_not_appended_to(tmp_path, existing, message):
    with pytest.raises(ValueError, match=message):
        append_job(existing, str(tmp_path / "jobs.yaml"), entry())
