"""What a terminal shows while a glob of files loads: one bar over the bytes of all the files, a
line per file loaded, a line when a file cannot be read, and a resumed run's bar starting where
the run it continues stopped."""

from __future__ import annotations

import gzip
import io

import pytest
from rich.console import Console

from portl.cli.watch import RunWatcher
from portl.engine.events import Event
from portl.engine.plan import plan
from portl.spec.loader import load_job


@pytest.fixture
def glob_plan(write, tmp_path):
    write("data/a.csv", "id,amount\n" + "".join(f"{i},{i}\n" for i in range(1000)))
    (tmp_path / "data" / "b.csv.gz").write_bytes(gzip.compress(b"id,amount\n1,2\n3,4\n"))
    path = write("job.yaml", """
        source: {type: csv, path: "data/*.csv*"}
        destination: {type: sqlite, path: out.db, table: t}
        parallel: {workers: 2}
    """)
    the_plan = plan(load_job(path, environ={}))
    yield the_plan
    the_plan.close()


def watching(the_plan) -> tuple[RunWatcher, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    return RunWatcher(console, the_plan, json_events=False, progress=True), out


def test_the_bar_counts_the_bytes_of_every_file_as_stored(glob_plan, tmp_path):
    watcher, _ = watching(glob_plan)
    with watcher:
        task = watcher.bar.tasks[0]
        stored = sum(p.stat().st_size for p in (tmp_path / "data").iterdir())
        assert task.total == stored
        watcher(Event("batch_committed", batch=1, details={"rows": 500, "bytes": 4000}))
        watcher(Event("batch_committed", batch=2, details={"rows": 500, "bytes": 2000}))
        assert (task.completed, task.fields["rows"]) == (6000, 1000)


def test_each_file_loaded_gets_a_line_with_its_rows_and_seconds(glob_plan):
    watcher, out = watching(glob_plan)
    with watcher:
        watcher(Event("file_finished", details={"partition": "0", "file": "data/a.csv", "rows": 1_234_567, "seconds": 12.34}))
        watcher(Event("file_finished", details={"partition": "1", "file": "data/b.csv.gz", "rows": 2, "seconds": 0.01,
                                                "earlier_rows": 40_000}))
    text = out.getvalue()
    assert "loaded data/a.csv: 1,234,567 rows in 12.3 s\n" in text
    assert "loaded data/b.csv.gz: 2 rows in 0.0 s (and 40,000 before the resume)\n" in text


def test_a_file_that_cannot_be_read_is_said_at_once(glob_plan):
    watcher, out = watching(glob_plan)
    with watcher:
        watcher(Event("partition_failed", level="error",
                      details={"partition": "1", "error": "cannot read gzip file data/b.csv.gz at compressed byte 30"}))
    assert "failed (the other partitions load on): cannot read gzip file data/b.csv.gz at compressed byte 30" in out.getvalue()


def test_a_resumed_run_starts_its_bar_at_the_bytes_committed_before(glob_plan):
    watcher, out = watching(glob_plan)
    with watcher:
        watcher(Event("resuming", details={"run_id": "r1", "committed_rows": 700, "committed_bytes": 5000}))
        watcher(Event("batch_committed", batch=1, details={"rows": 300, "bytes": 1000}))
        assert watcher.bar.tasks[0].completed == 6000
    assert "resuming run r1: 700 source rows already committed" in out.getvalue()
