"""The same write, upsert, conflict, rollback and resume cases against every sink.

Cases a sink cannot run are filtered by its declared capabilities; each such gap is listed in
GAPS with its reason, and a test checks that list against the capabilities, so a gap can never be
introduced silently.
"""

from __future__ import annotations

import csv
import textwrap

import pytest

import portl
from portl.connectors import registry
from portl.connectors.base import ConflictStrategy, WriteMode

SINKS = {
    "sqlite": "{type: sqlite, path: out.db, table: people}",
    "csv": "{type: csv, path: out.csv}",
    "jsonl": "{type: jsonl, path: out.jsonl}",
    "parquet": "{type: parquet, path: out.parquet}",
    "postgres": "{type: postgres, url: '%(url)s', table: people}",
    "mysql": "{type: mysql, url: '%(url)s', table: people}",
    "elasticsearch": "{type: elasticsearch, url: '%(url)s', index: people}",
    "snowflake": "{type: snowflake, %(url)s, table: people}",
    "gsheet": "{type: gsheet, %(url)s, sheet: people}",
    "s3": "{type: csv, path: 's3://%(url)s/out/people.csv'}",
}
SERVERS = {"postgres": "pg_url", "mysql": "mysql_url", "elasticsearch": "search_url", "snowflake": "snowflake_yaml",
           "gsheet": "gsheet_url", "s3": "s3_url"}
"""The fixture that gives a sink's test a place of its own on its server: a text that stands for
``%(url)s`` in the sink's line of SINKS."""


@pytest.fixture(autouse=True)
def _server_urls(request, tmp_path):
    """Give each test of a server sink its own place there, and remember it for job()."""
    sink = request.node.callspec.params.get("sink") if hasattr(request.node, "callspec") else None
    fixture = SERVERS.get(sink)
    (tmp_path / ".urls").write_text(request.getfixturevalue(fixture) if fixture else "")

GAPS = {
    ("csv", "upsert"): "a CSV file has no keys to update in place",
    ("jsonl", "upsert"): "a JSON lines file has no keys to update in place",
    ("parquet", "upsert"): "a Parquet file has no keys to update in place",
    ("parquet", "append"): "a Parquet file cannot be appended to once written",
    ("parquet", "resume"): "a Parquet file is rewritten from the start on resume (still exactly once)",
    ("csv", "refuse"): "a CSV file has no constraints: it refuses no row",
    ("jsonl", "refuse"): "a JSON lines file has no constraints: it refuses no row",
    ("parquet", "refuse"): "a Parquet file has no constraints: it refuses no row",
    ("snowflake", "refuse"): "Snowflake enforces no key and has no savepoints: a batch is loaded or refused whole",
    ("s3", "upsert"): "an S3 object has no keys to update in place",
    ("s3", "append"): "S3 has no append: an existing object can only be replaced whole",
    ("s3", "refuse"): "an object has no constraints: it refuses no row",
}

def write_source(tmp_path, rows):
    lines = ["id,name,city"] + [f"{i},{name},{city}" for i, name, city in rows]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")


def job(tmp_path, sink, body="", name="people"):
    url = (tmp_path / ".urls").read_text()
    destination = SINKS[sink] % {"url": url}
    text = f"name: {name}\nsource: {{type: csv, path: in.csv}}\ndestination: {destination}\n" + textwrap.dedent(body)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def load(path, **options):
    the_plan = portl.plan(portl.load_job(path))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(options.pop("state")), **options))
    finally:
        the_plan.close()


