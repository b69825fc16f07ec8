"""Hooks: real subprocesses, a real local HTTP server, real Python modules written to disk."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import SecretStr

from portl.engine.hooks import HookContext, HookRunner, SkipRow, describe
from portl.errors import HookError
from portl.spec.models import Hooks

PY = sys.executable


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def make_runner(tmp_path: Path):
    """Build runners over ``tmp_path`` as the job folder; all are closed after the test."""
    runners: list[HookRunner] = []

    def make(hooks: dict[str, Any], **options: Any) -> HookRunner:
        runner = HookRunner(Hooks.model_validate(hooks), HookContext("orders", "run-1", str(tmp_path)), **options)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


@pytest.fixture
def write_module(tmp_path: Path):
    """Write a uniquely named Python module into the job folder; returns its name."""
    names: list[str] = []

    def write(source: str) -> str:
        name = f"hookmod_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def write_script(tmp_path: Path):
    """Write a Python script into the job folder; returns the argv that runs it."""

    def write(source: str) -> list[str]:
        path = tmp_path / f"script_{uuid.uuid4().hex[:8]}.py"
        path.write_text(textwrap.dedent(source))
        return [PY, path.name]

    return write


class Server:
    """A local HTTP server that records every request and answers from a queue (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[tuple[int, Any]] = []
        self.delay_s = 0.0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                recorder.requests.append(request)
                status, reply = recorder.replies.pop(0) if recorder.replies else (200, b"")
                if callable(reply):
                    reply = reply(request)
                if isinstance(reply, (dict, list)):
                    reply = json.dumps(reply).encode()
                time.sleep(recorder.delay_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, status: int, body: Any = b"", times: int = 1) -> None:
        self.replies.extend([(status, body)] * times)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.stop()


def people() -> pa.RecordBatch:
    return pa.record_batch(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": pa.array(["ada", "bob", "cy"], pa.string()),
            "amount": pa.array([Decimal("10.50"), Decimal("0.00"), None], pa.decimal128(10, 2)),
            "born": pa.array([dt.date(1990, 1, 31), None, dt.date(2001, 12, 1)], pa.date32()),
        }
    )


# --- script hooks ----------------------------------------------------------------------------


def test_script_event_hook_receives_payload_json_on_stdin(make_runner, tmp_path):
    runner = make_runner({"before_batch": {"type": "script", "command": "cat > payload.json"}})
    payload = {"job": "orders", "run_id": "run-1", "batch": 3, "rows": 50000, "counts": {"inserted": 7}}

    runner.run_event("before_batch", payload)

    assert json.loads((tmp_path / "payload.json").read_text()) == payload


def test_script_hook_environment_names_job_run_event_and_extra_env(make_runner, tmp_path):
    command = 'echo "$PORTL_JOB $PORTL_RUN_ID $PORTL_EVENT $GREETING" > env.txt'
    runner = make_runner({"after_job": {"type": "script", "command": command, "env": {"GREETING": "hello"}}})

    runner.run_event("after_job", {"job": "orders"})

    assert (tmp_path / "env.txt").read_text().strip() == "orders run-1 after_job hello"


def test_script_nonzero_exit_raises_hook_error_with_code_and_stderr(make_runner):
    runner = make_runner({"before_batch": {"type": "script", "command": "echo starting >&2; echo 'disk full' >&2; exit 2"}})

    with pytest.raises(HookError) as caught:
        runner.run_event("before_batch", {"batch": 1})

    message = str(caught.value)
    assert message.startswith("hook before_batch[0] (script ")
    assert "exited with code 2" in message
    assert "disk full" in message


def test_script_timeout_kills_the_command_and_raises_within_the_timeout(make_runner, tmp_path):
    # The shell starts a child that would outlive the shell if only the shell were killed.
    command = "sleep 30 & wait; echo late > late.txt"
    runner = make_runner({"before_job": {"type": "script", "command": command, "timeout_s": 0.5}})

    started = time.monotonic()
    with pytest.raises(HookError, match=r"timed out after 0\.5 s"):
        runner.run_event("before_job", {})

    assert time.monotonic() - started < 5
    assert not (tmp_path / "late.txt").exists()


