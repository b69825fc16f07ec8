"""Flows end to end, as a user runs them: the ``portl`` command on examples/flow_a.yaml and
examples/flow_b.yaml, against the real PostgreSQL, a local HTTP server that records requests and
can be told to fail, and a local Lambda Invoke API that boto3 reaches over HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from examples.flows import functions
from tests.e2e.conftest import EXAMPLES, assert_clean_failure

SNAPSHOT = {
    "resources": "SELECT id, code, source, name, category FROM resources ORDER BY id",
    "resources_versions": "SELECT id, resource_id, version_number, md5, status FROM resources_versions ORDER BY id",
}


class Db:
    """The test's Postgres database, with the example schema."""

    def __init__(self, url: str):
        self.url = url
        self.execute((EXAMPLES / "flows" / "schema.sql").read_text())

    def execute(self, statement: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def snapshot(self) -> dict[str, list[tuple]]:
        return {table: self.execute(query) for table, query in SNAPSHOT.items()}


@pytest.fixture
def db(pg_url) -> Db:
    return Db(pg_url)


@pytest.fixture
def examples(tmp_path) -> Path:
    """A copy of examples/ in the test's folder."""
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("*.db", ".portl", "__pycache__", "*.rejects.csv"))
    return target


@pytest.fixture
def env(db, http_recorder, lambda_server) -> dict[str, str]:
    """The example flows' connections pointed at this test's servers."""
    lambda_server.register("enrich-resource", functions.enrich_resource)
    lambda_server.register("list-resources", functions.list_resources)
    return {"FLOW_PG_URL": db.url, "FLOW_API_URL": http_recorder.base_url, "FLOW_LAMBDA_URL": lambda_server.endpoint_url,
            "FLOW_API_TOKEN": "e2e-token-7f3a"}


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def keys_by_path(recorder) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for request in recorder.requests:
        found.setdefault(request.path, []).append(request.headers["Idempotency-Key"])
    return found


# --- Flow A and Flow B ------------------------------------------------------------------------


def test_flow_a_upserts_resources_versions_them_and_calls_both_apis(portl, examples, db, env, http_recorder, lambda_server):
    result = portl("run", "examples/flow_a.yaml", env=env)

    assert result.code == 0, result.log
    rows = csv_rows(examples / "flows" / "resources.csv")
    resources = db.execute("SELECT id, code, source, name, category FROM resources ORDER BY id")
    assert [(r[1], r[2]) for r in resources] == [(row["code"], row["source"]) for row in rows]
    assert [r[3] for r in resources] == [row["name"].title() for row in rows]
    versions = db.execute("SELECT resource_id, version_number, md5, status FROM resources_versions ORDER BY resource_id")
    assert versions == [(r[0], 1, hashlib.md5((row["content"] or "").encode()).hexdigest(), "draft")
                        for r, row in zip(resources, rows)]
    assert len(lambda_server.invocations_of("enrich-resource")) == len(rows)
    assert [r.path for r in http_recorder.requests] == ["/resources", "/versions"] * len(rows)
    first = http_recorder.requests[0]
    assert first.headers["Authorization"] == "Bearer e2e-token-7f3a"
    assert first.json["row"] == rows[0]
    assert first.json["enrichment"] == functions.enrich_resource(rows[0])
    assert first.json["resource_id"] == resources[0][0] and first.json["created"] is True
    assert http_recorder.requests[1].json == {"resource_id": resources[0][0], "version_number": 1}
    assert "succeeded" in result.stderr and "e2e-token-7f3a" not in result.output


def test_flow_b_takes_its_items_from_the_lambda_output(portl, examples, db, env, http_recorder, lambda_server):
    result = portl("run", "examples/flow_b.yaml", env=env)

    assert result.code == 0, result.log
    listed = functions.list_resources({"source": "feed"})["resources"]
    resources = db.execute("SELECT id, code, name FROM resources ORDER BY id")
    assert [(r[1], r[2]) for r in resources] == [(i["code"], i["name"]) for i in listed]
    assert db.execute("SELECT version_number, md5 FROM resources_versions ORDER BY resource_id") == [
        (1, hashlib.md5(i["content"].encode()).hexdigest()) for i in listed]
    assert [i.payload for i in lambda_server.invocations] == [{"source": "feed"}]
    announced = http_recorder.requests_to("/resources")
    assert [r.json["item"] for r in announced] == listed
    assert [r.json for r in http_recorder.requests_to("/versions")] == [
        {"resource_id": r[0], "version_number": 1} for r in resources]


