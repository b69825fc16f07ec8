"""The dry-run of a flow: what it shows, what it finds, and that it calls and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from textwrap import dedent

import pytest

from portl.spec.flow import load_flow
from portl.steps.plan import plan_flow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ROWS = "code,source,name\nA1,crm,Alpha\nB2,crm,Beta\nC3,erp,Gamma\nD4,erp,Delta\nE5,erp,Epsilon\n"
READ = "- {id: read_csv, type: csv.read, path: r.csv}\n"
UPSERT = dedent("""
    - id: up
      type: db.upsert
      batch: {from: steps.read_csv.rows, as: row, key: "{{ row.source }}:{{ row.code }}"}
      table: resources
      key: [code, source]
      mapping: {code: "{{ row.code }}", source: "{{ row.source }}", name: "{{ row.name | upper }}"}
""")


@pytest.fixture
def flow(flow_file, write):
    def _flow(steps: str, extra: str = "") -> str:
        write("r.csv", ROWS)
        return flow_file(steps, extra)
    return _flow


def entries(plan, kind=None):
    return [e for e in plan.entries if kind is None or e.kind == kind]


def test_the_dry_run_shows_each_statement_with_its_bound_parameters(flow):
    plan = plan_flow(load_flow(flow(READ + UPSERT)), preview_items=2)

    sql = entries(plan, "sql")
    assert [e.idx for e in sql] == [0, 1]
    assert sql[0].shown["sql"] == [
        'INSERT INTO "resources" ("code", "source", "name") VALUES (:code, :source, :name) ON CONFLICT ("code", "source") '
        'DO UPDATE SET "name" = EXCLUDED."name" RETURNING "id", (xmax = 0) AS "was_inserted"']
    assert sql[1].shown["params"] == {"code": "B2", "source": "crm", "name": "BETA"}
    assert plan.errors == []


def test_the_dry_run_reads_the_csv_and_says_how_many_items_it_shows(flow):
    plan = plan_flow(load_flow(flow(READ + UPSERT)), preview_items=3)

    [read] = entries(plan, "read")
    assert (read.shown["rows"], read.shown["columns"]) == (5, ["code", "source", "name"])
    [batch] = entries(plan, "batch")
    assert batch.notes == ["5 items; the first 3 are shown"]
    assert len(entries(plan, "sql")) == 3


def test_query_results_are_placeholders_in_later_templates(flow):
    plan = plan_flow(load_flow(flow(READ + UPSERT + dedent("""
        - id: latest
          type: db.query_one
          batch: {from: steps.read_csv.rows, as: row}
          sql: SELECT id FROM versions WHERE resource_id = :rid
          params: {rid: "{{ steps.up[idx].id }}"}
    """))), preview_items=1)

    latest = [e for e in entries(plan, "sql") if e.step_id == "latest"]
    assert latest[0].shown["params"] == {"rid": "⟨up.id⟩"}


def test_a_missing_path_fails_the_dry_run_naming_the_step_item_and_path(flow):
    steps = READ + UPSERT.replace("{{ row.name | upper }}", "{{ steps.read_csv.rows[idx].nmae }}")

    plan = plan_flow(load_flow(flow(steps)), preview_items=1)

    assert plan.errors == [
        "step up on item 0 (key 'crm:A1'): mapping.name: 'steps.read_csv.rows[0].nmae' is undefined "
        "(steps.read_csv.rows[0] has: code, source, name)"
    ]


def test_a_condition_on_a_query_result_shows_both_branches(flow):
    plan = plan_flow(load_flow(flow(READ + dedent("""
        - {id: q, type: db.query_one, sql: SELECT status FROM t}
        - id: choose
          type: conditional
          when: "steps.q.status == 'published'"
          then: [{id: ins, type: db.insert, table: t, mapping: {status: draft}}]
          else: [{id: upd, type: db.update, table: t, set: {status: draft}, where: {id: "{{ steps.q.id }}"}}]
    """))))

    assert [e.step_id for e in entries(plan, "sql")] == ["q", "ins", "upd"]
    [note] = entries(plan, "note")
    assert "both branches are shown" in note.notes[0]


def test_a_condition_the_dry_run_can_decide_shows_only_the_branch_taken(flow):
    plan = plan_flow(load_flow(flow(READ + dedent("""
        - id: choose
          type: conditional
          batch: {from: steps.read_csv.rows, as: row}
          when: "row.source == 'crm'"
          then: [{id: ins, type: db.insert, table: t, mapping: {code: "{{ row.code }}"}}]
          else: [{id: upd, type: db.update, table: t, set: {code: "{{ row.code }}"}, where: {id: 1}}]
    """))), preview_items=3)

    assert [(e.idx, e.step_id) for e in entries(plan, "sql")] == [(0, "ins"), (1, "ins"), (2, "upd")]


def test_items_from_a_call_result_are_shown_as_one_placeholder_item(flow):
    plan = plan_flow(load_flow(flow(dedent("""
        - {id: fetch, type: lambda.invoke, function: list}
        - id: each
          type: api.call
          batch: {from: steps.fetch.items, as: item}
          connection: api
          path: "/things/{{ item.id }}"
    """))))

    [batch] = entries(plan, "batch")
    assert "known only at run time" in batch.notes[0]
    [call] = entries(plan, "http")
    assert call.shown["request"]["url"] == "http://127.0.0.1:1/v1/things/⟨fetch.items[0].id⟩"


def test_requests_are_shown_with_secrets_masked_and_the_idempotency_key(flow):
    plan = plan_flow(load_flow(flow(READ + dedent("""
        - id: call
          type: api.call
          batch: {from: steps.read_csv.rows, as: row, key: "{{ row.code }}"}
          connection: api
          path: /resources
          query: {token: abc-secret-query, page: 1}
          body: {code: "{{ row.code }}", n: "{{ idx }}"}
    """))), preview_items=1)

    [call] = entries(plan, "http")
    request = call.shown["request"]
    assert request["method"] == "POST" and request["url"] == "http://127.0.0.1:1/v1/resources"
    assert request["headers"]["Authorization"] == "**********"
    assert request["query"] == {"token": "**********", "page": 1}
    assert request["body"] == {"code": "A1", "n": 0}
    assert request["headers"]["Idempotency-Key"] == call.shown["idempotency_key"]
    text = json.dumps(plan.to_dict())
    for secret in ("tok-123456", "s3cret-pw", "secret-key-99", "abc-secret-query"):
        assert secret not in text


def test_the_dry_run_calls_nothing(write, http_recorder, lambda_server):
    write("r.csv", ROWS)
    path = write("flow.yaml", f"""
        version: 2
        connections:
          api: {{type: http, base_url: "{http_recorder.base_url}"}}
          aws: {{type: lambda, endpoint_url: "{lambda_server.endpoint_url}", access_key_id: a, secret_access_key: b}}
        steps:
          - {{id: read_csv, type: csv.read, path: r.csv}}
          - id: g
            type: group
            batch: {{from: steps.read_csv.rows, as: row}}
            steps:
              - {{id: f, type: lambda.invoke, function: enrich, payload: {{code: "{{{{ row.code }}}}"}}}}
              - {{id: c, type: api.call, connection: api, path: /x, body: "{{{{ steps.f }}}}"}}
    """)

    plan = plan_flow(load_flow(path))

    assert plan.errors == []
    assert len(entries(plan, "http")) == 3 and len(entries(plan, "lambda")) == 3
    assert http_recorder.requests == [] and lambda_server.invocations == []


def test_the_dry_run_of_a_migrate_step_shows_its_statements_and_writes_nothing(flow, tmp_path):
    plan = plan_flow(load_flow(flow(dedent("""
        - id: archive
          type: migrate
          job: {source: {type: csv, path: r.csv}, destination: {type: sqlite, path: archive.db, table: archive}}
    """))))

    [migrate] = entries(plan, "migrate")
    assert migrate.shown["destination"] == "archive.db:archive"
    assert any("CREATE TABLE" in s for s in migrate.shown["ddl"])
    assert not (tmp_path / "archive.db").exists()


def test_a_missing_csv_file_is_a_plan_error(flow_file):
    plan = plan_flow(load_flow(flow_file(READ)))

    assert len(plan.errors) == 1 and "r.csv" in plan.errors[0]


@pytest.mark.parametrize("name", ["template.yaml", "flow_a.yaml", "flow_b.yaml"])
def test_the_example_flows_validate_and_plan_without_errors(name, tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.db", ".portl", "__pycache__"))

    plan = plan_flow(load_flow(str(tmp_path / "examples" / name)))

    assert plan.errors == []
    assert entries(plan, "sql") and entries(plan, "http")
    assert not list((tmp_path / "examples").rglob("*.db"))


def test_a_mysql_flow_plans_the_mysql_upsert_and_its_read_back(write):
    write("r.csv", ROWS)
    path = write("flow.yaml", "version: 2\nconnections:\n  db: {type: mariadb, url: 'mysql://root@127.0.0.1:1/shop'}\n"
                              "steps:\n  - {id: read_csv, type: csv.read, path: r.csv}\n" + indent_steps(UPSERT))

    plan = plan_flow(load_flow(path), preview_items=1)

    [upsert] = entries(plan, "sql")
    assert upsert.shown["sql"] == [
        "INSERT INTO `resources` (`code`, `source`, `name`) VALUES (:code, :source, :name) ON DUPLICATE KEY UPDATE `name` = :name",
        "SELECT `id` FROM `resources` WHERE `code` <=> :code AND `source` <=> :source",
    ]


def indent_steps(text: str) -> str:
    return "".join("  " + line if line.strip() else line for line in text.strip("\n").splitlines(keepends=True)) + "\n"