def test_script_command_not_found_says_so_and_names_it(make_runner):
    runner = make_runner({"before_job": {"type": "script", "command": ["no-such-command-xyz", "--go"]}})

    with pytest.raises(HookError, match=r"command not found: 'no-such-command-xyz'"):
        runner.run_event("before_job", {})


def test_shell_command_not_found_says_so(make_runner):
    runner = make_runner({"before_job": {"type": "script", "command": "no-such-command-xyz --go"}})

    with pytest.raises(HookError, match="command not found") as caught:
        runner.run_event("before_job", {})
    assert "no-such-command-xyz" in str(caught.value)


def test_script_row_hook_replaces_rows_from_stdout(make_runner, write_script):
    argv = write_script(
        """
        import json, sys
        row = json.load(sys.stdin)
        row["name"] = row["name"].upper()
        print(json.dumps(row))
        """
    )
    runner = make_runner({"before_row": {"type": "script", "command": argv}})

    out, dropped = runner.before_rows(people())

    assert dropped == []
    assert out.column("name").to_pylist() == ["ADA", "BOB", "CY"]
    assert out.column("amount").to_pylist() == [Decimal("10.50"), Decimal("0.00"), None]


def test_script_row_hook_exit_3_drops_the_row_with_stderr_reason(make_runner, write_script):
    argv = write_script(
        """
        import json, sys
        row = json.load(sys.stdin)
        if row["name"] == "bob":
            print("bob is banned\\nsecond line", file=sys.stderr)
            sys.exit(3)
        """
    )
    runner = make_runner({"before_row": {"type": "script", "command": argv}})

    out, dropped = runner.before_rows(people())

    assert out.column("id").to_pylist() == [1, 3]
    assert dropped == [(1, "bob is banned")]


def test_script_row_hook_drop_without_stderr_gets_default_reason(make_runner):
    runner = make_runner({"before_row": {"type": "script", "command": "exit 3"}})

    out, dropped = runner.before_rows(people())

    assert out.num_rows == 0
    assert out.schema == people().schema
    assert dropped == [(0, "dropped by hook"), (1, "dropped by hook"), (2, "dropped by hook")]


def test_script_row_hook_printing_non_json_fails_with_row_number(make_runner):
    runner = make_runner({"before_row": {"type": "script", "command": "cat > /dev/null; echo ok"}})

    with pytest.raises(HookError, match=r"not a JSON object \(row 1 of the batch\)"):
        runner.before_rows(people())


def test_script_after_row_exit_3_is_a_failure_not_a_drop(make_runner):
    runner = make_runner({"after_row": {"type": "script", "command": "exit 3"}})

    with pytest.raises(HookError, match=r"exited with code 3 \(row 1 of batch 4\)"):
        runner.after_rows(people(), {"batch": 4})


# --- python hooks ----------------------------------------------------------------------------