def test_a_published_latest_version_gets_a_new_version_and_a_draft_is_updated(portl, examples, db, env, http_recorder):
    assert portl("run", "examples/flow_a.yaml", env=env).code == 0
    db.execute("UPDATE resources_versions SET status = 'published' WHERE resource_id = 1")

    result = portl("run", "examples/flow_a.yaml", env=env)

    assert result.code == 0, result.log
    assert db.execute("SELECT resource_id, version_number, status FROM resources_versions WHERE resource_id IN (1, 2) "
                      "ORDER BY resource_id, version_number") == [(1, 1, "published"), (1, 2, "draft"), (2, 1, "draft")]
    assert http_recorder.requests_to("/versions")[-5].json == {"resource_id": 1, "version_number": 2}


def test_flow_b_versions_like_flow_a_a_draft_is_updated_and_a_published_one_gets_a_new_version(
        portl, examples, db, env, http_recorder):
    assert portl("run", "examples/flow_b.yaml", env=env).code == 0
    [first, second, third] = [r[0] for r in db.execute("SELECT id FROM resources ORDER BY id")]
    db.execute("UPDATE resources_versions SET status = 'published' WHERE resource_id = %s", (first,))
    db.execute("UPDATE resources_versions SET md5 = 'stale', status = 'review' WHERE resource_id = %s", (second,))
    http_recorder.reset()

    result = portl("run", "examples/flow_b.yaml", env=env)

    assert result.code == 0, result.log
    listed = {i["code"]: hashlib.md5(i["content"].encode()).hexdigest() for i in functions.CATALOG}
    codes = dict(db.execute("SELECT id, code FROM resources"))
    versions = db.execute("SELECT resource_id, version_number, md5, status FROM resources_versions ORDER BY resource_id, version_number")
    assert versions == [
        (first, 1, listed[codes[first]], "published"), (first, 2, listed[codes[first]], "draft"),
        (second, 1, listed[codes[second]], "draft"),
        (third, 1, listed[codes[third]], "draft"),
    ]
    assert [r.json for r in http_recorder.requests_to("/versions")] == [
        {"resource_id": first, "version_number": 2}, {"resource_id": second, "version_number": 1},
        {"resource_id": third, "version_number": 1}]


# --- failure, re-runs, retries -----------------------------------------------------------------


def test_a_database_failure_on_the_last_item_rolls_back_everything(portl, examples, db, env, http_recorder):
    assert portl("run", "examples/flow_a.yaml", env=env).code == 0
    before = db.snapshot()
    data = examples / "flows" / "resources.csv"
    data.write_text(data.read_text().replace("R-001", "R-009") + ",catalog,nameless,no code\n", encoding="utf-8")

    result = portl("run", "examples/flow_a.yaml", env=env)

    assert_clean_failure(result, 1)
    assert db.snapshot() == before
    message = result.stderr
    assert "step upsert_resource (db.upsert) failed on item 5 (key 'catalog:')" in message
    assert 'INSERT INTO "resources" ("code", "source", "name", "category", "updated_at")' in message
    assert "params: code=None, source='catalog'" in message
    assert "null value in column" in message and "code" in message
    assert "The transaction was rolled back" in message


def test_running_the_same_input_again_changes_nothing_and_resends_the_same_keys(portl, examples, db, env, http_recorder):
    assert portl("run", "examples/flow_a.yaml", env=env).code == 0
    first_keys = keys_by_path(http_recorder)
    before = db.snapshot()
    http_recorder.reset()

    result = portl("run", "examples/flow_a.yaml", env=env)

    assert result.code == 0, result.log
    after = db.snapshot()
    assert [r[:3] for r in after["resources"]] == [r[:3] for r in before["resources"]]
    assert after["resources_versions"] == before["resources_versions"]
    assert keys_by_path(http_recorder) == first_keys
    assert len(set(first_keys["/resources"])) == 5


