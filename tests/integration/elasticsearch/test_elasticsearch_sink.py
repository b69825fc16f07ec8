"""Writing into Elasticsearch and OpenSearch with their real clients, against the in-memory
stand-in cluster of tests/fakes/search_server.py (not a real server: none can run here)."""

from __future__ import annotations

import base64

import pytest

import portl
from tests.fakes.search_server import SearchServer
from tests.integration.elasticsearch.helpers import PEOPLE, rejects, run_job, write_people


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request):
    """Each test once against the Elasticsearch client and once against the OpenSearch client."""
    with SearchServer(request.param) as server:
        yield server


def destination(cluster: SearchServer, extra: str = "") -> str:
    return f"destination: {{type: {cluster.flavor}, url: '{cluster.url}', index: people{extra}}}\n"


def test_a_new_index_gets_a_mapping_derived_from_the_columns(tmp_path, cluster):
    (tmp_path / "in.csv").write_text("id,name,born,seen,price,ok,doc,raw\n"
                                     "1,ann,1990-05-01,2024-01-02T03:04:05.123456Z,12.30,true,\"{\"\"a\"\": [1]}\",aGk=\n")
    mapping = ("mapping: {columns: {id: {type: bigint}, name: {}, born: {type: date}, seen: {type: timestamptz}, "
               "price: {type: 'decimal(10,2)'}, ok: {type: bool}, doc: {type: json}, raw: {type: bytes, format: base64}}}\n")
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + mapping)
    assert report.counts.inserted == 1
    mappings = cluster.indices["people"].mappings
    types = {name: m["type"] for name, m in mappings["properties"].items()}
    assert types == {"id": "long", "name": "text", "born": "date", "seen": "date", "price": "keyword", "ok": "boolean",
                     "doc": "object", "raw": "binary"}
    assert mappings["properties"]["name"]["fields"]["keyword"]["type"] == "keyword"
    assert mappings["properties"]["born"]["format"] == "yyyy-MM-dd"
    assert mappings["properties"]["doc"]["enabled"] is False
    assert mappings["_meta"]["portl"]["columns"]["price"] == "decimal(10,2)"
    (doc,) = cluster.documents("people").values()
    assert doc == {"id": 1, "name": "ann", "born": "1990-05-01", "seen": "2024-01-02T03:04:05.123456Z",
                   "price": "12.30", "ok": True, "doc": {"a": [1]}, "raw": base64.b64encode(b"hi").decode()}


def test_keyless_documents_are_named_after_their_run_partition_and_position(tmp_path, cluster):
    write_people(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    assert sorted(cluster.documents("people")) == [f"{report.run_id}.0.0", f"{report.run_id}.0.1"]


def test_a_document_the_cluster_refuses_goes_to_the_reject_file_with_its_reason(tmp_path, cluster):
    write_people(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome"), (3, "cy", "lima")])
    cluster.refuse("2", "failed to parse field [city] of type [geo_point] in document with id '2'")
    body = "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE
    report = run_job(tmp_path, body + "conflict: {key: [id]}\n")
    assert (report.counts.inserted, report.counts.rejected) == (2, 1)
    assert sorted(cluster.documents("people")) == ["1", "3"]
    (reject,) = rejects(tmp_path, "people")
    assert reject["record"] == "2" and reject["column"] == "city"
    assert "failed to parse field [city] of type [geo_point]" in reject["error"]
    assert reject["error"].startswith("refused by the destination: ")


def test_a_value_the_index_mapping_cannot_take_is_rejected_and_the_batch_goes_over_the_wire_once(tmp_path, cluster):
    cluster.indices.clear()
    write_people(tmp_path, [(1, "ann", "oslo")])
    run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    (tmp_path / "in.csv").write_text("id,name,city\n2,bob,rome\nthree,cy,lima\n4,di,baku\nfive,ed,kyiv\n")
    before = len(cluster.bulk_requests)
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster)
                     + "mapping: {columns: {id: {type: text}, name: {}, city: {}}}\nvalidation: {schema: false}\n")
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (4, 2, 2)
    assert len(cluster.bulk_requests) - before == 1
    assert [r["original"] for r in rejects(tmp_path, "people")] == ["three,cy,lima", "five,ed,kyiv"]
    assert all("failed to parse field [id] of type [integer]" in r["error"] for r in rejects(tmp_path, "people"))
    assert sorted(str(d["id"]) for d in cluster.documents("people").values()) == ["1", "2", "4"]


