"""``lambda`` hooks through the real boto3 client against the local Lambda Invoke API server:
each event, rows replaced, dropped and kept (one by one and in batches), function errors,
throttling, unreachable endpoints, the plan's line, and what a job file may say."""

from __future__ import annotations

import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import portl
from portl.engine.hooks import HookContext, HookRunner, describe
from portl.errors import ConfigError, HookError
from portl.spec.models import Hooks

KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalr-very-secret-key"}
ROWS = pa.RecordBatch.from_pylist(
    [{"id": 1, "email": "ann@example.com"}, {"id": 2, "email": "test@example.com"}, {"id": 3, "email": None},
     {"id": 4, "email": "BOB@EXAMPLE.COM"}, {"id": 5, "email": "cy@example.com"}],
    schema=pa.schema([("id", pa.int64()), ("email", pa.string())]),
)


@pytest.fixture
def make_runner(tmp_path: Path, lambda_server):
    """Runners whose lambda hooks reach the local server; closed after the test."""
    runners: list[HookRunner] = []

    def make(hooks: dict[str, Any], **options: Any) -> HookRunner:
        for listed in hooks.values():
            for hook in listed if isinstance(listed, list) else [listed]:
                if hook["type"] == "lambda":
                    hook.setdefault("endpoint_url", lambda_server.endpoint_url)
                    for key, value in KEYS.items():
                        hook.setdefault(key, value)
        options.setdefault("backoff_ms", 0)
        runner = HookRunner(Hooks.model_validate(hooks), HookContext("orders", "run-1", str(tmp_path)), **options)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


def clean(row: dict[str, Any]) -> dict[str, Any] | None:
    """Drops rows without an email and test accounts, lower-cases the rest, keeps lower-case ones."""
    if row["email"] is None:
        return {"drop": "no email"}
    if row["email"].startswith("test"):
        return {"drop": "test account"}
    if row["email"] != row["email"].lower():
        return {"row": {**row, "email": row["email"].lower()}}
    return {"ok": True}


def emails(batch: pa.RecordBatch) -> list[tuple[int, str]]:
    return [(r["id"], r["email"]) for r in batch.to_pylist()]


# --- events ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["before_job", "after_job", "before_batch", "after_batch"])
def test_a_job_or_batch_event_sends_its_payload_as_the_functions_event(make_runner, lambda_server, event):
    lambda_server.register("notify", lambda payload: None)
    payload = {"job": "orders", "run_id": "run-1", "batch": 3, "counts": {"inserted": 7}}

    make_runner({event: {"type": "lambda", "function": "notify"}}).run_event(event, payload)

    [invocation] = lambda_server.invocations
    assert (invocation.function, invocation.payload, invocation.invocation_type) == ("notify", payload, "RequestResponse")


def test_before_row_answers_replace_drop_or_keep_each_row(make_runner, lambda_server):
    lambda_server.register("clean", clean)

    kept, dropped = make_runner({"before_row": {"type": "lambda", "function": "clean"}}).before_rows(ROWS)

    assert emails(kept) == [(1, "ann@example.com"), (4, "bob@example.com"), (5, "cy@example.com")]
    assert dropped == [(1, "test account"), (2, "no email")]
    assert [i.payload for i in lambda_server.invocations][3] == {"id": 4, "email": "BOB@EXAMPLE.COM"}


def test_after_row_sends_every_committed_row_and_event_invocation_does_not_wait(make_runner, lambda_server):
    seen = []
    lambda_server.register("audit", seen.append)

    make_runner({"after_row": {"type": "lambda", "function": "audit", "invocation": "Event"}}).after_rows(ROWS, {"batch": 2})

    assert [row["id"] for row in seen] == [1, 2, 3, 4, 5]
    assert {(i.invocation_type, i.status) for i in lambda_server.invocations} == {("Event", 202)}


def test_the_qualifier_is_sent_with_the_invocation(make_runner, lambda_server):
    lambda_server.register("notify", lambda payload: None)

    make_runner({"after_job": {"type": "lambda", "function": "notify", "qualifier": "live"}}).run_event("after_job", {"job": "orders"})

    assert lambda_server.invocations[0].qualifier == "live"


# --- failures --------------------------------------------------------------------------------


def test_a_function_error_names_the_hook_the_function_its_message_and_the_row(make_runner, lambda_server):
    def fail(row):
        if row["id"] == 4:
            raise ValueError(f"cannot read {row['email']}")
        return None

    lambda_server.register("clean", fail)
    runner = make_runner({"before_row": {"type": "lambda", "function": "clean", "qualifier": "live"}})

    with pytest.raises(HookError) as caught:
        runner.before_rows(ROWS)

    assert str(caught.value) == ("hook before_row[0] (lambda 'clean:live') failed in the function (Unhandled): "
                                 "ValueError: cannot read BOB@EXAMPLE.COM (row 4 of the batch)")
    assert len(lambda_server.invocations) == 4  # a function error is not retried


