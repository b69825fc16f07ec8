"""Running flows without a database: batches, conditions, results, calls, events and the ledger.

The HTTP and Lambda endpoints are the local fake servers (tests/fakes); database steps are
covered by tests/integration/test_steps_database.py against the real servers.
"""

from __future__ import annotations

import sqlite3
from textwrap import dedent, indent

import pytest

from portl.errors import StepError
from portl.spec.flow import load_flow
from portl.state.ledger import Ledger
from portl.steps.events import FlowEvents
from portl.steps.idempotency import idempotency_key
from portl.steps.runner import FlowOptions, run_flow

ROWS = "code,source\nA1,crm\nB2,crm\nC3,erp\n"


@pytest.fixture
def flow(write, http_recorder, lambda_server):
    """``flow(steps)``: a flow file with the fake servers as connections ``api`` and ``aws``."""

    def _flow(steps: str, name: str = "flow") -> str:
        write("r.csv", ROWS)
        head = dedent(f"""
            version: 2
            name: {name}
            connections:
              api: {{type: http, base_url: "{http_recorder.base_url}"}}
              aws: {{type: lambda, endpoint_url: "{lambda_server.endpoint_url}", access_key_id: a, secret_access_key: b}}
            steps:
              - {{id: read_csv, type: csv.read, path: r.csv}}
        """).lstrip("\n")
        return write(f"{name}.yaml", head + indent(dedent(steps).strip("\n"), "  ") + "\n")

    return _flow


@pytest.fixture
def run(tmp_path):
    """``run(path)``: run a flow; returns the report and the events it emitted."""

    def _run(path: str, level: str = "debug"):
        seen = []
        options = FlowOptions(state_dir=str(tmp_path / "state"), events=FlowEvents([seen.append], level=level))
        report = run_flow(load_flow(path), options)
        return report, seen

    return _run


def test_batch_results_are_index_aligned_lists_with_none_for_skipped_items(flow, run, http_recorder):
    path = flow("""
        - id: call
          type: api.call
          batch: {from: steps.read_csv.rows, as: row}
          when: "row.source == 'crm'"
          connection: api
          path: "/r/{{ row.code }}"
        - id: summary
          type: api.call
          connection: api
          path: /summary
          body: {statuses: "{{ [steps.call[0].status, steps.call[1].status, steps.call[2]] }}"}
    """)

    report, _ = run(path)

    assert [r.path for r in http_recorder.requests] == ["/r/A1", "/r/B2", "/summary"]
    assert http_recorder.requests[-1].json == {"statuses": [200, 200, None]}
    call = next(s for s in report.steps if s.id == "call")
    assert (call.runs, call.skipped) == (2, 1)


def test_a_step_whose_when_is_false_is_skipped_and_its_result_is_none(flow, run, http_recorder):
    path = flow("""
        - {id: maybe, type: api.call, connection: api, path: /maybe, when: "steps.read_csv.count > 10"}
        - {id: after, type: api.call, connection: api, path: /after, body: {maybe: "{{ steps.maybe }}"}}
    """)

    report, events = run(path)

    assert [r.path for r in http_recorder.requests] == ["/after"]
    assert http_recorder.requests[0].json == {"maybe": None}
    maybe = next(s for s in report.steps if s.id == "maybe")
    assert (maybe.runs, maybe.skipped) == (0, 1)
    assert [(e.step_id, e.details["reason"]) for e in events if e.event == "step_skipped"] == [("maybe", "when is false")]


def test_a_group_whose_when_is_false_skips_every_child(flow, run, http_recorder):
    path = flow("""
        - id: both
          type: group
          when: "false"
          steps:
            - {id: one, type: api.call, connection: api, path: /one}
            - {id: two, type: api.call, connection: api, path: /two}
        - {id: after, type: api.call, connection: api, path: /after, body: ["{{ steps.one }}", "{{ steps.two }}", "{{ steps.both }}"]}
    """)

    run(path)

    assert [r.path for r in http_recorder.requests] == ["/after"]
    assert http_recorder.requests[0].json == [None, None, None]


def test_inside_a_group_a_step_reads_the_current_items_results(flow, run, http_recorder, lambda_server):
    lambda_server.register("double", lambda payload: {"twice": payload["n"] * 2})
    path = flow("""
        - id: each
          type: group
          batch: {from: steps.read_csv.rows, as: row}
          steps:
            - {id: calc, type: lambda.invoke, function: double, payload: {n: "{{ idx }}"}}
            - {id: send, type: api.call, connection: api, path: /calc, body: {code: "{{ row.code }}", twice: "{{ steps.calc.twice }}"}}
        - {id: after, type: api.call, connection: api, path: /after, body: "{{ steps.calc }}"}
    """)

    run(path)

    assert [r.json for r in http_recorder.requests_to("/calc")] == [
        {"code": "A1", "twice": 0}, {"code": "B2", "twice": 2}, {"code": "C3", "twice": 4}]
    assert http_recorder.requests_to("/after")[0].json == [{"twice": 0}, {"twice": 2}, {"twice": 4}]