def test_action_create_refuses_a_document_whose_id_is_taken_and_upsert_merges_it(tmp_path, cluster):
    write_people(tmp_path, [(1, "ann", "oslo"), (2, "bob", "rome")])
    run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE
            + "conflict: {key: [id]}\n")
    (tmp_path / "in.csv").write_text("id,name\n2,BOB\n3,cy\n")
    columns = "mapping: {columns: {id: {type: int}, name: {}}}\n"
    created = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n"
                      + destination(cluster, ", action: create") + columns, name="create")
    assert (created.counts.inserted, created.counts.rejected) == (1, 1)
    assert "a document with _id '2' (key id) already exists" in rejects(tmp_path, "people")[0]["error"]
    (tmp_path / "in.csv").write_text("id,name\n2,BOB\n4,di\n")
    upserted = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n"
                       + destination(cluster, ", action: upsert") + columns, name="upsert")
    assert (upserted.counts.inserted, upserted.counts.updated) == (1, 1)
    docs = cluster.documents("people")
    assert docs["2"] == {"id": 2, "name": "BOB", "city": "rome"}
    assert docs["4"] == {"id": 4, "name": "di"}


def test_the_key_of_several_columns_is_joined_with_escaped_bars(tmp_path, cluster):
    (tmp_path / "in.csv").write_text("region,code,n\nnorth|east,a\\b,1\nnorth,east|a\\b,2\n")
    run_job(tmp_path, "name: k\nsource: {type: csv, path: in.csv}\n" + destination(cluster)
            + "conflict: {key: [region, code]}\nmapping: {columns: {region: {}, code: {}, n: {type: int}}}\n")
    assert sorted(cluster.documents("people")) == ["north\\|east|a\\\\b", "north|east\\|a\\\\b"]


def test_bulk_requests_stay_within_chunk_rows_and_chunk_bytes(tmp_path, cluster):
    write_people(tmp_path, [(i, f"name-{i:04d}", "city") for i in range(1, 301)])
    body = "name: people\nsource: {type: csv, path: in.csv}\nbatch: {size: 300}\n" + PEOPLE
    run_job(tmp_path, body + destination(cluster, ", chunk_rows: 70"))
    assert [docs for docs, _ in cluster.bulk_requests] == [70, 70, 70, 70, 20]
    cluster.bulk_requests.clear()
    run_job(tmp_path, body.replace("name: people", "name: bytes") + destination(cluster, "2, chunk_bytes: 4096"))
    sizes = [size for _, size in cluster.bulk_requests]
    assert len(sizes) > 1 and max(sizes) <= 4096
    assert sum(docs for docs, _ in cluster.bulk_requests) == 300
    assert len(cluster.documents("people2")) == 300


def test_documents_answered_429_are_sent_again(tmp_path, cluster):
    write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 11)])
    cluster.throttle_items(4)
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    assert report.counts.inserted == 10 and report.counts.rejected == 0
    assert len(cluster.documents("people")) == 10
    assert [docs for docs, _ in cluster.bulk_requests] == [10, 4]


def test_a_bulk_request_answered_429_is_sent_again(tmp_path, cluster):
    write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 11)])
    cluster.throttle_requests(1)
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    assert report.counts.inserted == 10
    assert len(cluster.documents("people")) == 10


def test_a_crash_then_resume_loads_the_batches_after_the_last_checkpoint_once(tmp_path, cluster, crash_hook):
    write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 201)])
    body = ("name: people\nsource: {type: csv, path: in.csv}\nbatch: {size: 50}\n" + destination(cluster) + PEOPLE
            + crash_hook.yaml)
    crash_hook.arm()
    with pytest.raises(portl.HookError):
        run_job(tmp_path, body)
    crash_hook.disarm()
    (saved,) = cluster.documents("portl_checkpoints").values()
    assert saved["partition"] == "0" and saved["checkpoint"]["rows"] > 0
    assert len(cluster.documents("people")) == saved["checkpoint"]["rows"]
    report = run_job(tmp_path, body, resume=True)
    assert report.resumed and report.counts.read == 200 and report.counts.inserted == 200
    ids = sorted(doc["id"] for doc in cluster.documents("people").values())
    assert ids == list(range(1, 201))


def test_replace_swaps_an_alias_to_the_new_index_and_deletes_the_old_one(tmp_path, cluster):
    write_people(tmp_path, [(1, "ann", "oslo")])
    run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    assert "people" in cluster.indices
    body = "name: people\nsource: {type: csv, path: in.csv}\nmode: replace\n" + destination(cluster) + PEOPLE
    write_people(tmp_path, [(2, "bob", "rome")])
    run_job(tmp_path, body)
    assert sorted(cluster.indices) == ["people-portl-a", "portl_checkpoints"]
    assert cluster.indices["people-portl-a"].aliases == {"people"}
    write_people(tmp_path, [(3, "cy", "lima")])
    run_job(tmp_path, body)
    assert sorted(cluster.indices) == ["people-portl-b", "portl_checkpoints"]
    assert [d["id"] for d in cluster.documents("people").values()] == [3]


