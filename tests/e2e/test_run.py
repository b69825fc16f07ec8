"""The commands a user runs on a good job: run, plan, dry-run, validate, schema, runs; the JSON
log; secrets; and every example in examples/."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from .conftest import (
    EXAMPLES, assert_balanced, assert_clean_failure, copy_example, digest, query, read_rejects, text_counts,
)

QUICKSTART = "examples/quickstart/job.yaml"
QUICKSTART_REJECTS = "examples/quickstart/customers.rejects.csv"
QUICKSTART_DB = "examples/quickstart/customers.db"


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A clean copy of examples/quickstart in tmp_path/examples/quickstart, so the README's
    commands run unchanged from tmp_path and the repository is left alone."""
    return copy_example(EXAMPLES / "quickstart", tmp_path)


def counts_of(report: dict) -> tuple[int, int, int, int, int]:
    c = report["counts"]
    return c["read"], c["inserted"], c["updated"], c["skipped"], c["rejected"]


# --- run ---------------------------------------------------------------------------------------


def test_quickstart_summary_says_where_every_row_went(portl, quickstart, tmp_path):
    result = portl("run", QUICKSTART)

    assert result.code == 0, result.log
    assert re.search(r"^succeeded job customers run \S+ in ", result.stderr, re.M), result.log
    assert text_counts(result.stderr) == {"read": 25, "inserted": 18, "updated": 2, "skipped": 0, "rejected": 5}
    assert "rejected rows: " in result.stderr and "customers.rejects.csv" in result.stderr, result.log


def test_quickstart_loads_eighteen_customers_with_cleaned_values(portl, quickstart, tmp_path):
    result = portl("run", QUICKSTART, "--log-format", "json")

    assert result.code == 0, result.log
    assert counts_of(result.report) == (25, 18, 2, 0, 5)
    db = tmp_path / QUICKSTART_DB
    assert query(db, "SELECT count(*), count(DISTINCT customer_id) FROM customers") == [(18, 18)]
    # 1002 and 1003 appear twice in the export: the later row wins (strategy overwrite).
    assert query(db, "SELECT email, lifetime_value, country FROM customers WHERE customer_id = 1002") == [
        ("alan.turing@example.com", 1015.0, "GB")
    ]
    assert query(db, "SELECT email, active FROM customers WHERE customer_id = 1003") == [
        ("grace.hopper@example.com", 1)
    ]
    assert query(db, "SELECT full_name, signup_date, discount, country FROM customers WHERE customer_id = 1005") == [
        ("Barbara Liskov", "2023-05-20", None, "US")
    ]
    rejected_ids = query(db, "SELECT customer_id FROM customers WHERE customer_id IN (1008, 1010, 1017, 1020)")
    assert rejected_ids == []


def test_quickstart_reject_file_lists_the_five_bad_rows_with_their_lines(portl, quickstart, tmp_path):
    assert portl("run", QUICKSTART).code == 0

    rejects = read_rejects(tmp_path / QUICKSTART_REJECTS)

    assert [(r["line"], r["record"], r["column"], r["value"], r["error"]) for r in rejects] == [
        ("9", "8", "lifetime_value", "N/A", "'N/A' is not a money amount"),
        ("11", "10", "signup_date", "31/02/2023", "'31/02/2023' is not a date in format %Y-%m-%d or %d/%m/%Y"),
        ("14", "13", "customer_id", "abc", "'abc' is not an integer"),
        ("20", "19", "discount", "maybe", "'maybe' is not a percentage"),
        ("23", "22", "email", "", "required value is missing"),
    ]
    assert rejects[2]["original"] == "abc,Bad,Row,bad.row@example.com,2024-01-01,$1.00,0%,yes,us"


def test_second_quickstart_run_updates_every_loaded_row_and_inserts_none(portl, quickstart, tmp_path):
    assert portl("run", QUICKSTART).code == 0

    result = portl("run", QUICKSTART, "--log-format", "json")

    assert result.code == 0, result.log
    assert counts_of(result.report) == (25, 0, 20, 0, 5)
    assert query(tmp_path / QUICKSTART_DB, "SELECT count(*) FROM customers") == [(18,)]
    assert len(read_rejects(tmp_path / QUICKSTART_REJECTS)) == 5  # replaced, not appended to


def test_resume_of_a_finished_run_says_so_and_changes_nothing(portl, quickstart, tmp_path):
    first = portl("run", QUICKSTART, "--log-format", "json")
    assert first.code == 0, first.log
    before = digest(tmp_path / QUICKSTART_DB), digest(tmp_path / QUICKSTART_REJECTS)

    result = portl("run", QUICKSTART, "--resume")

    assert result.code == 0, result.log
    assert f"run {first.report['run_id']} of job customers already finished" in result.stderr, result.log
    assert "nothing changed" in result.stderr, result.log
    assert (digest(tmp_path / QUICKSTART_DB), digest(tmp_path / QUICKSTART_REJECTS)) == before


