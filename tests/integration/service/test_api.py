"""The HTTP API through a real `portl serve` (a subprocess on a free port, SQLite state database
in its own PORTL_HOME), reached with httpx: keys, tenants kept apart, located problems, the
policy for untrusted jobs, idempotency, listing, OpenAPI, and a clean stop on SIGTERM."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.integration.service.apiserver import ServiceServer

CSV_TO_SQLITE = """\
name: people
source: {type: csv, path: people.csv}
destination: {type: sqlite, path: out.db, table: people}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = ServiceServer(tmp_path_factory.mktemp("api") / "home")
    served.home.mkdir()
    served.keys = {}
    for name, allowed in (("acme", {}), ("globex", {}), ("trusted", {"local_files": True, "code_hooks": True,
                                                                       "private_network": True})):
        served.keys[name] = served.tenant(name, **allowed)
    served.start()
    yield served
    served.stop()


@pytest.fixture
def acme(server):
    with server.client(server.keys["acme"][0]) as client:
        yield client


@pytest.fixture
def globex(server):
    with server.client(server.keys["globex"][0]) as client:
        yield client


def wait_for(client, job_id, statuses, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


def test_health_names_the_database_revision_and_the_executor(server):
    with server.client(None) as anyone:
        answer = anyone.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "version": "0.1.0", "database": "reachable",
                             "database_revision": "0002", "executor": "in-process", "broker": None, "workers": 1}


