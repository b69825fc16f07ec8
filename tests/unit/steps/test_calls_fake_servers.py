"""The fake servers also run as their own processes (for benchmarks and end-to-end runs), with
their controls reachable over HTTP."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def start():
    started = []

    def run(module: str, *args: str) -> str:
        process = subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args], cwd=REPO,
                                   stdout=subprocess.PIPE, text=True)
        started.append(process)
        return process.stdout.readline().strip()  # the server prints its URL once it listens

    yield run
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def test_the_recorder_process_records_and_fails_on_request(start):
    url = start("tests.fakes.http_recorder")
    with httpx.Client(base_url=url) as client:
        client.post("/__recorder__/fail_next", json={"n": 1, "status": 502})
        assert client.post("/items", json={"a": 1}, headers={"Idempotency-Key": "k1"}).status_code == 502
        assert client.post("/items", json={"a": 1}).json() == {"ok": True, "echo": {"a": 1}}
        recorded = client.get("/__recorder__/requests").json()
    assert [(r["path"], r["status"], r["body"]) for r in recorded] == [("/items", 502, {"a": 1}), ("/items", 200, {"a": 1})]
    assert recorded[0]["headers"]["idempotency-key"] == "k1"


def test_the_lambda_process_serves_a_handler_given_as_module_and_function(start):
    url = start("tests.fakes.lambda_server", "--function", "dump=json:dumps", "--echo")
    with httpx.Client(base_url=url) as client:
        served = client.post("/2015-03-31/functions/dump/invocations", json={"a": 1})
        echoed = client.post("/2015-03-31/functions/other/invocations", json=[1, 2])
    assert served.json() == '{"a": 1}'
    assert echoed.json() == {"echo": [1, 2]}
