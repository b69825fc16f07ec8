"""A run spread over processes (engine.spread): begun once, its partitions loaded separately,
finished once; each row committed exactly once however often a part is repeated."""

from __future__ import annotations

import csv
import threading

import pytest

import portl
from portl.engine import spread
from portl.engine.events import Events
from portl.errors import Interrupted, PortlError, ResumeError
from tests.integration.postgres.helpers import job_file, rows_of

ROWS = 5000


def write_people(tmp_path, rows=ROWS, bad_every=0):
    with open(tmp_path / "in.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name"])
        for i in range(1, rows + 1):
            writer.writerow([f"x{i}" if bad_every and i % bad_every == 0 else i, f"n{i}"])


def plan_of(tmp_path, pg_url, mode="append", rejects="rejects.csv"):
    conflict = "conflict: {key: [id], strategy: merge}\n" if mode == "upsert" else ""
    path = job_file(tmp_path, f"""\
name: people
source: {{type: csv, path: in.csv}}
destination: {{type: postgres, url: "{pg_url}", table: people}}
mode: {mode}
mapping:
  columns: {{id: {{type: int}}, name: {{}}}}
batch: {{size: 500}}
rejects: {{path: {rejects}}}
{conflict}""")
    return portl.plan(portl.load_job(path))


def test_a_run_in_parts_loads_every_row_once_even_when_parts_repeat(tmp_path, pg, pg_url):
    write_people(tmp_path, bad_every=1000)
    plan = plan_of(tmp_path, pg_url)
    try:
        started = spread.start_run(plan, partitions=3)
        assert len(started.partitions) == 3
        # The destination knows the run and each partition before any row is loaded.
        assert rows_of(pg, f"SELECT count(*) FROM _portl_checkpoints WHERE run_id = '{started.run_id}'") == [(3,)]
        counts = [spread.load_partition(plan, started.run_id, p.partition) for p in started.partitions]
        again = spread.load_partition(plan, started.run_id, started.partitions[0].partition)  # delivered twice
        assert again.to_json() == counts[0].to_json()
        report = spread.finish_run(plan, started.run_id)
    finally:
        plan.close()
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (ROWS, ROWS - 5, 5)
    assert sum(c.read for c in counts) == ROWS
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id) FROM people") == [(ROWS - 5, ROWS - 5)]
    plan = plan_of(tmp_path, pg_url)
    try:  # finishing twice changes nothing
        assert spread.finish_run(plan, started.run_id).already_finished
    finally:
        plan.close()
    assert rows_of(pg, "SELECT count(*) FROM people") == [(ROWS - 5,)]


def test_a_stopped_partition_goes_on_from_its_last_commit(tmp_path, pg, pg_url):
    write_people(tmp_path)
    plan = plan_of(tmp_path, pg_url)
    try:
        started = spread.start_run(plan, partitions=2)
        first = started.partitions[0].partition
        stop = threading.Event()
        seen = []

        def stop_after_two(event):
            if event.event == "batch_committed":
                seen.append(event)
                if len(seen) == 2:
                    stop.set()

        options = portl.RunOptions(stop=stop, events=Events([stop_after_two]))
        with pytest.raises(Interrupted, match=r"stopped after \d+ committed batches of partition 0 "):
            spread.load_partition(plan, started.run_id, first, options)
        with pytest.raises(PortlError, match="cannot finish: 2 partitions not loaded yet"):
            spread.finish_run(plan, started.run_id)
        for p in started.partitions:
            spread.load_partition(plan, started.run_id, p.partition)
        report = spread.finish_run(plan, started.run_id)
    finally:
        plan.close()
    assert report.counts.read == ROWS and report.counts.inserted == ROWS
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id) FROM people") == [(ROWS, ROWS)]


def test_an_append_job_with_a_run_in_parts_unfinished_is_refused(tmp_path, pg, pg_url):
    write_people(tmp_path, rows=1000)
    plan = plan_of(tmp_path, pg_url)
    try:
        started = spread.start_run(plan, partitions=2)
        spread.load_partition(plan, started.run_id, started.partitions[0].partition)
        with pytest.raises(ResumeError, match=f"run {started.run_id} of job 'people' stopped after committing"):
            spread.start_run(plan, partitions=2)
        with pytest.raises(ResumeError, match="no partition 'nope'"):
            spread.load_partition(plan, started.run_id, "nope")
    finally:
        plan.close()


def test_a_sqlite_destination_is_not_loaded_in_parts(tmp_path):
    write_people(tmp_path, rows=10)
    path = job_file(tmp_path, """\
name: people
source: {type: csv, path: in.csv}
destination: {type: sqlite, path: out.db, table: people}
""")
    plan = portl.plan(portl.load_job(path))
    try:
        assert "one writer at a time" in spread.refusal(plan)
        with pytest.raises(PortlError, match="cannot be loaded in parts: .*one writer at a time"):
            spread.start_run(plan)
    finally:
        plan.close()


def test_a_run_begun_that_loaded_nothing_does_not_stop_the_next(tmp_path, pg, pg_url):
    write_people(tmp_path, rows=1000)
    plan = plan_of(tmp_path, pg_url)
    try:
        abandoned = spread.start_run(plan, partitions=2)  # its process stopped before any batch
        started = spread.start_run(plan, partitions=2)
        for p in started.partitions:
            spread.load_partition(plan, started.run_id, p.partition)
        report = spread.finish_run(plan, started.run_id)
    finally:
        plan.close()
    assert report.counts.inserted == 1000
    assert rows_of(pg, f"SELECT count(*) FROM _portl_checkpoints WHERE run_id = '{abandoned.run_id}'") == [(0,)]
    assert rows_of(pg, "SELECT count(*), count(DISTINCT id) FROM people") == [(1000, 1000)]
