"""Loading flow files (version: 2): the models, the rules across steps, and where problems are."""

from __future__ import annotations

import json

import pytest

from portl.errors import ConfigError
from portl.spec.flow import load_flow
from portl.spec.flow_models import DbUpsertStep, GroupStep, iter_steps
from portl.spec.loader import file_version, load_job

UPSERT = """
- id: upsert
  type: db.upsert
  table: resources
  key: [code]
  mapping: {code: "A", name: "{{ job }}"}
"""


def test_a_valid_flow_loads_with_its_steps_and_database(flow_file):
    loaded = load_flow(flow_file(UPSERT))

    assert loaded.name == "flow"
    assert loaded.database == "db"
    step = loaded.flow.steps[0]
    assert isinstance(step, DbUpsertStep)
    assert (step.table, step.key, step.returning) == ("resources", ["code"], ["id"])


def test_steps_nested_in_groups_and_conditionals_are_walked_in_document_order(flow_file):
    loaded = load_flow(flow_file("""
        - id: outer
          type: group
          batch: {from: "[1, 2]", as: n}
          steps:
            - {id: first, type: db.query_one, sql: SELECT 1}
            - id: choose
              type: conditional
              when: "n > 1"
              then: [{id: big, type: db.query_one, sql: SELECT 2}]
              else: [{id: small, type: db.query_one, sql: SELECT 3}]
        - {id: last, type: db.query_one, sql: SELECT 4}
    """))

    walked = [(s.id, path, batched) for s, path, batched in iter_steps(loaded.flow.steps)]
    assert [w[0] for w in walked] == ["outer", "first", "choose", "big", "small", "last"]
    assert walked[3][1] == ("steps", 0, "steps", 1, "then", 0)
    assert [w[2] for w in walked] == [True, True, True, True, True, False]
    assert isinstance(loaded.flow.steps[0], GroupStep)


def test_an_unknown_step_type_names_the_closest_and_every_valid_type(flow_file, problems_of):
    path = flow_file("- {id: read, type: csv.reed, path: x.csv}")

    [problem] = problems_of(load_flow, path)

    assert problem.line == 7 and problem.column == 22
    assert "unknown step type 'csv.reed'; did you mean 'csv.read'?" in problem.message
    for kind in ("db.upsert", "db.query_one", "api.call", "lambda.invoke", "conditional", "outbox.enqueue", "migrate"):
        assert kind in problem.message


def test_an_unknown_key_of_a_step_is_located_and_gets_the_closest_valid_key(flow_file, problems_of):
    path = flow_file("- {id: q, type: db.query_one, sql: SELECT 1, parms: {a: 1}}")

    [problem] = problems_of(load_flow, path)

    assert (problem.line, problem.column) == (7, 48)
    assert problem.message == "unknown key 'parms' in steps[0]; did you mean 'params'?"


def test_every_problem_of_a_flow_is_reported_at_once(flow_file, problems_of):
    path = flow_file("""
        - {id: a, type: db.query_one}
        - {id: b, type: api.call, url: "http://x", method: FETCH}
        - {id: c, type: db.upsert, table: t, key: [k], mapping: {v: 1}}
    """)

    problems = problems_of(load_flow, path)

    text = "\n".join(p.message for p in problems)
    assert "missing required key 'sql' in steps[0]" in text
    assert "steps[1].method: expected one of GET, POST, PUT, PATCH or DELETE, got 'FETCH'" in text
    assert "key column k has no value in mapping" in text
    assert [p.line for p in problems] == [7, 8, 9]


def test_retry_on_a_database_step_is_refused_with_the_reason(flow_file, problems_of):
    path = flow_file("- {id: q, type: db.query_one, sql: SELECT 1, retry: {max_attempts: 2}}")

    [problem] = problems_of(load_flow, path)

    assert "retry applies to api.call and lambda.invoke steps, not db.query_one" in problem.message
    assert "aborts the flow's transaction" in problem.message


def test_an_unknown_retry_class_is_named(flow_file, problems_of):
    path = flow_file("- {id: c, type: api.call, url: 'http://x', retry: {retry_on: [5xx, 50x]}}")

    [problem] = problems_of(load_flow, path)

    assert "steps[0].retry.retry_on: '50x' is not one of 5xx, 4xx, timeout, connection" in problem.message