# --- plan and dry-run --------------------------------------------------------------------------


def test_plan_writes_nothing_to_an_existing_destination(portl, quickstart, tmp_path):
    assert portl("run", QUICKSTART).code == 0
    files = [tmp_path / QUICKSTART_DB, tmp_path / QUICKSTART_REJECTS, tmp_path / "state" / "state.db"]
    before = [digest(f) for f in files]

    for args in (["plan", QUICKSTART], ["plan", QUICKSTART, "--format", "json"], ["run", QUICKSTART, "--dry-run"]):
        result = portl(*args)
        assert result.code == 0, result.log

    assert [digest(f) for f in files] == before


def test_plan_of_a_new_destination_writes_no_reject_file_and_no_ledger(portl, quickstart, tmp_path):
    for args in (["plan", QUICKSTART], ["plan", QUICKSTART, "--format", "json"], ["run", QUICKSTART, "--dry-run"]):
        result = portl(*args)
        assert result.code == 0, result.log

    assert not (tmp_path / QUICKSTART_REJECTS).exists()
    assert not (tmp_path / "state").exists()
    assert "will be created" in result.stdout, result.log


def test_plan_of_a_new_destination_creates_no_database_file(portl, quickstart, tmp_path):
    result = portl("plan", QUICKSTART)

    assert result.code == 0, result.log
    assert not (tmp_path / QUICKSTART_DB).exists()


def test_dry_run_prints_the_same_plan_as_plan(portl, quickstart):
    planned = portl("plan", QUICKSTART)
    dry_run = portl("run", QUICKSTART, "--dry-run")

    assert planned.code == dry_run.code == 0, planned.log + dry_run.log
    assert "Plan for job customers" in planned.stdout and "nothing has been written" in planned.stdout, planned.log
    assert dry_run.stdout == planned.stdout


def test_plan_json_gives_mapping_ddl_per_batch_and_a_preview_with_rejected_rows_marked(portl, quickstart):
    result = portl("plan", QUICKSTART, "--format", "json", "--rows", "15")

    assert result.code == 0, result.log
    plan = json.loads(result.stdout)
    assert [(c["source"], c["destination"], c["type"]) for c in plan["mapping"]][:3] == [
        (["customer_id"], "customer_id", "bigint"),
        (["First Name"], "first_name", "text"),
        (["Last Name"], "last_name", "text"),
    ]
    assert {c["destination"]: c["type"] for c in plan["mapping"]}["lifetime_value"] == "decimal(12,2)"
    assert len(plan["ddl"]) == 1
    assert plan["ddl"][0].startswith('CREATE TABLE IF NOT EXISTS "customers"')
    assert 'PRIMARY KEY ("customer_id")' in plan["ddl"][0]
    upsert = [s for s in plan["per_batch"] if s.startswith('INSERT INTO "customers"')]
    assert len(upsert) == 1 and 'ON CONFLICT ("customer_id") DO UPDATE SET' in upsert[0]
    preview = {row["record"]: row for row in plan["preview"]}
    assert sorted(preview) == list(range(1, 16))
    rejected = {r: (row["line"], row["column"], row["error"]) for r, row in preview.items() if row["values"] is None}
    assert rejected == {
        8: (9, "lifetime_value", "'N/A' is not a money amount"),
        10: (11, "signup_date", "'31/02/2023' is not a date in format %Y-%m-%d or %d/%m/%Y"),
        13: (14, "customer_id", "'abc' is not an integer"),
    }
    assert preview[1]["values"]["email"] == "ada@example.com" and preview[1]["error"] is None
    assert preview[2]["values"]["signup_date"] == "2023-02-16"
    assert plan["errors"] == []


# --- validate, schema, runs ----------------------------------------------------------------------


def test_validate_accepts_a_good_job(portl, quickstart):
    result = portl("validate", QUICKSTART)

    assert result.code == 0, result.log
    assert "job 'customers' is valid" in result.stdout, result.log
    assert "upsert on (customer_id), strategy overwrite" in result.stdout, result.log