def test_throttling_and_service_errors_are_retried_until_the_function_answers(make_runner, lambda_server):
    lambda_server.register("notify", lambda payload: {"ok": True})
    lambda_server.fail_next(1, 429)
    lambda_server.fail_next(1, 503)

    make_runner({"after_batch": {"type": "lambda", "function": "notify"}}).run_event("after_batch", {"batch": 1})

    assert [i.status for i in lambda_server.invocations] == [429, 503, 200]


def test_throttling_that_persists_gives_up_after_the_runs_retry_attempts(make_runner, lambda_server):
    lambda_server.register("notify", lambda payload: None)
    lambda_server.fail_next(5, 429)
    runner = make_runner({"before_job": {"type": "lambda", "function": "notify"}}, retry_attempts=2)

    with pytest.raises(HookError) as caught:
        runner.run_event("before_job", {"job": "orders"})

    assert str(caught.value) == ("hook before_job[0] (lambda 'notify') answered 429 TooManyRequestsException: "
                                 "failing on purpose (gave up after 2 attempts)")
    assert len(lambda_server.invocations) == 2


def test_a_missing_function_fails_at_once(make_runner, lambda_server):
    runner = make_runner({"after_job": {"type": "lambda", "function": "nope"}})

    with pytest.raises(HookError, match=r"^hook after_job\[0\] \(lambda 'nope'\) answered 404 ResourceNotFoundException: "
                                        r"Function not found: .*function:nope$"):
        runner.run_event("after_job", {"job": "orders"})
    assert len(lambda_server.invocations) == 1


def test_an_unreachable_endpoint_says_it_could_not_connect(make_runner):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free_port = probe.getsockname()[1]
    probe.close()
    runner = make_runner({"after_job": {"type": "lambda", "function": "notify",
                                        "endpoint_url": f"http://127.0.0.1:{free_port}"}}, retry_attempts=2)

    with pytest.raises(HookError) as caught:
        runner.run_event("after_job", {"job": "orders"})

    message = str(caught.value)
    assert message.startswith("hook after_job[0] (lambda 'notify') could not connect: ")
    assert f"127.0.0.1:{free_port}" in message and message.endswith("(gave up after 2 attempts)")


# --- batches of rows -------------------------------------------------------------------------


def test_batch_sends_rows_together_and_reads_one_answer_per_row(make_runner, lambda_server):
    lambda_server.register("clean", lambda event: {"rows": [clean(row) for row in event["rows"]]})
    runner = make_runner({"before_row": {"type": "lambda", "function": "clean", "batch": True, "batch_rows": 2}})

    kept, dropped = runner.before_rows(ROWS)

    assert emails(kept) == [(1, "ann@example.com"), (4, "bob@example.com"), (5, "cy@example.com")]
    assert dropped == [(1, "test account"), (2, "no email")]
    sent = [i.payload for i in lambda_server.invocations]
    assert [[row["id"] for row in event["rows"]] for event in sent] == [[1, 2], [3, 4], [5]]
    assert {(e["job"], e["run_id"], e["event"]) for e in sent} == {("orders", "run-1", "before_row")}


def test_a_batch_answer_without_rows_keeps_every_row(make_runner, lambda_server):
    lambda_server.register("look", lambda event: {"seen": len(event["rows"])})

    kept, dropped = make_runner({"before_row": {"type": "lambda", "function": "look", "batch": True}}).before_rows(ROWS)

    assert (kept.num_rows, dropped, len(lambda_server.invocations)) == (5, [], 1)


def test_a_batch_answer_with_the_wrong_number_of_rows_fails_naming_the_rows(make_runner, lambda_server):
    lambda_server.register("clean", lambda event: {"rows": [None]})
    runner = make_runner({"before_row": {"type": "lambda", "function": "clean", "batch": True}})

    with pytest.raises(HookError) as caught:
        runner.before_rows(ROWS)

    assert str(caught.value) == ("hook before_row[0] (lambda 'clean') answered 1 entries in 'rows' for the 5 rows it "
                                 "was sent (rows 1 to 5 of the batch); answer one entry per row, in the order sent")


def test_a_batched_hook_sees_rows_as_earlier_hooks_left_them_and_only_the_survivors(make_runner, lambda_server):
    lambda_server.register("clean", lambda row: clean(row))
    lambda_server.register("stamp", lambda event: {"rows": [{"row": {**r, "email": r["email"] + "!"}} for r in event["rows"]]})
    hooks = {"before_row": [{"type": "lambda", "function": "clean"},
                            {"type": "lambda", "function": "stamp", "batch": True}]}

    kept, _ = make_runner(hooks).before_rows(ROWS)

    [stamped] = lambda_server.invocations_of("stamp")
    assert [r["email"] for r in stamped.payload["rows"]] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert emails(kept) == [(1, "ann@example.com!"), (4, "bob@example.com!"), (5, "cy@example.com!")]