def test_step_ids_must_be_unique_and_the_second_one_is_located(flow_file, problems_of):
    path = flow_file("""
        - {id: q, type: db.query_one, sql: SELECT 1}
        - {id: q, type: db.query_one, sql: SELECT 2}
    """)

    problems = problems_of(load_flow, path)

    assert any(p.line == 8 and "step id 'q' is already used at steps[0]" in p.message for p in problems)


def test_a_save_as_that_clashes_with_another_result_name_is_refused(flow_file, problems_of):
    path = flow_file("""
        - {id: a, type: db.query_one, sql: SELECT 1}
        - {id: b, type: db.query_one, sql: SELECT 2, save_as: a}
    """)

    [problem] = problems_of(load_flow, path)

    assert "the result name 'a' is already used by the step at steps[0]" in problem.message


def test_a_step_naming_a_connection_of_the_wrong_kind_is_refused(flow_file, problems_of):
    path = flow_file("- {id: call, type: api.call, connection: db, path: /x}")

    [problem] = problems_of(load_flow, path)

    assert problem.message == "steps[0].connection: a api.call step needs an http connection, but 'db' is of type postgres"


def test_an_unknown_connection_name_gets_the_closest_one(flow_file, problems_of):
    path = flow_file("- {id: call, type: api.call, connection: apii, path: /x}")

    [problem] = problems_of(load_flow, path)

    assert "unknown connection 'apii'; did you mean 'api'?" in problem.message


def test_database_steps_without_a_database_connection_are_refused(write, problems_of):
    path = write("f.yaml", """
        version: 2
        steps:
          - {id: q, type: db.query_one, sql: SELECT 1}
    """)

    [problem] = problems_of(load_flow, path)

    assert "the flow has database steps but no database connection" in problem.message


def test_two_database_connections_need_transaction_connection(flow_file, problems_of):
    path = flow_file("- {id: q, type: db.query_one, sql: SELECT 1}",
                     extra="  other: {type: mysql, url: 'mysql://root@127.0.0.1/x'}\ntransaction: {scope: db}\n")

    [problem] = problems_of(load_flow, path)

    assert "the flow has 2 database connections (db, other)" in problem.message
    assert "transaction: {connection: <name>}" in problem.message


def test_a_db_step_on_another_database_than_the_transaction_is_refused(flow_file, problems_of):
    extra = "  other: {type: mysql, url: 'mysql://root@127.0.0.1/x'}\ntransaction: {connection: db}\n"
    path = flow_file("- {id: q, type: db.query_one, connection: other, sql: SELECT 1}", extra=extra)

    [problem] = problems_of(load_flow, path)

    assert "uses database connection 'other', but the flow's transaction is on 'db'" in problem.message


def test_a_lambda_step_needs_a_lambda_connection(write, problems_of):
    path = write("f.yaml", """
        version: 2
        steps:
          - {id: f, type: lambda.invoke, function: enrich}
    """)

    [problem] = problems_of(load_flow, path)

    assert problem.message == "step f needs a lambda connection; add one under connections (type: lambda)"


def test_api_call_needs_url_or_path_and_path_needs_a_connection(flow_file, problems_of):
    path = flow_file("""
        - {id: a, type: api.call}
        - {id: b, type: api.call, path: /x}
    """)

    problems = problems_of(load_flow, path)

    assert "give url (a whole URL) or path" in problems[0].message
    assert "path needs a connection" in problems[1].message


def test_a_conditional_without_branches_is_refused(flow_file, problems_of):
    path = flow_file("- {id: c, type: conditional, when: 'true'}")

    [problem] = problems_of(load_flow, path)

    assert "a conditional needs steps in then, else, or both" in problem.message


def test_connections_substitute_environment_variables(flow_file):
    path = flow_file("- {id: call, type: api.call, connection: web, path: /x}",
                     extra="  web: {type: http, base_url: '${env:FLOW_TEST_API:-http://127.0.0.1:9/fallback}'}\n")

    assert load_flow(path, environ={"FLOW_TEST_API": "http://api.example.com"}).connection("web").base_url == "http://api.example.com"
    assert load_flow(path, environ={}).connection("web").base_url == "http://127.0.0.1:9/fallback"


def test_an_unset_environment_variable_in_a_connection_is_a_located_problem(flow_file, problems_of):
    path = flow_file("- {id: call, type: api.call, connection: web, path: /x}",
                     extra="  web: {type: http, base_url: '${env:FLOW_TEST_UNSET}'}\n")

    [problem] = problems_of(load_flow, path, environ={})

    assert problem.line == 6
    assert "environment variable FLOW_TEST_UNSET is not set (used in connections.web.base_url)" in problem.message


