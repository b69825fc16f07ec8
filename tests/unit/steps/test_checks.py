"""Template problems found before anything runs, located in the flow file."""

from __future__ import annotations

from textwrap import dedent

from portl.spec.flow import load_flow
from portl.steps.checks import template_problems

READ = "- {id: read_csv, type: csv.read, path: r.csv}\n"


def problems(path: str) -> list:
    return template_problems(load_flow(path))


def test_a_valid_flow_has_no_template_problems(flow_file):
    path = flow_file(READ + dedent("""
        - id: up
          type: db.upsert
          batch: {from: steps.read_csv.rows, as: row, key: "{{ row.code }}"}
          when: "row.code != ''"
          table: t
          key: [code]
          mapping: {code: "{{ row.code }}", n: "{{ idx + 1 }}", k: "{{ item_key }}", h: "{{ md5(row) }}"}
        - {id: after, type: db.query_one, sql: "SELECT :n", params: {n: "{{ steps.up | length }}"}}
    """))

    assert problems(path) == []


def test_a_template_syntax_error_is_located_at_its_value(flow_file):
    path = flow_file(READ + "- {id: q, type: db.query_one, sql: 'SELECT :a', params: {a: '{{ steps.read_csv.count + }}'}}\n")

    [problem] = problems(path)

    assert (problem.line, problem.column) == (8, 63)
    assert problem.message.startswith("steps[1].params.a: the template is not valid:")


def test_an_unknown_filter_is_found_before_running(flow_file):
    path = flow_file(READ + "- {id: q, type: db.query_one, sql: 'SELECT :a', params: {a: '{{ steps.read_csv.count | lenght }}'}}\n")

    [problem] = problems(path)

    assert "No filter named 'lenght'" in problem.message


def test_a_reference_to_an_unknown_step_gets_the_closest_name(flow_file):
    path = flow_file(READ + "- {id: q, type: db.query_one, sql: 'SELECT :a', params: {a: '{{ steps.read_cvs.count }}'}}\n")

    [problem] = problems(path)

    assert problem.message == "steps[1].params.a: steps.read_cvs is not the result of any step; did you mean 'read_csv'?"


def test_a_reference_to_a_later_step_is_refused(flow_file):
    path = flow_file("""
        - {id: first, type: db.query_one, sql: 'SELECT :a', params: {a: "{{ steps.second.x }}"}}
        - {id: second, type: db.query_one, sql: SELECT 1}
    """)

    [problem] = problems(path)

    assert "steps.second comes from a step that runs later" in problem.message


def test_a_step_cannot_read_its_own_result(flow_file):
    path = flow_file("- {id: q, type: db.query_one, sql: 'SELECT :a', params: {a: '{{ steps.q }}'}}")

    [problem] = problems(path)

    assert "steps.q is this step's own result" in problem.message


def test_a_batch_item_name_is_unknown_outside_its_batch(flow_file):
    path = flow_file(READ + dedent("""
        - {id: each, type: db.query_one, sql: SELECT 1, batch: {from: steps.read_csv.rows, as: row}}
        - {id: later, type: db.query_one, sql: 'SELECT :c', params: {c: "{{ row.code }}"}}
    """))

    [problem] = problems(path)

    assert problem.message.startswith("steps[2].params.c: 'row' is undefined")


def test_idx_outside_a_batch_says_where_it_exists(flow_file):
    path = flow_file("- {id: q, type: db.query_one, sql: 'SELECT :i', params: {i: '{{ idx }}'}}")

    [problem] = problems(path)

    assert "(idx and item_key exist only inside a batch)" in problem.message


def test_a_misspelt_variable_gets_the_closest_name(flow_file):
    path = flow_file(READ + "- {id: q, type: db.query_one, sql: 'SELECT :a', params: {a: '{{ stesp.read_csv }}'}}\n")

    [problem] = problems(path)

    assert "'stesp' is undefined; did you mean 'steps'?" in problem.message


def test_the_batch_source_cannot_use_its_own_item(flow_file):
    path = flow_file("- {id: q, type: db.query_one, sql: SELECT 1, batch: {from: row.items, as: row}}")

    [problem] = problems(path)

    assert problem.message.startswith("steps[0].batch.from: 'row' is undefined")


def test_children_of_a_batched_group_see_its_item(flow_file):
    path = flow_file(READ + dedent("""
        - id: g
          type: group
          batch: {from: steps.read_csv.rows, as: row}
          steps:
            - id: c
              type: conditional
              when: "row.code == 'A'"
              then: [{id: q, type: db.query_one, sql: 'SELECT :c', params: {c: "{{ row.code }}"}}]
    """))

    assert problems(path) == []


def test_sql_parameters_must_match_params(flow_file):
    path = flow_file("- {id: q, type: db.query_one, sql: 'SELECT :a, :b', params: {a: 1, c: 2}}")

    found = problems(path)

    assert [p.message for p in found] == [
        "steps[0].sql: the SQL uses :b but params gives no value for it",
        "params.c is not used in the SQL (write :c where its value goes)",
    ]


def test_templates_of_calls_and_outbox_calls_are_checked(flow_file):
    path = flow_file("""
        - {id: a, type: api.call, connection: api, path: "/r/{{ steps.nope }}"}
        - {id: o, type: outbox.enqueue, call: {type: lambda.invoke, function: f, payload: {x: "{{ steps.none }}"}}}
    """)

    found = problems(path)

    assert [p.message.split(":")[0] for p in found] == ["steps[0].path", "steps[1].call.payload.x"]
