"""Reading Elasticsearch and OpenSearch indexes with their real clients, against the in-memory
stand-in cluster of tests/fakes/search_server.py (not a real server: none can run here)."""

from __future__ import annotations

import csv
import sqlite3

import pytest

import portl
from portl.connectors import registry
from portl.connectors.base import Checkpoint
from portl.connectors.elasticsearch import Config
from tests.fakes.search_server import SearchServer
from tests.integration.elasticsearch.helpers import run_job


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request):
    with SearchServer(request.param) as server:
        yield server


def seed(cluster: SearchServer, count: int, mappings: dict | None = None) -> None:
    """An index made as a user would make it, with the product's own client."""
    if cluster.flavor == "opensearch":
        from opensearchpy import OpenSearch, helpers

        client = OpenSearch(hosts=[cluster.url])
        client.indices.create(index="events", body={"mappings": mappings or {}})
    else:
        from elasticsearch import Elasticsearch, helpers

        client = Elasticsearch(cluster.url)
        client.indices.create(index="events", mappings=mappings or {})
    actions = ({"_index": "events", "_id": f"e{i:04d}", "_source": {"n": i, "kind": "odd" if i % 2 else "even",
                                                                     "at": f"2024-01-01T00:00:{i % 60:02d}Z"}}
               for i in range(1, count + 1))
    helpers.bulk(client, actions)
    client.close()


def open_source(cluster: SearchServer, **extra):
    config = Config(type=cluster.flavor, url=cluster.url, index="events", **extra)
    return registry.open_source(config, ".")


MAPPINGS = {"properties": {"n": {"type": "long"}, "kind": {"type": "keyword"}, "at": {"type": "date"}}}


def test_the_schema_comes_from_the_index_mapping(cluster):
    seed(cluster, 3, MAPPINGS)
    source = open_source(cluster)
    try:
        assert [(f.name, str(f.type)) for f in source.schema()] == [
            ("n", "int64"), ("kind", "string"), ("at", "timestamp[us, tz=UTC]")]
    finally:
        source.close()


def test_pages_are_read_in_one_point_in_time_with_search_after(cluster):
    seed(cluster, 25, MAPPINGS)
    source = open_source(cluster)
    try:
        chunks = list(source.read(10, None))
    finally:
        source.close()
    assert [c.data.num_rows for c in chunks] == [10, 10, 5]
    assert sorted(n for c in chunks for n in c.data.column("n").to_pylist()) == list(range(1, 26))
    pit_path = "/events/_search/point_in_time" if cluster.flavor == "opensearch" else "/events/_pit"
    assert [m for m, p in cluster.requests if p == pit_path] == ["POST"]
    assert sum(1 for m, p in cluster.requests if p == "/_search") == 3
    assert not cluster.pits  # closed after the read
    assert chunks[-1].checkpoint.rows == 25


def test_a_read_resumed_from_a_checkpoint_gives_exactly_the_rest(cluster):
    seed(cluster, 30, MAPPINGS)
    source = open_source(cluster)
    try:
        first = next(iter(source.read(12, None)))
        saved = Checkpoint.from_json(first.checkpoint.to_json())
        rest = list(source.read(12, saved))
    finally:
        source.close()
    seen = first.data.column("n").to_pylist() + [n for c in rest for n in c.data.column("n").to_pylist()]
    assert sorted(seen) == list(range(1, 31)) and len(seen) == 30
    assert rest[0].first_record == 13


def test_a_point_in_time_that_expires_between_pages_is_opened_again_and_the_read_goes_on(cluster):
    seed(cluster, 30, MAPPINGS)
    source = open_source(cluster)
    seen = []
    try:
        for chunk in source.read(10, None):
            seen += chunk.data.column("n").to_pylist()
            cluster.pits.clear()  # keep_alive passed before the next page was asked for
        assert sorted(seen) == list(range(1, 31)) and len(seen) == 30
        assert source.warnings() == ["the point in time on index events expired during the read and was opened "
                                     "again (3 times): documents changed meanwhile were read as they are now; a "
                                     "longer keep_alive avoids it"]
    finally:
        source.close()


def test_a_query_filters_what_is_read(tmp_path, cluster):
    seed(cluster, 20, MAPPINGS)
    report = run_job(tmp_path, f"""
        name: odd
        source: {{type: {cluster.flavor}, url: '{cluster.url}', index: events,
                  query: {{bool: {{filter: [{{term: {{kind: odd}}}}, {{range: {{n: {{gt: 10}}}}}}]}}}}}}
        destination: {{type: csv, path: out.csv}}
        batch: {{size: 3}}
        """)
    assert report.counts.read == 5
    with open(tmp_path / "out.csv", newline="") as handle:
        assert sorted(int(r["n"]) for r in csv.DictReader(handle)) == [11, 13, 15, 17, 19]