def test_validate_lists_every_problem_at_once(portl, write):
    write("job.yaml", """
        source: {type: csv, path: data.csv}
        destination: {type: sqlite, path: out.db, table: t}
        batch: {size: -5}
        retry: {attempts: many}
        mapping:
          columns:
            id: {typ: bigint}
    """)

    result = portl("validate", "job.yaml")

    assert_clean_failure(result, 2)
    assert "3 problems found" in result.stderr, result.log
    located = re.findall(r"^\s*job\.yaml:(\d+):(\d+): (.*)$", result.stderr, re.M)
    assert [(int(line), message) for line, _, message in located] == [
        (3, "batch.size: must be at least 1, got -5"),
        (4, "retry.attempts: expected a whole number, got 'many'"),
        (7, "unknown key 'typ' in mapping.columns.id; did you mean 'type'?"),
    ]


def test_schema_prints_the_json_schema_of_a_job(portl):
    result = portl("schema")

    assert result.code == 0, result.log
    schema = json.loads(result.stdout)
    jobs = [schema["$defs"][ref["$ref"].rsplit("/", 1)[-1]] for ref in schema["anyOf"]]
    job = next(j for j in jobs if "source" in j.get("properties", {}))
    assert {"source", "destination", "mapping", "conflict", "batch", "hooks", "validation"} <= set(job["properties"])
    assert set(job["required"]) == {"source", "destination"}
    assert job["additionalProperties"] is False


def test_runs_lists_every_run_with_its_status(portl, quickstart):
    first = portl("run", QUICKSTART, "--log-format", "json")
    second = portl("run", QUICKSTART, "--log-format", "json")

    result = portl("runs")

    assert result.code == 0, result.log
    for run in (first.report, second.report):
        line = next((l for l in result.stdout.splitlines() if run["run_id"] in l), None)
        assert line is not None, result.log
        assert "customers" in line and "succeeded" in line
    assert result.stdout.index(second.report["run_id"]) < result.stdout.index(first.report["run_id"])  # newest first


def test_runs_show_gives_the_counts_of_a_run(portl, quickstart):
    run_id = portl("run", QUICKSTART, "--log-format", "json").report["run_id"]

    result = portl("runs", "show", run_id)

    assert result.code == 0, result.log
    assert f"run {run_id}" in result.stdout and "succeeded" in result.stdout, result.log
    assert "read 25, inserted 18, updated 2, skipped 0, rejected 5" in result.stdout, result.log


def test_runs_show_of_an_unknown_run_says_how_to_list_them(portl, quickstart):
    assert portl("run", QUICKSTART).code == 0

    result = portl("runs", "show", "19990101-000000-nosuch")

    assert_clean_failure(result)
    assert "no run '19990101-000000-nosuch'" in result.stderr and "portl runs" in result.stderr, result.log


# --- the JSON log --------------------------------------------------------------------------------


def test_json_log_has_one_event_per_line_with_ts_level_run_id_batch_event_details(portl, quickstart):
    result = portl("run", QUICKSTART, "--log-format", "json")

    assert result.code == 0, result.log
    *events, report = result.events
    assert report["event"] == "report"
    assert events, result.log
    for event in events:
        assert set(event) == {"ts", "level", "run_id", "batch", "event", "details"}, event
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"]), event
        assert event["level"] in {"info", "warning", "error"}, event
        assert event["run_id"] == report["run_id"], event
        assert isinstance(event["details"], dict), event
    names = [e["event"] for e in events]
    assert names[0] == "run_started" and names[-1] == "run_finished", names
    batches = [e for e in events if e["event"] == "batch_committed"]
    assert [e["batch"] for e in batches] == [1, 2, 3]  # batch.size 10, 25 rows
    assert sum(e["details"]["rows"] for e in batches) == 25
    assert batches[-1]["details"]["totals"] == report["counts"]
    assert all(e["batch"] is None for e in events if e["event"] in ("run_started", "run_finished"))


# --- secrets -------------------------------------------------------------------------------------

TOKEN = "tok-5f1c9a7e2b"


def _hook_job(write, url: str, headers: str) -> None:
    write("data.csv", "id,name\n1,a\n2,b\n")
    write("job.yaml", f"""
        name: notify
        source: {{type: csv, path: data.csv}}
        destination: {{type: sqlite, path: out.db, table: t}}
        hooks:
          before_job:
            type: http
            url: "{url}"
            headers: {headers}
          after_job:
            type: http
            url: "{url}"
            headers: {headers}
            body: {{text: "{{{{ job }}}}: {{{{ counts.inserted }}}} inserted"}}
    """)