def test_a_conditional_runs_one_branch_and_leaves_the_other_none(flow, run, http_recorder):
    path = flow("""
        - id: each
          type: group
          batch: {from: steps.read_csv.rows, as: row}
          steps:
            - id: choose
              type: conditional
              when: "row.source == 'crm'"
              then: [{id: crm, type: api.call, connection: api, path: /crm}]
              else: [{id: other, type: api.call, connection: api, path: /other}]
        - {id: after, type: api.call, connection: api, path: /after, body: {crm: "{{ steps.crm | map('tojson') | list }}", branch: "{{ steps.choose }}"}}
    """)

    run(path)

    assert [r.path for r in http_recorder.requests[:3]] == ["/crm", "/crm", "/other"]
    body = http_recorder.requests_to("/after")[0].json
    assert body["branch"] == [{"branch": "then"}, {"branch": "then"}, {"branch": "else"}]
    assert body["crm"][2] == "null"


def test_calls_carry_idempotency_keys_from_the_flow_step_and_item_key(flow, run, http_recorder):
    path = flow("""
        - id: call
          type: api.call
          batch: {from: steps.read_csv.rows, as: row, key: "{{ row.source }}:{{ row.code }}"}
          connection: api
          path: /r
    """, name="keys")

    run(path)
    first = [r.headers["Idempotency-Key"] for r in http_recorder.requests]
    run(path)
    second = [r.headers["Idempotency-Key"] for r in http_recorder.requests[3:]]

    assert first == [idempotency_key("keys", "call", k) for k in ("crm:A1", "crm:B2", "erp:C3")]
    assert second == first


def test_nested_batches_join_their_item_keys(flow, run, http_recorder):
    path = flow("""
        - id: outer
          type: group
          batch: {from: "[1, 2]", as: a}
          steps:
            - {id: inner, type: api.call, batch: {from: "['x', 'y']", as: b}, connection: api, path: "/{{ a }}/{{ b }}", body: "{{ item_key }}"}
    """)

    run(path)

    assert [(r.path, r.body) for r in http_recorder.requests] == [("/1/x", "0/0"), ("/1/y", "0/1"), ("/2/x", "1/0"), ("/2/y", "1/1")]


def test_a_call_failing_twice_with_503_succeeds_on_the_third_attempt_and_logs_each(flow, run, http_recorder):
    http_recorder.fail_next(2, 503)
    path = flow("- {id: call, type: api.call, connection: api, path: /r, retry: {max_attempts: 3, backoff_ms: 1}}")

    report, events = run(path, level="info")

    attempts = [e for e in events if e.event == "call_attempt"]
    assert [(e.details["attempt"], e.details["outcome"], e.details.get("status")) for e in attempts] == [
        (1, "retry", 503), (2, "retry", 503), (3, "ok", 200)]
    assert [e.level for e in attempts] == ["warning", "warning", "info"]
    assert report.status == "succeeded" and report.counts["attempts"] == 3


def test_a_4xx_answer_is_not_retried_and_fails_the_step_with_the_request(flow, run, http_recorder):
    http_recorder.respond("POST", "/r", 422, {"error": "bad code"})
    path = flow("""
        - {id: call, type: api.call, connection: api, path: /r, batch: {from: steps.read_csv.rows, as: row}, body: {c: "{{ row.code }}"}}
    """)

    with pytest.raises(StepError) as info:
        run(path)

    message = str(info.value)
    assert message.startswith("step call (api.call) failed on item 0: POST ")
    assert "answered 422" in message and "bad code" in message and "not retried" in message
    assert "  request: POST http://127.0.0.1:" in message
    assert len(http_recorder.requests) == 1
    assert info.value.step_id == "call" and info.value.idx == (0,)


def test_retry_on_an_exact_status_retries_that_4xx_answer(flow, run, http_recorder):
    http_recorder.fail_next(2, 429)
    path = flow('- {id: call, type: api.call, connection: api, path: /r, retry: {max_attempts: 3, backoff_ms: 1, retry_on: ["429"]}}')

    report, events = run(path)

    assert [r.status for r in http_recorder.requests] == [429, 429, 200]
    assert [e.details["outcome"] for e in events if e.event == "call_attempt"] == ["retry", "retry", "ok"]
    assert report.status == "succeeded"


def test_retry_on_4xx_retries_every_client_error(flow, run, http_recorder):
    http_recorder.fail_next(1, 409)
    path = flow("- {id: call, type: api.call, connection: api, path: /r, retry: {max_attempts: 2, backoff_ms: 1, retry_on: [4xx]}}")

    report, _ = run(path)

    assert [r.status for r in http_recorder.requests] == [409, 200]
    assert report.counts["attempts"] == 2