def test_a_document_whose_value_does_not_fit_its_column_is_rejected_with_its_id(tmp_path, search_server):
    seed(search_server, 3, {"properties": {"n": {"type": "long"}, "kind": {"type": "keyword"},
                                           "at": {"type": "keyword"}}})
    search_server.indices["events"].mappings["properties"]["n"] = {"type": "boolean"}  # changed under the data
    report = run_job(tmp_path, f"""
        name: bad
        source: {{type: elasticsearch, url: '{search_server.url}', index: events}}
        destination: {{type: csv, path: out.csv}}
        """)
    assert (report.counts.read, report.counts.rejected) == (3, 3)
    with open(tmp_path / "bad.rejects.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert first["error"] == "document e0001: value 1 does not fit column n (bool)"


def test_a_crash_then_resume_reads_every_document_once(tmp_path, cluster, crash_hook):
    seed(cluster, 100, MAPPINGS)
    body = (f"name: copy\nsource: {{type: {cluster.flavor}, url: '{cluster.url}', index: events}}\n"
            "destination: {type: sqlite, path: out.db, table: events}\nbatch: {size: 20}\n" + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(tmp_path, body)
    crash_hook.disarm()
    report = run_job(tmp_path, body, resume=True)
    assert report.resumed and report.counts.read == 100
    with sqlite3.connect(tmp_path / "out.db") as conn:
        assert sorted(n for (n,) in conn.execute("SELECT n FROM events")) == list(range(1, 101))


def test_a_missing_index_is_a_clear_error(search_server):
    with pytest.raises(portl.PortlError, match=r"index 'events' not found on Elasticsearch at http://127\.0\.0\.1"):
        open_source(search_server)


def add_events(cluster: SearchServer, numbers: range) -> None:
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(cluster.url)
    helpers.bulk(client, ({"_index": "events", "_id": f"e{i:04d}",
                           "_source": {"n": i, "kind": "late", "at": f"2024-01-02T00:{i % 60:02d}:00Z"}}
                          for i in numbers))
    client.close()


@pytest.mark.parametrize("cursor", ["n", "at"])
def test_an_incremental_job_reads_only_the_documents_past_the_last_runs_mark(tmp_path, search_server, cursor):
    seed(search_server, 20, MAPPINGS)
    body = (f"name: events\nsource: {{type: elasticsearch, url: '{search_server.url}', index: events, "
            f"incremental: {{cursor: {cursor}}}}}\n"
            "destination: {type: sqlite, path: out.db, table: events}\nconflict: {key: [n]}\n")
    first = run_job(tmp_path, body)
    assert first.counts.read == 20
    add_events(search_server, range(21, 26))
    second = run_job(tmp_path, body)
    assert second.counts.read == 5 and second.counts.inserted == 5
    third = run_job(tmp_path, body)
    assert third.counts.read == 0
    with sqlite3.connect(tmp_path / "out.db") as conn:
        assert sorted(n for (n,) in conn.execute("SELECT n FROM events")) == list(range(1, 26))


def test_the_plan_shows_the_incremental_filter_as_a_range_query(tmp_path, search_server):
    seed(search_server, 3, MAPPINGS)
    path = tmp_path / "job.yaml"
    path.write_text(f"name: events\nsource: {{type: elasticsearch, url: '{search_server.url}', index: events, "
                    "incremental: {cursor: n}}\ndestination: {type: sqlite, path: out.db, table: events}\n")
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        lines = the_plan.incremental.lines
    finally:
        the_plan.close()
    assert lines[-1] == ('filter: {"bool": {"should": [{"range": {"n": {"lte": 3}}}, {"bool": {"must_not": '
                         '[{"exists": {"field": "n"}}]}}], "minimum_should_match": 1}}')


def test_a_text_cursor_is_refused_at_its_key(tmp_path, search_server):
    seed(search_server, 3, MAPPINGS)
    path = tmp_path / "job.yaml"
    path.write_text(f"name: events\nsource: {{type: elasticsearch, url: '{search_server.url}', index: events, "
                    "incremental: {cursor: kind}}\ndestination: {type: sqlite, path: out.db, table: events}\n")
    with pytest.raises(portl.ConfigError, match="field kind of .* is text; a cursor here is a number or a date field"):
        portl.plan(portl.load_job(str(path)))


def test_fields_reads_only_the_fields_named_in_their_order(cluster):
    seed(cluster, 4, MAPPINGS)
    source = open_source(cluster, fields=["kind", "n"])
    try:
        assert source.schema().names == ["kind", "n"]
        rows = [r for chunk in source.read(10, None) for r in chunk.data.to_pylist()]
    finally:
        source.close()
    assert sorted(rows, key=lambda r: r["n"]) == [{"kind": "odd", "n": 1}, {"kind": "even", "n": 2},
                                                  {"kind": "odd", "n": 3}, {"kind": "even", "n": 4}]


def test_a_field_the_index_lacks_is_named_with_the_fields_it_has(search_server):
    seed(search_server, 1, MAPPINGS)
    with pytest.raises(portl.PortlError, match="index events has no field nope; its fields are: n, kind, at"):
        open_source(search_server, fields=["n", "nope"])