def test_two_503_answers_then_success_shows_three_attempts_in_the_log(portl, examples, db, env, http_recorder):
    http_recorder.fail_next(2, 503)

    result = portl("run", "examples/flow_a.yaml", "--log-format", "json", env=env)

    assert result.code == 0, result.log
    attempts = [e for e in result.events if e["event"] == "call_attempt" and e["step_id"] == "announce" and e["idx"] == 0]
    assert [(e["details"]["attempt"], e["details"]["outcome"], e["details"]["status"]) for e in attempts] == [
        (1, "retry", 503), (2, "retry", 503), (3, "ok", 200)]
    assert all(set(e) == {"ts", "level", "run_id", "step_id", "idx", "event", "details"} for e in result.events[:-1])
    first_item = http_recorder.requests_to("/resources")[:3]
    assert [r.status for r in first_item] == [503, 503, 200]
    assert len({r.headers["Idempotency-Key"] for r in first_item}) == 1
    assert result.report["status"] == "succeeded"
    assert len(db.execute("SELECT 1 FROM resources")) == 5


def test_a_lambda_function_error_fails_the_run_naming_the_step_item_and_the_functions_error(portl, examples, db, env, lambda_server):
    def broken(event):
        raise ValueError(f"no enrichment for {event['code']}")

    lambda_server.register("enrich-resource", broken)

    result = portl("run", "examples/flow_a.yaml", env=env)

    assert_clean_failure(result, 1)
    assert "attempt 1/3 failed enrich item 0 lambda enrich-resource: failed in the function (Unhandled): ValueError" in result.stderr
    assert ("error: step enrich (lambda.invoke) failed on item 0 (key 'catalog:R-001'): lambda.invoke enrich-resource failed "
            "in the function (Unhandled): ValueError: no enrichment for R-001 (not retried") in result.stderr
    assert len(lambda_server.invocations_of("enrich-resource")) == 1
    assert db.execute("SELECT count(*) FROM resources") == [(0,)]


# --- the outbox --------------------------------------------------------------------------------


def outbox_variant(examples: Path) -> Path:
    """Flow A with its two API calls queued in the outbox instead of sent."""
    text = (examples / "flow_a.yaml").read_text()
    for step in ("announce", "publish"):
        head = f"      - id: {step}\n        type: api.call\n"
        start = text.index(head)
        end = text.find("\n      - id:", start + len(head))
        block = text[start + len(head): len(text) if end < 0 else end]
        call = "".join("  " + line if line.strip() else line for line in block.splitlines(keepends=True))
        text = text[:start] + f"      - id: {step}\n        type: outbox.enqueue\n        call:\n          type: api.call\n" + call + text[start + len(head) + len(block):]
    path = examples / "flow_a_outbox.yaml"
    path.write_text(text.replace("name: flow_a\n", "name: flow_a_outbox\n"), encoding="utf-8")
    return path


def test_killed_after_commit_the_outbox_drain_delivers_each_call_exactly_once(portl, examples, db, env, http_recorder):
    outbox_variant(examples)

    crashed = portl("run", "examples/flow_a_outbox.yaml", "--log-format", "json", env={**env, "PORTL_CRASH_AFTER_COMMIT": "1"})

    assert crashed.code == -9, crashed.log
    assert [e["event"] for e in crashed.events][-1] == "committed"
    assert http_recorder.requests == []
    assert len(db.execute("SELECT 1 FROM resources")) == 5
    queued = db.execute("SELECT dedup_key, step_id FROM portl_outbox WHERE status = 'pending' ORDER BY id")
    assert len(queued) == 10

    drained = portl("outbox", "drain", "examples/flow_a_outbox.yaml", env=env)
    again = portl("outbox", "drain", "examples/flow_a_outbox.yaml", env=env)

    assert drained.code == 0 and again.code == 0, drained.log + again.log
    delivered = [(r.path, r.headers["Idempotency-Key"]) for r in http_recorder.requests]
    assert sorted(key for _, key in delivered) == sorted(key for key, _ in queued)
    assert len(set(delivered)) == len(delivered) == 10
    assert [r.path for r in http_recorder.requests].count("/versions") == 5
    assert db.execute("SELECT status, count(*) FROM portl_outbox GROUP BY status") == [("delivered", 10)]