def test_secret_in_an_http_hook_header_is_sent_but_never_printed(portl, write, http_server):
    _hook_job(write, http_server.url + "/runs/{{ run_id }}",
              '{Authorization: "Bearer ${env:SECRET_TOKEN}", X-Api-Key: "${env:SECRET_TOKEN}"}')
    env = {"SECRET_TOKEN": TOKEN}

    plan_text = portl("plan", "job.yaml", env=env)
    plan_json = portl("plan", "job.yaml", "--format", "json", env=env)
    run = portl("run", "job.yaml", "--log-format", "json", env=env)
    shown = portl("runs", "show", run.report["run_id"], env=env)

    for result in (plan_text, plan_json, run, shown):
        assert result.code == 0, result.log
        assert TOKEN not in result.output, result.log
    assert "Authorization=**********" in plan_text.stdout, plan_text.log
    # The secret did reach the server, on both calls.
    assert [r.headers.get("Authorization") for r in http_server.requests] == [f"Bearer {TOKEN}"] * 2
    assert [r.headers.get("X-Api-Key") for r in http_server.requests] == [TOKEN] * 2
    assert json.loads(http_server.requests[1].body) == {"text": "notify: 2 inserted"}


def test_secret_echoed_back_in_a_hook_error_is_masked(portl, write, http_server):
    http_server.status = 403
    http_server.body = f"forbidden for Bearer {TOKEN}".encode()
    _hook_job(write, http_server.url + "/runs", '{Authorization: "Bearer ${env:SECRET_TOKEN}"}')

    result = portl("run", "job.yaml", "--log-format", "json", env={"SECRET_TOKEN": TOKEN})

    assert_clean_failure(result, 1)
    assert "hook before_job[0] (http)" in result.stderr and "403" in result.stderr, result.log
    assert TOKEN not in result.output, result.log


def test_secret_in_an_http_hook_url_query_is_masked_in_the_plan(portl, write, http_server):
    _hook_job(write, http_server.url + "/runs?token=${env:SECRET_TOKEN}", "{}")
    env = {"SECRET_TOKEN": TOKEN}

    plan_text = portl("plan", "job.yaml", env=env)
    plan_json = portl("plan", "job.yaml", "--format", "json", env=env)

    for result in (plan_text, plan_json):
        assert result.code == 0, result.log
        assert TOKEN not in result.output, result.log


# --- every example -------------------------------------------------------------------------------

FILE_CONNECTORS = {"csv", "tsv", "parquet", "jsonl", "sqlite"}


def _example_jobs(path: Path) -> list[dict]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return doc["jobs"] if "jobs" in doc else ([doc] if "source" in doc else [])


EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*.yaml") if ".portl" not in p.parts and _example_jobs(p))


def _needs_a_server(job: dict) -> str | None:
    """Why a job cannot run here (a database server that may be missing, or an HTTP hook), or None.
    With PORTL_REQUIRE_SERVICES=1 the database servers are there, so such jobs run."""
    for side in ("source", "destination"):
        connector = job.get(side)
        kind = connector.get("type") if isinstance(connector, dict) else None
        if kind is not None and kind not in FILE_CONNECTORS and os.environ.get("PORTL_REQUIRE_SERVICES") != "1":
            return f"its {side} is {kind}"
    for hooks in (job.get("hooks") or {}).values():
        for hook in hooks if isinstance(hooks, list) else [hooks]:
            if isinstance(hook, dict) and hook.get("type") == "http":
                return "it calls an HTTP hook"
    return None


def _job_args(job: dict, jobs: list[dict]) -> list[str]:
    return ["--job", job["name"]] if len(jobs) > 1 else []


def test_there_is_at_least_one_example():
    assert EXAMPLE_FILES, f"no job files under {EXAMPLES}"


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_plans_without_errors(portl, tmp_path, example):
    copy_example(example.parent, tmp_path)
    relative = str(example.relative_to(EXAMPLES.parent))
    jobs = _example_jobs(example)

    for job in jobs:
        result = portl("plan", relative, "--format", "json", *_job_args(job, jobs))
        assert result.code == 0, result.log
        plan = json.loads(result.stdout)
        assert plan["errors"] == [], result.log
        assert plan["mapping"], result.log


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_runs_and_its_counts_add_up(portl, tmp_path, example):
    jobs = _example_jobs(example)
    reasons = [r for r in (_needs_a_server(j) for j in jobs) if r]
    if reasons:
        pytest.skip(f"{example.name} needs a server: {reasons[0]}")
    copy_example(example.parent, tmp_path)
    relative = str(example.relative_to(EXAMPLES.parent))

    for job in jobs:
        result = portl("run", relative, "--log-format", "json", *_job_args(job, jobs))
        assert result.code == 0, result.log
        assert result.report["status"] == "succeeded"
        assert result.report["counts"]["read"] > 0
        assert_balanced(result.report["counts"])