def test_python_row_hook_changes_a_value(make_runner, write_module):
    name = write_module(
        """
        def double(row):
            if row["amount"] is not None:
                row["amount"] = str(2 * float(row["amount"]))
            return row
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:double"}})

    out, dropped = runner.before_rows(people())

    assert dropped == []
    assert out.column("amount").to_pylist() == [Decimal("21.00"), Decimal("0.00"), None]
    assert out.column("amount").type == pa.decimal128(10, 2)


def test_python_row_hook_changing_the_dict_in_place_counts(make_runner, write_module):
    name = write_module(
        """
        def rename(row):
            row["name"] = row["name"] + "!"
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:rename"}})

    out, _ = runner.before_rows(people())

    assert out.column("name").to_pylist() == ["ada!", "bob!", "cy!"]


def test_python_row_hook_skiprow_drops_the_row_with_its_reason(make_runner, write_module):
    name = write_module(
        """
        from portl.engine.hooks import SkipRow

        def no_nulls(row):
            if row["born"] is None:
                raise SkipRow("no birth date")
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:no_nulls"}})

    out, dropped = runner.before_rows(people())

    assert out.column("id").to_pylist() == [1, 3]
    assert dropped == [(1, "no birth date")]


def test_python_row_hook_error_names_the_exception_and_row(make_runner, write_module):
    name = write_module(
        """
        def picky(row):
            if row["id"] == 2:
                raise ValueError("id 2 is cursed")
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:picky"}})

    with pytest.raises(HookError) as caught:
        runner.before_rows(people())

    assert str(caught.value) == (
        f"hook before_row[0] (python '{name}:picky') raised ValueError (row 2 of the batch): id 2 is cursed"
    )


def test_python_import_error_names_the_module_and_the_folder(make_runner, tmp_path):
    with pytest.raises(HookError) as caught:
        make_runner({"before_row": {"type": "python", "function": "missing_hooks_mod:clean"}})

    message = str(caught.value)
    assert "cannot import module 'missing_hooks_mod'" in message
    assert str(tmp_path) in message


def test_python_module_that_fails_while_importing_shows_its_error(make_runner, write_module):
    name = write_module("import json\nraise RuntimeError('config missing')\n")

    with pytest.raises(HookError, match=rf"importing module '{name}' failed: RuntimeError: config missing"):
        make_runner({"before_job": {"type": "python", "function": f"{name}:start"}})


def test_python_missing_function_names_the_attribute(make_runner, write_module):
    name = write_module("def clean(row):\n    return row\n")

    with pytest.raises(HookError, match=rf"module '{name}' has no attribute 'clean_row'"):
        make_runner({"before_row": {"type": "python", "function": f"{name}:clean_row"}})


def test_python_event_hook_is_called_with_the_payload(make_runner, write_module):
    name = write_module(
        """
        seen = []

        def record(payload):
            seen.append(payload)
        """
    )
    runner = make_runner({"after_batch": {"type": "python", "function": f"{name}:record"}})

    runner.run_event("after_batch", {"batch": 3, "rows": 10})

    assert sys.modules[name].seen == [{"batch": 3, "rows": 10}]


def test_python_after_row_sees_every_committed_row(make_runner, write_module):
    name = write_module(
        """
        seen = []

        def record(row):
            seen.append((row["id"], row["born"]))
        """
    )
    runner = make_runner({"after_row": {"type": "python", "function": f"{name}:record"}})

    runner.after_rows(people(), {"batch": 1})

    assert sys.modules[name].seen == [(1, "1990-01-31"), (2, None), (3, "2001-12-01")]


def test_python_skiprow_in_after_row_is_an_error(make_runner, write_module):
    name = write_module("from portl.engine.hooks import SkipRow\ndef f(row):\n    raise SkipRow('nope')\n")
    runner = make_runner({"after_row": {"type": "python", "function": f"{name}:f"}})

    with pytest.raises(HookError, match="only before_row hooks can drop rows"):
        runner.after_rows(people(), {"batch": 1})


def test_job_folder_leaves_sys_path_when_the_runner_closes(make_runner, write_module, tmp_path):
    name = write_module("def f(row):\n    return None\n")
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:f"}})
    assert sys.path[0] == str(tmp_path)

    runner.close()

    assert str(tmp_path) not in sys.path


# --- rows: order, coercion, types ------------------------------------------------------------


def test_before_row_hooks_run_in_order_each_seeing_the_previous_change(make_runner, write_module):
    name = write_module(
        """
        from portl.engine.hooks import SkipRow

        def shout(row):
            return {**row, "name": row["name"].upper()}

        def only_short(row):
            if len(row["name"]) > 2:
                raise SkipRow("long name " + row["name"])
        """
    )
    runner = make_runner(
        {"before_row": [{"type": "python", "function": f"{name}:shout"}, {"type": "python", "function": f"{name}:only_short"}]}
    )

    out, dropped = runner.before_rows(people())

    assert out.column("name").to_pylist() == ["CY"]
    assert dropped == [(0, "long name ADA"), (1, "long name BOB")]


def test_before_rows_keeps_arrow_types_through_a_round_trip(make_runner, write_module):
    name = write_module("def same(row):\n    return dict(row)\n")
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:same"}})
    batch = pa.record_batch(
        {
            "small": pa.array([1, -5, None], pa.int32()),
            "big": pa.array([2**40, 0, 7], pa.int64()),
            "price": pa.array([Decimal("12.345"), None, Decimal("-0.001")], pa.decimal128(12, 3)),
            "day": pa.array([dt.date(2024, 2, 29), dt.date(1970, 1, 1), None], pa.date32()),
            "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 678901), None, dt.datetime(1999, 12, 31)], pa.timestamp("us")),
            "at_ns": pa.array([1_700_000_000_123_456_789, None, 0], pa.timestamp("ns", tz="UTC")),
            "blob": pa.array([b"\x00\xff", None, b""], pa.binary()),
            "ok": pa.array([True, False, None], pa.bool_()),
            "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        }
    )

    out, dropped = runner.before_rows(batch)

    assert dropped == []
    assert out.schema == batch.schema
    assert out.equals(batch)


def test_unchanged_rows_keep_their_values_when_others_change(make_runner, write_module):
    name = write_module(
        """
        def bump_second(row):
            if row["id"] == 2:
                return {**row, "born": "2020-05-06", "amount": 3}
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:bump_second"}})

    out, _ = runner.before_rows(people())

    assert out.column("born").to_pylist() == [dt.date(1990, 1, 31), dt.date(2020, 5, 6), dt.date(2001, 12, 1)]
    assert out.column("amount").to_pylist() == [Decimal("10.50"), Decimal("3.00"), None]
    assert out.schema == people().schema


def test_returned_value_that_cannot_be_coerced_names_hook_column_and_row(make_runner, write_module):
    name = write_module(
        """
        def spoil(row):
            if row["id"] == 3:
                return {**row, "born": "next tuesday"}
        """
    )
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:spoil"}})

    with pytest.raises(HookError) as caught:
        runner.before_rows(people())

    message = str(caught.value)
    assert f"hook before_row[0] (python '{name}:spoil')" in message
    assert "column 'born'" in message
    assert "row 3 of the batch" in message
    assert "next tuesday" in message


def test_decimal_with_too_many_places_is_refused_rather_than_rounded(make_runner, write_module):
    name = write_module("def f(row):\n    return {**row, 'amount': '1.005'}\n")
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:f"}})

    with pytest.raises(HookError, match=r"column 'amount' \(row 1 of the batch\): '1.005' has more than 2 decimal places"):
        runner.before_rows(people())


def test_integer_out_of_range_for_its_column_is_refused(make_runner, write_module):
    name = write_module("def f(row):\n    return {**row, 'n': 2**31}\n")
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:f"}})
    batch = pa.record_batch({"n": pa.array([1], pa.int32())})

    with pytest.raises(HookError, match=r"column 'n'.*between -2147483648 and 2147483647"):
        runner.before_rows(batch)


def test_returned_row_with_an_unknown_column_is_refused(make_runner, write_module):
    name = write_module("def f(row):\n    return {**row, 'nickname': 'x'}\n")
    runner = make_runner({"before_row": {"type": "python", "function": f"{name}:f"}})

    with pytest.raises(HookError, match=r"unknown column\(s\) 'nickname'.*the columns are id, name, amount, born"):
        runner.before_rows(people())


def test_batch_without_row_hooks_is_returned_untouched(make_runner):
    runner = make_runner({"before_batch": {"type": "script", "command": "true"}})
    batch = people()

    out, dropped = runner.before_rows(batch)
    runner.after_rows(batch, {"batch": 1})

    assert out is batch
    assert dropped == []
    assert not runner.has("before_row")
    assert runner.has("before_batch")


# --- http hooks ------------------------------------------------------------------------------


def test_http_body_template_is_rendered_and_received_by_the_server(make_runner, server):
    hook = {
        "type": "http",
        "url": server.url + "/batches/{{ batch }}",
        "headers": {"X-Job": "{{ job }}"},
        "body": {"text": "batch {{ batch }} of {{ job }}: {{ rows }} rows", "rows": "{{ rows }}", "run": "{{ run_id }}"},
    }
    runner = make_runner({"after_batch": hook})

    runner.run_event("after_batch", {"batch": 3, "rows": 500})

    (request,) = server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/batches/3"
    assert request["headers"]["X-Job"] == "orders"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"text": "batch 3 of orders: 500 rows", "rows": 500, "run": "run-1"}


def test_http_row_hook_without_body_sends_the_row_as_json(make_runner, server):
    runner = make_runner({"after_row": {"type": "http", "url": server.url + "/rows/{{ row.id }}", "method": "PUT"}})

    runner.after_rows(people().slice(0, 1), {"batch": 1})

    (request,) = server.requests
    assert request["path"] == "/rows/1"
    assert json.loads(request["body"]) == {"id": 1, "name": "ada", "amount": "10.50", "born": "1990-01-31"}


def test_http_503_twice_then_200_succeeds_on_the_third_attempt(make_runner, server):
    server.reply(503, b"busy", times=2)
    runner = make_runner({"after_job": {"type": "http", "url": server.url + "/done"}}, retry_attempts=3, backoff_ms=1)

    runner.run_event("after_job", {"job": "orders"})

    assert len(server.requests) == 3


def test_http_503_every_time_gives_up_after_the_retry_attempts(make_runner, server):
    server.reply(503, b"still busy", times=5)
    runner = make_runner({"after_job": {"type": "http", "url": server.url + "/done"}}, retry_attempts=3, backoff_ms=1)

    with pytest.raises(HookError, match=r"answered 503 Service Unavailable: still busy \(gave up after 3 attempts\)"):
        runner.run_event("after_job", {})

    assert len(server.requests) == 3


def test_http_400_fails_at_once_with_the_status_in_the_message(make_runner, server):
    server.reply(400, {"error": "missing field 'x'"})
    runner = make_runner({"before_batch": {"type": "http", "url": server.url + "/b"}}, retry_attempts=3, backoff_ms=1)

    with pytest.raises(HookError) as caught:
        runner.run_event("before_batch", {"batch": 1})

    assert len(server.requests) == 1
    assert str(caught.value) == (
        f"hook before_batch[0] (http): POST {server.url}/b answered 400 Bad Request: "
        "{\"error\": \"missing field 'x'\"}"
    )


def test_http_timeout_is_retried_then_reported(make_runner, server):
    server.delay_s = 1.0
    runner = make_runner({"after_job": {"type": "http", "url": server.url, "timeout_s": 0.2}}, retry_attempts=2, backoff_ms=1)

    with pytest.raises(HookError, match=r"timed out after 0\.2 s \(gave up after 2 attempts\)"):
        runner.run_event("after_job", {})

    assert len(server.requests) == 2


def test_http_connection_refused_is_reported_after_retries(make_runner):
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    closed_url = f"http://127.0.0.1:{probe.server_address[1]}/x"
    probe.server_close()
    runner = make_runner({"after_job": {"type": "http", "url": closed_url}}, retry_attempts=2, backoff_ms=1)

    with pytest.raises(HookError, match=r"could not connect.*\(gave up after 2 attempts\)"):
        runner.run_event("after_job", {})


def test_http_secret_header_is_sent_but_never_printed(make_runner, server):
    token = "Bearer s3cr3t-t0ken-value"
    server.reply(401, lambda request: f"bad credentials: {request['headers']['Authorization']}".encode())
    hook = {
        "type": "http",
        "url": server.url + "/x?api_key=k3y-v4lue",
        "headers": {"Authorization": SecretStr(token), "X-Trace": "abc"},
    }
    runner = make_runner({"after_job": hook})

    with pytest.raises(HookError) as caught:
        runner.run_event("after_job", {})

    assert server.requests[0]["headers"]["Authorization"] == token
    message = str(caught.value)
    assert "answered 401 Unauthorized: bad credentials: **********" in message
    lines = runner.describe("after_job")
    for shown in (message, *lines, *describe(Hooks.model_validate({"after_job": hook}), "after_job")):
        assert "s3cr3t" not in shown
        assert "k3y-v4lue" not in shown
    assert lines == [f"http: POST {server.url}/x?api_key=********** (headers: Authorization=**********, X-Trace=abc)"]


def test_http_plain_authorization_header_is_masked_too(make_runner):
    runner = make_runner(
        {"after_job": {"type": "http", "url": "https://user:pw123456@api.example.com/hooks", "headers": {"Authorization": "Token abcdef123"}}}
    )

    assert runner.describe("after_job") == [
        "http: POST https://user:**********@api.example.com/hooks (headers: Authorization=**********)"
    ]


def test_http_undefined_template_variable_names_hook_and_variable(make_runner, server):
    runner = make_runner({"before_row": {"type": "http", "url": server.url, "body": "{{ row.nmae }}"}})

    with pytest.raises(HookError) as caught:
        runner.before_rows(people())

    message = str(caught.value)
    assert message.startswith("hook before_row[0] (http): the body template uses an undefined variable (row 1 of the batch)")
    assert "nmae" in message
    assert server.requests == []


def test_http_template_syntax_error_fails_when_the_runner_is_built(make_runner, server):
    with pytest.raises(HookError, match=r"hook after_batch\[1\] \(http\): the url template is not valid"):
        make_runner({"after_batch": [{"type": "http", "url": server.url}, {"type": "http", "url": server.url + "/{{ batch"}]})


def test_http_before_row_answer_can_replace_or_drop_the_row(make_runner, server):
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        row = json.loads(request["body"])
        if row["id"] == 1:
            return {"row": {**row, "name": "Ada Lovelace"}}
        if row["id"] == 2:
            return {"drop": "unknown customer"}
        return {"ok": True}

    server.reply(200, answer, times=3)
    runner = make_runner({"before_row": {"type": "http", "url": server.url + "/check"}})

    out, dropped = runner.before_rows(people())

    assert out.column("name").to_pylist() == ["Ada Lovelace", "cy"]
    assert dropped == [(1, "unknown customer")]


# --- describe --------------------------------------------------------------------------------


def test_describe_gives_one_line_per_hook_of_the_event(make_runner, write_module):
    name = write_module("def clean_row(row):\n    return None\n")
    hooks = {
        "before_row": [
            {"type": "script", "command": "./notify.sh", "env": {"TOKEN": "zzz-secret"}},
            {"type": "python", "function": f"{name}:clean_row"},
            {"type": "http", "url": "https://api.example.com/hooks", "timeout_s": 5},
        ]
    }

    lines = make_runner(hooks).describe("before_row")

    assert lines == [
        "script: ./notify.sh (timeout 30 s, env: TOKEN)",
        f"python: {name}:clean_row",
        "http: POST https://api.example.com/hooks",
    ]
    assert describe(Hooks.model_validate(hooks), "before_row") == lines


def test_skiprow_is_an_exception_whose_text_is_the_reason():
    assert str(SkipRow("duplicate")) == "duplicate"
    assert issubclass(SkipRow, Exception)
