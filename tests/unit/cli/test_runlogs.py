"""How ``portl logs`` reads a background run's log: events as lines for people, and exit codes."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from portl.cli.runlogs import Renderer, _exit_code, parse, text_line


def event(kind: str, **details) -> dict:
    return {"ts": "2026-12-08T01:02:03.456Z", "level": "info", "run_id": "r1", "batch": details.pop("batch", None),
            "event": kind, "details": details}


def local(stamp: float = 1796691723) -> str:  # 2026-12-08T01:02:03Z
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def test_a_committed_batch_reads_as_its_rows_and_the_run_so_far():
    line = text_line(event("batch_committed", batch=3, partition="0", rows=100, bytes=1500, inserted=90, updated=10,
                           skipped=0, rejected=0, totals={"read": 300, "inserted": 290, "bytes": 4500}))

    assert line == (f"{local()}  info     batch_committed  batch 3, rows 100, inserted 90, updated 10, skipped 0, "
                    "rejected 0 (run so far: read 300, inserted 290)")


def test_an_error_document_lists_its_problems_and_the_sentence_after_it_is_not_repeated():
    error = {"event": "error", "error": {"message": "2 problems found", "exit_code": 2, "problems": [
        {"file": "job.yaml", "line": 3, "column": 5, "message": "unknown key 'pth'"}]}}
    render = Renderer(as_json=False)

    shown = [render(parse(json.dumps(error))), render(parse("error: 2 problems found")), render(parse("after"))]

    assert shown[0].splitlines()[0].endswith("error  2 problems found (exit code 2)")
    assert shown[0].splitlines()[1].endswith("job.yaml:3:5: unknown key 'pth'")
    assert shown[1:] == [None, "after"]


def test_json_wraps_the_lines_that_are_not_events():
    render = Renderer(as_json=True)

    assert json.loads(render(parse("Ctrl-C received: stopping"))) == {
        "event": "message", "level": "info", "text": "Ctrl-C received: stopping"}
    assert json.loads(render(parse(json.dumps(event("run_started")))))["event"] == "run_started"


def test_the_exit_code_is_the_one_the_run_ended_with_else_its_status_says():
    failed = {"event": "error", "error": {"exit_code": 143}}

    assert _exit_code(SimpleNamespace(status="interrupted"), failed) == 143
    assert _exit_code(SimpleNamespace(status="succeeded"), {"event": "report"}) == 0
    assert _exit_code(SimpleNamespace(status="interrupted"), None) == 130  # killed: no last words
    assert _exit_code(SimpleNamespace(status="failed"), None) == 1
