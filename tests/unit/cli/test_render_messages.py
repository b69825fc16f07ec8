"""What the summary line, the plan preview and rejects say: words, agreement, and rates that are true."""

import io
import json

import pytest
from rich.console import Console

import portl
from portl.cli.render import render_plan, render_report
from portl.engine.run import Counts, RunReport


def printed(render, thing) -> str:
    out = io.StringIO()
    render(Console(file=out, width=160, highlight=False, color_system=None), thing)
    return out.getvalue()


def report(status: str, **fields) -> RunReport:
    counts = Counts(read=10, inserted=4, rejected=6, batches=1)
    return RunReport("r1", "people", status, counts, 2.0, None, **fields)


def test_a_run_stopped_by_the_reject_limit_says_so_in_words():
    first = printed(render_report, report("reject_limit")).splitlines()[0]
    assert first.startswith("stopped: too many rejects job people run r1 in 2.0 s")
    assert "reject_limit" not in first


def test_a_resumed_run_reports_the_rate_of_the_rows_it_moved_itself():
    resumed = report("succeeded", resumed=True, earlier_rows=8)
    assert (resumed.rows_moved, resumed.rows_per_s) == (2, 1.0)
    assert "(1 rows/s)" in printed(render_report, resumed)
    assert resumed.to_json()["rows_per_s"] == 1.0


def test_a_finished_run_resumed_again_moved_nothing():
    again = report("succeeded", resumed=True, already_finished=True)
    assert (again.rows_moved, again.rows_per_s) == (0, 0.0)


def test_resuming_counts_only_what_this_process_read(write, tmp_path, crash_hook):
    write("in.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 11)))
    path = write("job.yaml", "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n"
                             "batch: {size: 2}\n" + crash_hook.yaml)

    def run(**options):
        the_plan = portl.plan(portl.load_job(str(path)))
        try:
            return portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), **options))
        finally:
            the_plan.close()

    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run()
    crash_hook.disarm()
    resumed = run(resume=True)
    assert (resumed.counts.read, resumed.earlier_rows, resumed.rows_moved) == (10, 4, 6)
    assert resumed.rows_per_s == pytest.approx(6 / resumed.duration_s)


@pytest.fixture
def nulls_plan(write):
    write("in.jsonl", "".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "note": "NULL"}, {"id": 2, "note": None}, {"id": 3, "note": ""}, {"id": 4, "note": "plain"}]))
    path = write("job.yaml", "source: {type: jsonl, path: in.jsonl}\ndestination: {type: csv, path: out.csv}\n")
    the_plan = portl.plan(portl.load_job(str(path)))
    yield the_plan
    the_plan.close()


def test_the_preview_tells_the_text_null_from_a_real_null(nulls_plan):
    preview = printed(render_plan, nulls_plan).split("Preview:")[1]
    note = next(line for line in preview.splitlines() if line.startswith("note"))
    assert note.split() == ["note", "'NULL'", "NULL", "''", "plain"]


def test_the_preview_header_agrees_with_its_row_count(write):
    write("in.csv", "id\n1\n")
    path = write("job.yaml", "source: {type: csv, path: in.csv}\ndestination: {type: csv, path: out.csv}\n")
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        text = printed(render_plan, the_plan)
    finally:
        the_plan.close()
    assert "Preview: the first row as it would be written" in text
    assert ": CSV file in.csv — 1 row (estimated)" in text


def test_a_json_lines_row_whose_type_changed_is_shown_with_its_row_and_line(write):
    rows = [{"id": i} for i in range(1, 4)] + [{"id": "four"}]
    write("in.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    path = write("job.yaml", "source: {type: jsonl, path: in.jsonl}\ndestination: {type: csv, path: out.csv}\n"
                             "batch: {size: 2}\n")
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        text = printed(render_plan, the_plan)
    finally:
        the_plan.close()
    assert ("would be rejected: row 4 (line 4), column id: field id is a string here, but a number in the first "
            "rows, which set the types") in text


def test_a_run_stopped_after_one_batch_says_one_committed_batch(write, tmp_path):
    write("in.csv", "id\n" + "".join(f"{i}\n" for i in range(1, 7)))
    path = write("job.yaml", "source: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n"
                             "batch: {size: 2}\n")
    options = portl.RunOptions(state_dir=str(tmp_path / "state"))
    options.events.subscribe(lambda event: options.stop.set() if event.event == "batch_committed" else None)
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        with pytest.raises(portl.Interrupted) as info:
            portl.run(the_plan, options)
    finally:
        the_plan.close()
    assert str(info.value).startswith("stopped by the user after 1 committed batch (2 source rows). ")


def test_the_ledger_listing_says_too_many_rejects_in_words():
    from portl.cli.render import render_runs
    from portl.state.ledger import RunRecord

    record = RunRecord("r1", "people", "job.yaml", "h", "reject_limit", 1.0, 3.0, {"read": 10, "rejected": 6})
    out = io.StringIO()
    render_runs(Console(file=out, width=200, highlight=False, color_system=None), [record], "state")
    assert "stopped: too many rejects" in out.getvalue() and "reject_limit" not in out.getvalue()