def test_retry_on_without_5xx_does_not_retry_a_server_error(flow, run, http_recorder):
    http_recorder.fail_next(1, 503)
    path = flow('- {id: call, type: api.call, connection: api, path: /r, retry: {max_attempts: 3, backoff_ms: 1, retry_on: ["429"]}}')

    with pytest.raises(StepError, match=r"step call \(api.call\) failed: POST .* answered 503"):
        run(path)

    assert len(http_recorder.requests) == 1


def test_a_lambda_function_error_fails_the_step_with_its_type_and_message(flow, run, lambda_server):
    def broken(payload):
        raise KeyError("content")

    lambda_server.register("enrich", broken)
    path = flow("- {id: enrich, type: lambda.invoke, function: enrich, payload: {}}")

    with pytest.raises(StepError, match=r"step enrich \(lambda.invoke\) failed: .*KeyError.*content"):
        run(path)


def test_events_have_the_documented_fields(flow, run):
    path = flow("- {id: call, type: api.call, connection: api, path: /r, batch: {from: steps.read_csv.rows, as: row}}")

    report, events = run(path)

    shapes = {tuple(e.to_json()) for e in events}
    assert shapes == {("ts", "level", "run_id", "step_id", "idx", "event", "details")}
    assert {e.run_id for e in events} == {report.run_id}
    assert [e.event for e in events][:2] == ["run_started", "step_finished"]
    finished = [e for e in events if e.event == "step_finished" and e.step_id == "call"]
    assert [e.idx for e in finished] == [0, 1, 2]
    assert events[-1].event == "run_finished" and events[-1].details["status"] == "succeeded"


def test_the_run_is_recorded_in_the_ledger(flow, run, tmp_path):
    path = flow("- {id: call, type: api.call, connection: api, path: /r, batch: {from: steps.read_csv.rows, as: row}}", name="ledgered")

    report, _ = run(path)

    ledger = Ledger(str(tmp_path / "state"))
    try:
        [record] = ledger.list(job="ledgered")
    finally:
        ledger.close()
    assert (record.id, record.status) == (report.run_id, "succeeded")
    assert record.counts["items"] == 3 and record.counts["calls"] == 3
    assert record.meta["kind"] == "flow"


def test_a_failed_run_is_recorded_with_its_error(flow, run, tmp_path, http_recorder):
    http_recorder.respond("POST", "/r", 400, {"error": "no"})
    path = flow("- {id: call, type: api.call, connection: api, path: /r}", name="failing")

    with pytest.raises(StepError):
        run(path)

    ledger = Ledger(str(tmp_path / "state"))
    try:
        [record] = ledger.list(job="failing")
    finally:
        ledger.close()
    assert record.status == "failed" and "answered 400" in record.error


def test_a_batch_over_something_that_is_not_a_list_fails_clearly(flow, run):
    path = flow("- {id: call, type: api.call, connection: api, path: /r, batch: {from: steps.read_csv, as: row}}")

    with pytest.raises(StepError, match="step call: batch.from gave a dict, not a list of items"):
        run(path)


def test_a_missing_path_at_run_time_names_the_step_item_and_path(flow, run):
    path = flow("""
        - {id: call, type: api.call, connection: api, path: "/{{ row.cod }}", batch: {from: steps.read_csv.rows, as: row}}
    """)

    with pytest.raises(StepError) as info:
        run(path)

    assert str(info.value) == "step call on item 0: path: 'row.cod' is undefined (row has: code, source)"


def test_a_migrate_step_runs_its_v1_job(flow, run, tmp_path):
    path = flow("""
        - id: archive
          type: migrate
          job: {source: {type: csv, path: r.csv}, destination: {type: sqlite, path: archive.db, table: archive}}
        - {id: report, type: api.call, connection: api, path: /done, body: "{{ steps.archive.counts.inserted }}"}
    """)

    report, _ = run(path)

    conn = sqlite3.connect(tmp_path / "archive.db")
    try:
        assert conn.execute("SELECT code FROM archive ORDER BY code").fetchall() == [("A1",), ("B2",), ("C3",)]
    finally:
        conn.close()
    assert report.status == "succeeded"


def test_csv_rows_the_parser_rejects_fail_the_step_beyond_max_rejects(flow, run, write):
    path = flow("- {id: call, type: api.call, connection: api, path: /r}")
    write("r.csv", "code,source\nA1,crm\nB2,crm,extra\n")

    with pytest.raises(StepError, match=r"step read_csv: 1 row of r.csv cannot be read \(more than max_rejects: 0\); the first, line 3"):
        run(path)