def test_without_a_crash_the_run_delivers_its_queued_calls_after_commit(portl, examples, db, env, http_recorder):
    outbox_variant(examples)

    result = portl("run", "examples/flow_a_outbox.yaml", env=env)

    assert result.code == 0, result.log
    assert len(http_recorder.requests) == 10
    assert "outbox: 10 delivered, 0 pending, 0 dead" in result.stderr


# --- plan, validate, runs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["template.yaml", "flow_a.yaml", "flow_b.yaml"])
def test_the_example_flows_validate_and_plan(portl, examples, name, http_recorder, lambda_server):
    env = {"FLOW_API_URL": http_recorder.base_url, "FLOW_LAMBDA_URL": lambda_server.endpoint_url}

    validated = portl("validate", f"examples/{name}", env=env)
    planned = portl("plan", f"examples/{name}", "--format", "json", env=env)
    text = portl("run", f"examples/{name}", "--dry-run", env=env)

    assert validated.code == 0 and "is valid" in validated.stdout, validated.log
    assert planned.code == 0, planned.log
    plan = json.loads(planned.stdout)
    assert plan["errors"] == [] and plan["version"] == 2
    assert any(e["kind"] == "sql" for e in plan["entries"]) and any(e["kind"] == "http" for e in plan["entries"])
    assert text.code == 0 and "nothing has been called or written" in text.stdout, text.log
    assert http_recorder.requests == [] and lambda_server.invocations == []


def test_a_missing_path_fails_the_dry_run_with_the_step_and_the_path(portl, examples):
    flow = examples / "flow_a.yaml"
    flow.write_text(flow.read_text().replace('name: "{{ steps.enrich.title }}"', 'name: "{{ row.titel }}"'), encoding="utf-8")

    result = portl("plan", "examples/flow_a.yaml")

    assert result.code == 2, result.log
    assert "step upsert_resource on item 0 (key 'catalog:R-001'): mapping.name: 'row.titel' is undefined " \
           "(row has: code, source, name, content)" in result.stdout


def test_a_missing_steps_path_fails_the_dry_run_naming_the_step_item_and_path(portl, examples):
    flow = examples / "flow_a.yaml"
    flow.write_text(flow.read_text().replace('content: "{{ row.content }}"', 'content: "{{ steps.read_csv.rows[idx].contents }}"'),
                    encoding="utf-8")

    result = portl("plan", "examples/flow_a.yaml", "--format", "json")

    assert result.code == 2, result.log
    errors = json.loads(result.stdout)["errors"]
    assert errors[0] == ("step enrich on item 0 (key 'catalog:R-001'): payload.content: 'steps.read_csv.rows[0].contents' "
                         "is undefined (steps.read_csv.rows[0] has: code, source, name, content)")
    assert len(errors) == 3  # one for each item the dry-run shows


def test_a_flow_without_version_2_is_told_to_add_it(portl, examples):
    flow = examples / "flow_a.yaml"
    flow.write_text(flow.read_text().replace("version: 2\n", ""), encoding="utf-8")

    result = portl("validate", "examples/flow_a.yaml")

    assert_clean_failure(result, 2)
    assert "1 problem found" in result.stderr
    assert "this file has steps: but no version; a flow of steps needs version: 2" in result.stderr


def test_flow_runs_are_listed_in_the_ledger(portl, examples, db, env):
    assert portl("run", "examples/flow_b.yaml", env=env).code == 0

    runs = portl("runs")

    assert runs.code == 0 and "flow_b" in runs.stdout and "succeeded" in runs.stdout


def test_options_of_migration_jobs_are_refused_for_flows(portl, examples):
    result = portl("run", "examples/flow_a.yaml", "--resume")

    assert_clean_failure(result, 2)
    assert "--resume does not apply to flows" in result.stderr
