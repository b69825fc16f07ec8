"""A commit that reached the destination although its connection dropped before the answer came
(the server committed, the client saw "lost connection") is not written a second time."""

from contextlib import contextmanager

import portl
from portl.errors import TransientError


def run_losing_one_commit(tmp_path, lose_call: int):
    (tmp_path / "in.csv").write_text("id,name\n" + "".join(f"{i},name-{i}\n" for i in range(1, 1001)))
    (tmp_path / "job.yaml").write_text(
        "name: lost\nsource: {type: csv, path: in.csv}\ndestination: {type: sqlite, path: out.db, table: t}\n"
        "batch: {size: 100}\nretry: {attempts: 3, backoff_ms: 0}\nmapping: {columns: {id: {type: bigint}, name: {}}}\n"
    )
    the_plan = portl.plan(portl.load_job(str(tmp_path / "job.yaml")))
    sink, original, calls = the_plan.sink, the_plan.sink.transaction, []
    events = []

    @contextmanager
    def transaction():
        calls.append(1)
        with original() as tx:
            yield tx
        if len(calls) == lose_call:  # committed; the answer is lost on the way back
            raise TransientError("lost connection to the server during COMMIT; worth retrying")

    sink.transaction = transaction
    try:
        options = portl.RunOptions(state_dir=str(tmp_path / "state"))
        options.events.subscribe(events.append)
        report = portl.run(the_plan, options)
    finally:
        the_plan.close()
    return report, events


def test_a_batch_whose_commit_landed_is_recorded_once_and_not_written_again(tmp_path):
    import sqlite3

    report, events = run_losing_one_commit(tmp_path, lose_call=2)
    assert [e.details["error"] for e in events if e.event == "retry"] == [
        "lost connection to the server during COMMIT; worth retrying"]
    with sqlite3.connect(tmp_path / "out.db") as db:
        assert db.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM t").fetchone() == (1000, 1000, 500500)
    counts = report.counts
    assert counts.batches > 2, "the file must take several batches"
    assert (report.status, counts.read, counts.inserted, counts.updated, counts.rejected) == ("succeeded", 1000, 1000, 0, 0)