def test_a_connection_missing_from_the_file_is_taken_from_the_connections_file(write):
    write("connections.yaml", """
        connections:
          warehouse: {type: postgres, url: "postgresql://u@127.0.0.1:1/w"}
    """)
    path = write("flow.yaml", """
        version: 2
        transaction: {connection: warehouse}
        steps:
          - {id: q, type: db.query_one, sql: SELECT 1}
    """)

    loaded = load_flow(path)

    assert loaded.database == "warehouse"
    assert loaded.connection("warehouse").database_name() == "w"


def test_a_validation_error_never_shows_a_secret_from_the_environment(flow_file, problems_of):
    path = flow_file("- {id: q, type: db.query_one, sql: SELECT 1}",
                     extra="  aws2: {type: lambda, secret_access_key: '${env:FLOW_SECRET}', region: 5}\n")

    problems = problems_of(load_flow, path, environ={"FLOW_SECRET": "very-secret-value"})

    assert problems and "very-secret-value" not in "\n".join(p.message for p in problems)


def test_an_inline_migrate_job_is_validated_with_positions_inside_the_flow(flow_file, problems_of):
    path = flow_file("""
        - id: archive
          type: migrate
          job:
            source: {type: csv, path: in.csv}
            destination: {type: sqlite, path: out.db, tabel: t}
    """)

    [problem] = problems_of(load_flow, path)

    assert problem.line == 11
    assert "unknown key 'tabel'" in problem.message and "did you mean 'table'?" in problem.message


def test_an_inline_migrate_job_may_name_the_flows_connections(flow_file):
    path = flow_file("""
        - id: archive
          type: migrate
          job: {source: {type: csv, path: in.csv}, destination: {connection: db, table: archive}}
    """)

    job = load_flow(path).jobs["archive"]

    assert job.job.destination.type == "postgres" and job.job.destination.table == "archive"
    assert job.name == "flow.archive"


def test_a_migrate_job_file_is_loaded_relative_to_the_flow(flow_file, write):
    write("jobs/load.yaml", "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n")
    path = flow_file("- {id: load, type: migrate, job: jobs/load.yaml}")

    assert load_flow(path).jobs["load"].name == "load"


def test_file_version_tells_flows_from_jobs(flow_file, write):
    assert file_version(flow_file(UPSERT)) == 2
    assert file_version(write("job.yaml", "source: {type: csv, path: a.csv}\n")) == 1
    assert file_version(write("broken.yaml", "version: [\n")) == 1


def test_load_job_refuses_a_flow_and_says_what_it_is(flow_file, problems_of):
    [problem] = problems_of(load_job, flow_file(UPSERT))

    assert "version 2 flow of steps, not a migration job" in problem.message
    assert problem.line == 1


def test_steps_under_another_version_than_2_are_one_problem_naming_version_2(write, problems_of):
    path = write("f.yaml", """
        version: 3
        steps:
          - {id: q, type: db.query, sql: SELECT 1}
    """)

    [problem] = problems_of(load_job, path)

    assert problem.message == ("this file has steps: but version: 3; a flow of steps needs version: 2 "
                               "(a migration job has a source and a destination instead)")
    assert (problem.line, problem.column) == (1, 10)


def test_an_empty_flow_file_is_refused(write):
    with pytest.raises(ConfigError, match="the flow file is empty"):
        load_flow(write("f.yaml", "# nothing\n"))


def test_the_flow_json_schema_covers_every_step_type_and_connection_type():
    from portl.spec.flow import flow_json_schema
    from portl.spec.flow_models import STEP_TYPES

    schema = flow_json_schema()

    assert schema["title"] == "Portl flow file (version 2)"
    assert schema["properties"]["version"]["const"] == 2
    text = json.dumps(schema)
    for kind in (*STEP_TYPES, "http", "lambda", "postgres", "mysql"):
        assert f'"{kind}"' in text, kind


def test_an_environment_reference_in_a_step_is_refused_with_the_fix(flow_file, problems_of):
    path = flow_file("- {id: c, type: api.call, connection: api, path: /x, headers: {Authorization: 'Bearer ${env:TOKEN}'}}")

    [problem] = problems_of(load_flow, path, environ={"TOKEN": "t"})

    assert problem.line == 7
    assert "steps[0].headers.Authorization: ${env:...} works in connections only" in problem.message
