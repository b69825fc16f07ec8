"""`portl init` driven by flags and by an answers file: the same answers write the same file."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from portl.cli.app import app
from portl.spec.loader import load_job

ROOT = Path(__file__).resolve().parents[3]

FLAGS = [
    "--source-path", "customers.csv", "--destination-type", "sqlite", "--destination-path", "shop.db",
    "--mapping", "manual", "--column", "id=customer_id", "--column", "mail=Email", "--column", "joined=Signup Date",
    "--column-type", "id=bigint", "--transform", "mail=trim,lower", "--conflict-key", "id",
    "--conflict-strategy", "merge", "--before-row-hook", "python:hooks:clean_row", "--batch-size", "500",
    "--retry", "skip", "--retry-attempts", "5", "--workers", "2", "--max-rejects", "3", "--name", "people",
]
ANSWERS = """\
source_path: customers.csv
destination_type: sqlite
destination_path: shop.db
mapping: manual
columns: {id: customer_id, mail: Email, joined: Signup Date}
column_types: {id: bigint}
transforms: {mail: "trim,lower"}
conflict_key: id
conflict_strategy: merge
before_row_hook: python:hooks:clean_row
batch_size: 500
retry: skip
retry_attempts: 5
workers: 2
max_rejects: 3
name: people
"""


def invoke(*args: str):
    result = CliRunner().invoke(app, ["init", *args], catch_exceptions=False)
    return result


def test_flags_and_an_answers_file_write_the_same_job(folder, monkeypatch):
    monkeypatch.chdir(folder)
    (folder / "answers.yaml").write_text(ANSWERS)

    by_flags = invoke(*FLAGS, "--output", "flags.yaml")
    by_file = invoke("--answers", "answers.yaml", "--output", "file.yaml")

    assert by_flags.exit_code == 0 and by_file.exit_code == 0, by_flags.output + by_file.output
    flags_text = (folder / "flags.yaml").read_text().replace("flags.yaml", "FILE")
    file_text = (folder / "file.yaml").read_text().replace("file.yaml", "FILE")
    assert flags_text == file_text
    job = load_job(str(folder / "flags.yaml"), environ={}).job
    assert (job.conflict.key, job.retry.attempts, job.hooks.before_row[0].function) == (["id"], 5, "hooks:clean_row")


def test_a_flag_wins_over_the_answers_file(folder, monkeypatch):
    monkeypatch.chdir(folder)
    (folder / "answers.yaml").write_text(ANSWERS)

    invoke("--answers", "answers.yaml", "--batch-size", "42")

    assert yaml.safe_load((folder / "people.yaml").read_text())["batch"] == {"size": 42}


def test_the_example_answers_file_writes_a_job_that_loads(tmp_path, monkeypatch):
    for example in ("init", "quickstart"):
        shutil.copytree(ROOT / "examples" / example, tmp_path / example,
                        ignore=shutil.ignore_patterns("*.db", "*.rejects.csv", ".portl", "customers.yaml"))
    monkeypatch.chdir(tmp_path)

    result = invoke("--answers", "init/answers.yaml")

    assert result.exit_code == 0, result.output
    job = load_job(str(tmp_path / "init" / "customers.yaml"), environ={}).job
    assert job.source.path == "../quickstart/customers.csv"
    assert list(job.mapping.columns) == ["customer_id", "email", "signup_date", "lifetime_value", "country"]
    assert job.mapping.columns["signup_date"].formats == ["%Y-%m-%d", "%d/%m/%Y"]


def test_every_question_has_a_flag_named_after_its_answers_key():
    import inspect

    from portl.cli.init import init_command
    from portl.wizard import answer_keys

    options = set(inspect.signature(init_command).parameters) - {"answers", "yes", "connections", "state_dir", "debug",
                                                                 "check_file", "job_file"}
    assert options == set(answer_keys())


def test_every_flag_a_message_names_is_an_option_of_init():
    import typer

    from portl.wizard.questions import build

    command = typer.main.get_command(app).commands["init"]
    options = {flag for param in command.params for flag in [*param.opts, *param.secondary_opts]}
    named = {part for question in build().values() for part in question.flag.split("/")}
    assert named - options == set()