def destination_rows(tmp_path, sink):
    config = portl.load_job(str(tmp_path / "people.yaml")).job.destination
    source = registry.open_source(config, str(tmp_path))
    try:
        rows = [r for chunk in source.read(1000, None) for r in chunk.data.to_pylist()]
    finally:
        source.close()
    return sorted(({k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows), key=lambda r: int(r["id"]))


def supports(sink, case):
    return (sink, case) not in GAPS


def capabilities(tmp_path, sink):
    write_source(tmp_path, [(1, "a", "x")])
    the_plan = portl.plan(portl.load_job(job(tmp_path, sink)))
    try:
        return the_plan.sink.capabilities
    finally:
        the_plan.close()


@pytest.mark.parametrize("sink", SINKS)
def test_declared_gaps_match_the_capabilities(tmp_path, sink):
    caps = capabilities(tmp_path, sink)
    assert supports(sink, "upsert") == (WriteMode.UPSERT in caps.modes and set(caps.upsert_strategies) == set(ConflictStrategy))
    assert supports(sink, "resume") == caps.resumable
    assert supports(sink, "refuse") == caps.savepoints


@pytest.mark.parametrize("sink", SINKS)
def test_append_then_append_keeps_both_loads(tmp_path, sink):
    if not supports(sink, "append"):
        pytest.skip(GAPS[(sink, "append")])
    state = tmp_path / "state"
    write_source(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    path = job(tmp_path, sink, "mode: append\nmapping: {columns: {id: {type: int}, name: {}, city: {}}}\n")
    assert load(path, state=state).counts.inserted == 2
    write_source(tmp_path, [(3, "cy", "lima")])
    assert load(path, state=state).counts.inserted == 1
    assert [r["id"] for r in destination_rows(tmp_path, sink)] == ["1", "2", "3"]


@pytest.mark.parametrize("sink", SINKS)
def test_a_row_the_destination_refuses_is_rejected_alone_and_the_others_load(tmp_path, sink):
    if not supports(sink, "refuse"):
        pytest.skip(GAPS[(sink, "refuse")])
    state = tmp_path / "state"
    columns = "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"
    write_source(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    load(job(tmp_path, sink, "conflict: {key: [id]}\n" + columns), state=state)  # creates the table with its key
    write_source(tmp_path, [(3, "cy", "lima"), (2, "bo", "nice"), (4, "di", "baku")])
    report = load(job(tmp_path, sink, "mode: append\n" + columns), state=state)
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (3, 2, 1)
    assert [r["id"] for r in destination_rows(tmp_path, sink)] == ["1", "2", "3", "4"]
    with open(tmp_path / "people.rejects.csv", newline="") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert (reject["line"], reject["record"], reject["original"]) == ("3", "2", "2,bo,nice")
    assert reject["error"].startswith("refused by the destination: ")


@pytest.mark.parametrize("sink", SINKS)
def test_replace_leaves_only_the_last_load(tmp_path, sink):
    state = tmp_path / "state"
    path = job(tmp_path, sink, "mode: replace\nmapping: {columns: {id: {type: int}, name: {}, city: {}}}\n")
    write_source(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    load(path, state=state)
    write_source(tmp_path, [(5, "eve", "kyiv")])
    report = load(path, state=state)
    assert report.counts.inserted == 1
    assert destination_rows(tmp_path, sink) == [{"id": "5", "name": "eve", "city": "kyiv"}]


EXPECTED = {
    "skip": ({"1": ("ann", "oslo"), "2": ("bob", "rome"), "3": ("cy", "lima")}, (1, 0, 2)),
    "overwrite": ({"1": ("ANN", None), "2": ("BOB", "paris"), "3": ("cy", "lima")}, (1, 2, 0)),
    "merge": ({"1": ("ANN", "oslo"), "2": ("BOB", "paris"), "3": ("cy", "lima")}, (1, 2, 0)),
}


@pytest.mark.parametrize("strategy", ["skip", "overwrite", "merge"])
@pytest.mark.parametrize("sink", SINKS)
def test_upsert_strategies_settle_existing_keys(tmp_path, sink, strategy):
    if not supports(sink, "upsert"):
        pytest.skip(GAPS[(sink, "upsert")])
    state = tmp_path / "state"
    body = f"conflict: {{key: [id], strategy: {strategy}}}\nmapping: {{columns: {{id: {{type: int}}, name: {{}}, city: {{}}}}}}\n"
    path = job(tmp_path, sink, body)
    write_source(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    load(path, state=state)
    (tmp_path / "in.csv").write_text("id,name,city\n1,ANN,\n2,BOB,paris\n3,cy,lima\n")
    report = load(path, state=state)
    expected_rows, (inserted, updated, skipped) = EXPECTED[strategy]
    assert (report.counts.inserted, report.counts.updated, report.counts.skipped_total) == (inserted, updated, skipped)
    assert {r["id"]: (r["name"], r["city"]) for r in destination_rows(tmp_path, sink)} == expected_rows


@pytest.mark.parametrize("sink", SINKS)
def test_fail_strategy_reports_every_conflicting_key_and_writes_nothing_of_the_batch(tmp_path, sink):
    if not supports(sink, "upsert"):
        pytest.skip(GAPS[(sink, "upsert")])
    state = tmp_path / "state"
    path = job(tmp_path, sink, "conflict: {key: [id], strategy: fail}\nmapping: {columns: {id: {type: int}, name: {}, city: {}}}\n")
    write_source(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    load(path, state=state)
    write_source(tmp_path, [(1, "x", "x"), (2, "y", "y"), (3, "z", "z")])
    with pytest.raises(portl.ConflictError) as caught:
        load(path, state=state, restart=True)
    assert sorted(caught.value.keys) == [(1,), (2,)]
    assert [r["id"] for r in destination_rows(tmp_path, sink)] == ["1", "2"]


@pytest.mark.parametrize("sink", SINKS)
def test_a_crash_then_resume_loads_every_row_exactly_once(tmp_path, sink, crash_hook):
    state = tmp_path / "state"
    body = "batch: {size: 40}\n" + crash_hook.yaml
    body += "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"
    path = job(tmp_path, sink, body)
    write_source(tmp_path, [(i, f"n{i}", f"c{i % 7}") for i in range(1, 1001)])
    crash_hook.arm()
    with pytest.raises(portl.HookError, match="simulated crash"):
        load(path, state=state)
    crash_hook.disarm()
    report = load(path, state=state, resume=True)
    assert report.resumed
    ids = [int(r["id"]) for r in destination_rows(tmp_path, sink)]
    assert sorted(ids) == list(range(1, 1001))
    assert report.counts.read == 1000 and report.counts.inserted == 1000


@pytest.mark.parametrize("sink", SINKS)
def test_transaction_job_rolls_everything_back_on_failure(tmp_path, sink, crash_hook):
    state = tmp_path / "state"
    body = "transaction: job\nmode: replace\nbatch: {size: 40}\n"
    body += crash_hook.yaml
    body += "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"
    path = job(tmp_path, sink, body)
    write_source(tmp_path, [(1, "old", "x")])
    load(path, state=state)
    write_source(tmp_path, [(i, f"n{i}", "c") for i in range(1, 501)])
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        load(path, state=state)
    assert destination_rows(tmp_path, sink) == [{"id": "1", "name": "old", "city": "x"}]


@pytest.mark.parametrize("sink", SINKS)
def test_parallel_workers_load_every_row_once_and_resume_per_partition(tmp_path, sink, crash_hook):
    state = tmp_path / "state"
    body = "parallel: {workers: 2}\nbatch: {size: 500}\n"
    body += crash_hook.yaml
    body += "mapping: {columns: {id: {type: int}, name: {}, city: {}}}\n"
    path = job(tmp_path, sink, body)
    write_source(tmp_path, [(i, f"name-{i:06d}", f"city-{i % 13}") for i in range(1, 20001)])
    the_plan = portl.plan(portl.load_job(path))
    partitions = len(the_plan.source.partitions(2))
    the_plan.close()
    assert partitions == 2
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        load(path, state=state)
    crash_hook.disarm()
    report = load(path, state=state, resume=True)
    ids = sorted(int(r["id"]) for r in destination_rows(tmp_path, sink))
    assert ids == list(range(1, 20001))
    assert report.counts.read == 20000 and report.counts.inserted == 20000
