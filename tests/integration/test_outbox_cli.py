"""``portl outbox drain|list|retry`` as a user runs them: a flow file naming the database and the
API, calls queued in Postgres, the local recording server on the other end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portl.steps.idempotency import idempotency_key
from portl.steps.outbox import OutboxCall, enqueue, ensure_outbox, open_outbox

PORTL = [sys.executable, "-m", "portl.cli.app"]
TOKEN = "tok-9f8e7d6c5b"


@pytest.fixture
def flow(tmp_path: Path, pg_url: str, http_recorder) -> Path:
    """A flow file whose outbox lives in the test's Postgres database and whose calls go to the
    recorder, with the API token taken from the environment."""
    path = tmp_path / "notify.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 2
        name: notify
        connections:
          db: {{type: postgres, url: "{pg_url}"}}
          api:
            type: http
            base_url: "{http_recorder.base_url}/v1"
            headers: {{Authorization: "Bearer ${{env:API_TOKEN}}"}}
        steps:
          - id: tell_api
            type: outbox.enqueue
            call: {{type: api.call, connection: api, method: POST, path: /events, body: {{n: 1}}}}
        """))
    return path


def queue(pg_url: str, count: int, job: str = "notify") -> list[str]:
    """Queue ``count`` calls as the flow's outbox.enqueue step would; returns their keys."""
    from portl.connectors.postgres import Config

    outbox = open_outbox(Config(type="postgres", url=pg_url), ".")
    keys = [idempotency_key(job, "tell_api", str(i)) for i in range(count)]
    try:
        with outbox.conn.transaction():
            ensure_outbox(outbox.conn, "postgres")
            for i, key in enumerate(keys):
                request = {"method": "POST", "path": "/events", "headers": {}, "query": {}, "body": {"n": i}}
                enqueue(outbox.conn, "postgres", OutboxCall(job, "tell_api", i, "api", "api", request, key))
    finally:
        outbox.close()
    return keys