def test_an_unreachable_cluster_is_named_in_a_clear_error(tmp_path):
    with SearchServer() as server:
        url = server.url
    write_people(tmp_path, [(1, "ann", "oslo")])
    with pytest.raises(portl.PortlError) as caught:
        run_job(tmp_path, f"name: people\nsource: {{type: csv, path: in.csv}}\n"
                f"destination: {{type: elasticsearch, url: '{url}', index: people, max_retries: 0}}\n")
    message = str(caught.value)
    assert f"cannot reach Elasticsearch at {url}" in message and "check 'hosts' (or 'url')" in message


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_wrong_credentials_are_a_clear_error_that_never_shows_the_password(tmp_path, flavor):
    write_people(tmp_path, [(1, "ann", "oslo")])
    with SearchServer(flavor, username="elastic", password="right") as server:
        with pytest.raises(portl.PortlError) as caught:
            run_job(tmp_path, f"name: people\nsource: {{type: csv, path: in.csv}}\n"
                    f"destination: {{type: {flavor}, url: '{server.url}', index: people, username: elastic, "
                    "password: wr0ng-s3cret}\n")
        assert "refused the credentials (401" in str(caught.value)
        assert "wr0ng-s3cret" not in str(caught.value)
        report = run_job(tmp_path, f"name: people\nsource: {{type: csv, path: in.csv}}\n"
                         f"destination: {{type: {flavor}, url: '{server.url}', index: people, username: elastic, "
                         "password: right}\n", name="right")
        assert report.counts.inserted == 1


def test_a_user_who_may_not_see_the_cluster_but_may_write_the_index_loads(tmp_path):
    write_people(tmp_path, [(1, "ann", "oslo")])
    with SearchServer(greeting_forbidden=True) as server:
        report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(server) + PEOPLE)
        assert report.counts.inserted == 1
        assert ("GET", "/") in server.requests


def test_the_api_key_is_sent_and_masked_in_the_plan(tmp_path):
    write_people(tmp_path, [(1, "ann", "oslo")])
    with SearchServer(api_key="a2V5OnNlY3JldA==") as server:
        path = tmp_path / "job.yaml"
        path.write_text(f"name: people\nsource: {{type: csv, path: in.csv}}\ndestination: {{type: elasticsearch, "
                        f"url: '{server.url}', index: people, api_key: a2V5OnNlY3JldA==}}\n")
        the_plan = portl.plan(portl.load_job(str(path)))
        try:
            assert "a2V5OnNlY3JldA==" not in repr(the_plan.job.job.destination)
            assert "a2V5OnNlY3JldA==" not in str(the_plan.to_dict())
            report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
        finally:
            the_plan.close()
        assert report.counts.inserted == 1


def test_action_is_refused_with_mode_upsert(tmp_path, search_server):
    write_people(tmp_path, [(1, "ann", "oslo")])
    with pytest.raises(portl.PortlError, match="'action' applies to modes append and replace"):
        run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\nconflict: {key: [id]}\n"
                + destination(search_server, ", action: create") + PEOPLE)


def test_a_bulk_request_answered_503_is_sent_again(tmp_path, cluster):
    write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 11)])
    cluster.fail_next("*", "/_bulk", status=503)
    report = run_job(tmp_path, "name: people\nsource: {type: csv, path: in.csv}\n" + destination(cluster) + PEOPLE)
    assert report.counts.inserted == 10 and len(cluster.documents("people")) == 10
    assert sum(1 for _, p in cluster.requests if p == "/_bulk") == 2


@pytest.mark.parametrize("keyed", [False, True], ids=["keyless", "keyed index"])
def test_a_batch_written_again_because_its_checkpoint_failed_is_loaded_once(tmp_path, cluster, keyed):
    """The documents landed, the checkpoint did not: the engine writes the batch again, and its
    documents (the same _ids) count once, as inserted, never as rejected duplicates."""
    write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 101)])
    body = "name: people\nsource: {type: csv, path: in.csv}\nbatch: {size: 30}\nretry: {backoff_ms: 1}\n" + PEOPLE
    if keyed:
        write_people(tmp_path, [(0, "zero", "c")])
        run_job(tmp_path, body.replace("name: people", "name: first") + "conflict: {key: [id]}\n" + destination(cluster))
        write_people(tmp_path, [(i, f"n{i}", "c") for i in range(1, 101)])
    cluster.fail_next("PUT", "/portl_checkpoints/_doc/", status=500)
    report = run_job(tmp_path, body + destination(cluster))
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (100, 100, 0)
    ids = sorted(doc["id"] for doc in cluster.documents("people").values())
    assert ids == ([0] if keyed else []) + list(range(1, 101))