def test_concurrent_invocations_of_a_batch_keep_the_rows_in_order(make_runner, lambda_server):
    threads = set()

    def clean_slowly(event):
        threads.add(threading.get_ident())
        time.sleep(0.05)  # long enough for the invocations to overlap
        return {"rows": [clean(row) for row in event["rows"]]}

    lambda_server.register("clean", clean_slowly)
    runner = make_runner({"before_row": {"type": "lambda", "function": "clean", "batch": True, "batch_rows": 1,
                                         "concurrency": 5}})

    kept, dropped = runner.before_rows(ROWS)

    assert emails(kept) == [(1, "ann@example.com"), (4, "bob@example.com"), (5, "cy@example.com")]
    assert dropped == [(1, "test account"), (2, "no email")]
    assert len(lambda_server.invocations) == 5 and len(threads) > 1


def test_a_batched_after_row_hook_gets_the_outcome_with_the_rows(make_runner, lambda_server):
    lambda_server.register("audit", lambda event: None)

    make_runner({"after_row": {"type": "lambda", "function": "audit", "batch": True}}).after_rows(ROWS, {"batch": 2})

    [invocation] = lambda_server.invocations
    assert invocation.payload["outcome"] == {"batch": 2} and len(invocation.payload["rows"]) == 5


# --- the job language and the plan ----------------------------------------------------------


def test_describe_shows_function_region_and_endpoint_but_no_key():
    hooks = Hooks.model_validate({"before_row": {"type": "lambda", "function": "clean", "qualifier": "live", **KEYS,
                                                 "region": "eu-west-1", "batch": True, "concurrency": 4},
                                  "after_job": {"type": "lambda", "invocation": "Event", "endpoint_url": "http://u:pw@lambda.local:9001",
                                                "function": "arn:aws:lambda:ap-south-1:123456789012:function:notify"}})

    assert describe(hooks, "before_row") == ["lambda: clean:live (eu-west-1, batches of 1000 rows, 4 at once)"]
    assert describe(hooks, "after_job") == ["lambda: arn:aws:lambda:ap-south-1:123456789012:function:notify "
                                            "(ap-south-1 at http://u:**********@lambda.local:9001, Event: not waited for)"]
    assert "wJalr" not in repr(hooks) and "wJalr" not in hooks.model_dump_json()


@pytest.mark.parametrize(("hooks", "expected"), [
    ("before_row: {type: lambda, function: f, invocation: Event}", "before_row needs invocation: RequestResponse"),
    ("after_job: {type: lambda, function: f, batch: true}", "after_job has no rows"),
    ("after_job: {type: lambda, function: f, access_key_id: AKID}", "access_key_id is given without secret_access_key"),
    ("after_row: {type: lambda, function: f, concurrency: 4}", "concurrency applies to batch: true"),
])
def test_a_lambda_hook_that_does_not_fit_its_event_is_refused_when_loading(tmp_path, hooks, expected):
    (tmp_path / "job.yaml").write_text("source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: o.db, table: t}\n"
                                       f"hooks:\n  {hooks}\n")

    with pytest.raises(ConfigError) as caught:
        portl.load_job(str(tmp_path / "job.yaml"))

    assert expected in str(caught.value)


def test_a_job_runs_its_lambda_hooks_and_the_plan_lists_them(tmp_path, lambda_server, monkeypatch):
    monkeypatch.setenv("LAMBDA_SECRET", KEYS["secret_access_key"])
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    lambda_server.register("clean", clean)
    finished = []
    lambda_server.register("report", finished.append)
    (tmp_path / "in.csv").write_text("id,email\n1,ann@example.com\n2,test@example.com\n3,BOB@EXAMPLE.COM\n")
    lambda_keys = f"endpoint_url: '{lambda_server.endpoint_url}', access_key_id: AKID, secret_access_key: '${{env:LAMBDA_SECRET}}'"
    (tmp_path / "job.yaml").write_text(
        "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: people}\n"
        f"hooks:\n  before_row: {{type: lambda, function: clean, {lambda_keys}}}\n"
        f"  after_job: {{type: lambda, function: report, region: eu-west-1, {lambda_keys}}}\n")

    the_plan = portl.plan(portl.load_job(str(tmp_path / "job.yaml")))
    try:
        assert the_plan.hooks == {"before_row": [f"lambda: clean (us-east-1 at {lambda_server.endpoint_url})"],
                                  "after_job": [f"lambda: report (eu-west-1 at {lambda_server.endpoint_url})"]}
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()

    assert (report.counts.inserted, report.counts.skipped) == (2, {"hook before_row: test account": 1})
    rows = sqlite3.connect(tmp_path / "out.db").execute("SELECT id, email FROM people ORDER BY id").fetchall()
    assert rows == [("1", "ann@example.com"), ("3", "bob@example.com")]
    assert [(r["status"], r["counts"]["inserted"]) for r in finished] == [("succeeded", 2)]


def test_without_boto3_the_runner_says_which_extra_to_install(tmp_path, monkeypatch):
    for name in ("boto3", "botocore", "botocore.config"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    hooks = Hooks.model_validate({"after_job": {"type": "lambda", "function": "notify"}})

    with pytest.raises(ConfigError, match=r"calling AWS Lambda needs boto3; install it with: pip install 'portl\[aws\]'"):
        HookRunner(hooks, HookContext("orders", "run-1", str(tmp_path)))