def test_openapi_document_has_a_title_and_every_route_with_a_summary(server):
    with server.client(None) as anyone:
        document = anyone.get("/openapi.json").json()
        docs = anyone.get("/docs")
    assert document["info"]["title"] == "Portl service API"
    assert document["info"]["version"] == "0.1.0"
    routes = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert routes == {("/api/v1/jobs", "post"), ("/api/v1/jobs", "get"), ("/api/v1/jobs/{job_id}", "get"),
                      ("/api/v1/jobs/{job_id}/cancel", "put"), ("/api/v1/jobs/{job_id}/retry", "post"),
                      ("/api/v1/jobs/{job_id}/logs", "get"), ("/api/v1/jobs/{job_id}/events", "get"),
                      ("/api/v1/jobs/{job_id}", "delete"), ("/api/v1/jobs/{job_id}/retry-status", "get"),
                      ("/api/v1/batches/{batch_id}/retry", "post"), ("/api/v1/dlq", "get"),
                      ("/api/v1/dlq/{entry_id}/replay", "post"), ("/api/v1/retry-policies", "get"),
                      ("/api/v1/retry-policies", "put"), ("/api/v1/files", "post"), ("/api/v1/files", "get"),
                      ("/api/v1/files/{path}", "delete"),
                      ("/api/v1/webhooks", "post"), ("/api/v1/webhooks", "get"),
                      ("/api/v1/webhooks/{webhook_id}", "delete"), ("/api/v1/webhooks/{webhook_id}/deliveries", "get"),
                      ("/api/v1/webhooks/{webhook_id}/test", "post"), ("/api/v1/health", "get"),
                      ("/api/v1/stats", "get"), ("/api/v1/workers", "get"), ("/api/v1/queues", "get"), ("/metrics", "get")}
    assert all(op.get("summary") for methods in document["paths"].values() for op in methods.values())
    assert "JobOut" in document["components"]["schemas"] and "ErrorOut" in document["components"]["schemas"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(server):
    with server.client(None) as anyone:
        answer = anyone.get("/api/v1/jobs")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    error = answer.json()["error"]
    assert error["code"] == "unauthorized" and "Authorization: Bearer" in error["message"]


def test_a_malformed_or_revoked_key_is_401_and_x_api_key_works_too(server):
    from portl.service.store import open_store

    with server.client(None) as anyone:
        assert anyone.get("/api/v1/jobs", headers={"Authorization": "Bearer nonsense"}).status_code == 401
        assert anyone.get("/api/v1/jobs", headers={"X-API-Key": server.keys["acme"][0]}).status_code == 200
        with open_store(server.settings) as store:
            extra = store.tenants.create_key("acme")
            assert anyone.get("/api/v1/jobs", headers={"X-API-Key": extra.api_key}).status_code == 200
            store.tenants.revoke(extra.prefix)
        answer = anyone.get("/api/v1/jobs", headers={"X-API-Key": extra.api_key})
    assert answer.status_code == 401
    assert f"API key {extra.prefix} was revoked" in answer.json()["error"]["message"]


def test_another_tenants_job_is_404_on_every_endpoint(server, acme, globex):
    created = acme.post("/api/v1/jobs", json={"job": CSV_TO_SQLITE})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    for answer in (globex.get(f"/api/v1/jobs/{job_id}"), globex.put(f"/api/v1/jobs/{job_id}/cancel")):
        assert answer.status_code == 404
        assert answer.json()["error"] == {"code": "not_found", "message": f"no job {job_id} for tenant 'globex'",
                                          "problems": []}
    assert job_id not in [j["id"] for j in globex.get("/api/v1/jobs", params={"limit": 200}).json()["jobs"]]
    assert acme.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert acme.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_an_invalid_yaml_job_is_422_with_every_problem_located(acme):
    text = "source: {type: csv, path: a.csv, delimeter: ';'}\ndestination:\n  type: sqlite\n  table: t\n"
    answer = acme.post("/api/v1/jobs", json={"job": text})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "job_invalid"
    assert error["message"] == "the job has 2 problems; nothing was queued"
    assert error["problems"] == [
        {"message": "unknown key 'delimeter' in source; did you mean 'delimiter'?", "path": "job.source.delimeter",
         "file": "job.yaml", "line": 1, "column": 34},
        {"message": "missing required key 'path' in destination", "path": "job.destination", "file": "job.yaml",
         "line": 2, "column": 1},
    ]


def test_an_unknown_key_in_a_json_job_is_located_by_its_path_in_the_document(acme):
    job = {"source": {"type": "csv", "path": "a.csv"},
           "destination": {"type": "sqlite", "path": "o.db", "table": "t", "tabel": "x"}}
    answer = acme.post("/api/v1/jobs", json={"job": job})
    assert answer.status_code == 422
    assert answer.json()["error"]["problems"] == [
        {"message": "unknown key 'tabel' in destination; did you mean 'table'?", "path": "job.destination.tabel",
         "file": None, "line": None, "column": None}]


def test_a_malformed_request_body_is_422_in_the_same_shape(acme):
    answer = acme.post("/api/v1/jobs", json={"jobb": "x"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "request_invalid"
    assert {p["path"] for p in error["problems"]} == {"body.job", "body.jobb"}


UNTRUSTED = {
    "python hook": ("hooks:\n  after_job: {type: python, function: 'mine:clean'}\n",
                    "python hooks run code on the service's machines", 5),
    "absolute path": ("rejects: {path: /tmp/stolen.csv}\n", "'/tmp/stolen.csv' is an absolute path", 4),
    "parent path": ("rejects: {path: ../../other/x.csv}\n", "'../../other/x.csv' leads out of the job's files folder", 4),
}


@pytest.mark.parametrize("case", sorted(UNTRUSTED))
def test_what_an_untrusted_job_may_not_do_is_refused_until_allowed(server, acme, case):
    extra, refusal, line = UNTRUSTED[case]
    text = CSV_TO_SQLITE + extra
    refused = acme.post("/api/v1/jobs", json={"job": text})
    assert refused.status_code == 422
    [problem] = refused.json()["error"]["problems"]
    assert problem["message"].startswith(refusal) and problem["file"] == "job.yaml" and problem["line"] == line
    with server.client(server.keys["trusted"][0]) as trusted:
        accepted = trusted.post("/api/v1/jobs", json={"job": text})
    assert accepted.status_code == 201, accepted.text


def test_a_destination_on_a_loopback_address_is_refused_until_allowed(server, acme):
    text = ("source: {type: csv, path: people.csv}\n"
            "destination: {type: postgres, url: 'postgresql://app:hunter2@127.0.0.1:5432/crm', table: people}\n")
    refused = acme.post("/api/v1/jobs", json={"job": text})
    assert refused.status_code == 422
    [problem] = refused.json()["error"]["problems"]
    assert problem["line"] == 2
    assert "leads to 127.0.0.1, a loopback, private or link-local address" in problem["message"]
    assert "hunter2" not in refused.text
    with server.client(server.keys["trusted"][0]) as trusted:
        assert trusted.post("/api/v1/jobs", json={"job": text}).status_code == 201


def test_a_repeated_idempotency_key_answers_the_first_job_and_another_body_is_409(acme):
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = acme.post("/api/v1/jobs", json={"job": CSV_TO_SQLITE, "labels": {"run": "1"}}, headers=key)
    again = acme.post("/api/v1/jobs", json={"job": CSV_TO_SQLITE, "labels": {"run": "1"}}, headers=key)
    other = acme.post("/api/v1/jobs", json={"job": CSV_TO_SQLITE, "labels": {"run": "2"}}, headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert first.json()["id"] in other.json()["error"]["message"]
    listed = acme.get("/api/v1/jobs", params={"label": "run:1"}).json()["jobs"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


def test_list_filters_by_label_status_and_time_and_pages_newest_first(server):
    key, _ = server.tenant("lister")
    with server.client(key) as client:
        made = []
        for n in range(25):
            answer = client.post("/api/v1/jobs", json={"job": CSV_TO_SQLITE, "name": f"job{n:02}",
                                                        "labels": {"parity": "even" if n % 2 == 0 else "odd"}})
            made.append(answer.json())
        for job in made:  # people.csv is not there: each fails
            wait_for(client, job["id"], ("failed",))
        pages, cursor = [], None
        while True:
            page = client.get("/api/v1/jobs", params={"limit": 10, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([j["name"] for j in page["jobs"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        odd = client.get("/api/v1/jobs", params={"label": "parity:odd", "limit": 200}).json()["jobs"]
        failed = client.get("/api/v1/jobs", params={"status": "failed", "limit": 200}).json()["jobs"]
        queued = client.get("/api/v1/jobs", params={"status": "queued"}).json()["jobs"]
        middle = made[12]["created_at"]
        before = client.get("/api/v1/jobs", params={"created_before": middle, "limit": 200}).json()["jobs"]
        after = client.get("/api/v1/jobs", params={"created_after": middle, "limit": 200}).json()["jobs"]
        bad_label = client.get("/api/v1/jobs", params={"label": "parity"})
        bad_cursor = client.get("/api/v1/jobs", params={"cursor": "not-a-cursor"})
        too_many = client.get("/api/v1/jobs", params={"limit": 201})
    assert [len(p) for p in pages] == [10, 10, 5]
    assert sum(pages, []) == [f"job{n:02}" for n in reversed(range(25))]
    assert [j["name"] for j in odd] == [f"job{n:02}" for n in reversed(range(1, 25, 2))]
    assert len(failed) == 25 and queued == []
    assert [j["name"] for j in before] == [f"job{n:02}" for n in reversed(range(12))]
    assert [j["name"] for j in after] == [f"job{n:02}" for n in reversed(range(13, 25))]
    assert bad_label.status_code == 422 and "key:value" in bad_label.json()["error"]["message"]
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["code"] == "request_invalid"
    assert too_many.status_code == 422 and too_many.json()["error"]["problems"][0]["path"] == "query.limit"


def test_a_job_reads_back_without_its_text_and_cancelling_it_once_finished_is_409(acme):
    text = CSV_TO_SQLITE.replace("out.db", "secret-out.db")
    job = acme.post("/api/v1/jobs", json={"job": text}).json()
    assert job["name"] == "people" and job["status"] in ("queued", "running", "failed")
    assert "secret-out" not in acme.get(f"/api/v1/jobs/{job['id']}").text
    finished = wait_for(acme, job["id"], ("failed",))
    assert "people.csv" in finished["error"]
    answer = acme.put(f"/api/v1/jobs/{job['id']}/cancel")
    assert answer.status_code == 409
    assert answer.json()["error"] == {"code": "job_finished", "problems": [],
                                      "message": f"job {job['id']} has already finished (failed); there is nothing to cancel"}


def test_an_unknown_route_is_404_in_the_error_shape(acme):
    answer = acme.get("/api/v1/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_serve_stops_cleanly_on_sigterm(tmp_path):
    served = ServiceServer(tmp_path / "home")
    served.home.mkdir()
    served.start()
    assert served.stop() == 0
    output = served.output() if not served.log.closed else (served.home.parent / f"serve-{served.port}.log").read_text()
    assert f"Portl service listening on http://127.0.0.1:{served.port}" in output
    assert f"API docs at http://127.0.0.1:{served.port}/docs" in output
    assert output.rstrip().endswith("Portl service stopped")


def test_serve_on_a_port_in_use_says_so_and_exits_with_an_error(server, tmp_path):
    import os
    import subprocess

    from tests.integration.service.apiserver import PORTL

    env = {**os.environ, "PORTL_HOME": str(tmp_path / "home")}
    env.pop("PORTL_SERVICE_DATABASE", None)
    ran = subprocess.run([*PORTL, "serve", "--port", str(server.port)], env=env, capture_output=True, text=True,
                         timeout=30)
    assert ran.returncode == 1
    assert "address already in use" in ran.stderr.lower()
    assert f"could not listen on 127.0.0.1:{server.port}, as said above; pick another --port" in ran.stderr
    assert "listening on" not in ran.stdout


def test_a_valid_flow_of_steps_is_accepted_as_a_job(acme):
    flow = ("version: 2\nname: sync\n"
            "steps:\n  - {id: read, type: csv.read, path: people.csv}\n")
    answer = acme.post("/api/v1/jobs", json={"job": flow})
    assert answer.status_code == 201, answer.json()
    assert answer.json()["name"] == "sync"  # it runs as one batch: tests/integration/service/test_runner.py
    assert acme.get(f"/api/v1/jobs/{answer.json()['id']}").json()["id"] == answer.json()["id"]