def portl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "API_TOKEN": TOKEN, "COLUMNS": "200"}
    return subprocess.run([*PORTL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_drain_delivers_every_pending_call_once_with_its_key_and_prints_a_summary(flow, pg_url, http_recorder):
    keys = queue(pg_url, 3)
    result = portl("outbox", "drain", flow.name, "--backoff-ms", "1", cwd=flow.parent)
    assert result.returncode == 0, result.stderr
    assert "drained job 'notify': 3 delivered, 0 failed attempts retried, 0 moved to the dead-letter table, 0 still pending" in result.stderr
    assert [r.path for r in http_recorder.requests] == ["/v1/events"] * 3
    assert [r.headers["Idempotency-Key"] for r in http_recorder.requests] == keys
    assert {r.headers["Authorization"] for r in http_recorder.requests} == {f"Bearer {TOKEN}"}


def test_the_outbox_never_stores_the_connection_secret(flow, pg_url):
    import psycopg

    queue(pg_url, 1)
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT request::text FROM portl_outbox").fetchone()[0]
    assert TOKEN not in stored


def test_a_second_drain_sends_nothing(flow, pg_url, http_recorder):
    queue(pg_url, 2)
    portl("outbox", "drain", flow.name, cwd=flow.parent)
    again = portl("outbox", "drain", flow.name, cwd=flow.parent)
    assert again.returncode == 0
    assert "0 delivered" in again.stderr
    assert len(http_recorder.requests) == 2


def test_calls_that_keep_failing_go_to_the_dead_letter_table_and_drain_exits_1(flow, pg_url, http_recorder):
    queue(pg_url, 1)
    http_recorder.respond("POST", "/v1/events", 500, {"error": "database is down"})
    result = portl("outbox", "drain", flow.name, "--max-attempts", "3", "--backoff-ms", "1", cwd=flow.parent)
    assert result.returncode == 1
    assert "1 moved to the dead-letter table" in result.stderr
    assert result.stderr.count("failed    #1 tell_api[0]") == 2
    assert "dead      #1 tell_api[0] (attempt 3/3)" in result.stderr
    assert f"`portl outbox retry {flow.name} --all`" in result.stderr
    assert len(http_recorder.requests) == 3

    listed = portl("outbox", "list", flow.name, "--dead", "--format", "json", cwd=flow.parent)
    (dead,) = json.loads(listed.stdout)
    assert (dead["id"], dead["status"], dead["attempts"]) == (1, "dead", 3)
    assert "answered 500 Internal Server Error" in dead["last_error"] and "database is down" in dead["last_error"]


def test_retry_all_moves_dead_calls_back_and_the_next_drain_delivers_them(flow, pg_url, http_recorder):
    (key,) = queue(pg_url, 1)
    http_recorder.fail_next(1, 400)
    assert portl("outbox", "drain", flow.name, cwd=flow.parent).returncode == 1

    retried = portl("outbox", "retry", flow.name, "--all", cwd=flow.parent)
    assert retried.returncode == 0, retried.stderr
    assert "moved 1 dead call back to the outbox: 1" in retried.stdout

    drained = portl("outbox", "drain", flow.name, cwd=flow.parent)
    assert drained.returncode == 0 and "1 delivered" in drained.stderr
    assert [(r.status, r.headers["Idempotency-Key"]) for r in http_recorder.requests] == [(400, key), (200, key)]


def test_retry_of_an_unknown_id_names_it(flow, pg_url):
    queue(pg_url, 1)
    result = portl("outbox", "retry", flow.name, "42", cwd=flow.parent)
    assert result.returncode == 1
    assert "no dead call 42 of job 'notify' in portl_outbox_dead" in result.stderr


def test_retry_needs_ids_or_all(flow):
    result = portl("outbox", "retry", flow.name, cwd=flow.parent)
    assert result.returncode == 2
    assert "give the ids of dead calls, or --all" in result.stderr


def test_list_shows_the_counts_and_each_call(flow, pg_url):
    queue(pg_url, 2)
    result = portl("outbox", "list", flow.name, cwd=flow.parent)
    assert result.returncode == 0, result.stderr
    assert "outbox of job 'notify'" in result.stdout and "2 pending, 0 delivered, 0 dead" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "tell_api" in line]
    assert len(lines) == 2
    assert all("POST http://127.0.0.1:" in line and "/v1/events" in line for line in lines)


def test_drain_with_json_logs_writes_one_event_per_call_and_a_summary(flow, pg_url):
    queue(pg_url, 2)
    result = portl("outbox", "drain", flow.name, "--log-format", "json", cwd=flow.parent)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["outbox.delivered", "outbox.delivered", "outbox.drained"]
    assert {tuple(sorted(e)) for e in events} == {("details", "event", "idx", "level", "run_id", "step_id", "ts")}
    assert [(e["step_id"], e["idx"]) for e in events[:2]] == [("tell_api", 0), ("tell_api", 1)]
    assert events[-1]["details"]["delivered"] == 2


def test_drain_before_any_call_was_queued_delivers_nothing(flow):
    result = portl("outbox", "drain", flow.name, cwd=flow.parent)
    assert result.returncode == 0, result.stderr
    assert "0 delivered" in result.stderr


def test_a_drain_killed_while_sending_leaves_the_call_pending_and_the_next_drain_resends_it_with_the_same_key(
        flow, pg_url, http_recorder):
    (key,) = queue(pg_url, 1)
    http_recorder.stall_next(1, 30)
    env = {**os.environ, "API_TOKEN": TOKEN}
    process = subprocess.Popen([*PORTL, "outbox", "drain", flow.name], cwd=flow.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        http_recorder.wait_for(1, timeout_s=60)  # the call is on the wire, its row locked
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    result = portl("outbox", "drain", flow.name, cwd=flow.parent)
    assert result.returncode == 0, result.stderr
    assert [r.headers["Idempotency-Key"] for r in http_recorder.requests] == [key, key]
    listed = json.loads(portl("outbox", "list", flow.name, "--format", "json", cwd=flow.parent).stdout)
    assert [(c["status"], c["attempts"]) for c in listed] == [("delivered", 1)]


def test_a_flow_without_a_database_says_so(tmp_path, http_recorder):
    path = tmp_path / "calls_only.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 2
        connections:
          api: {{type: http, base_url: "{http_recorder.base_url}"}}
        steps:
          - {{id: ping, type: api.call, connection: api, method: GET, path: /ping}}
        """))
    result = portl("outbox", "list", path.name, cwd=tmp_path)
    assert result.returncode == 1
    assert "the flow names no database connection for the outbox" in result.stderr
