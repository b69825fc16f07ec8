"""Every operation of the service's OpenAPI document, fuzzed through a real `portl serve` with
schemathesis: requests made from the document (valid ones and ones it forbids), sent with a
tenant's key, must never be answered 500, and every answer must be one the document promises —
a documented status code, a documented content type, a body valid against its schema — with
every error in the API's one shape.

The operations are read from /openapi.json when the test runs, so an endpoint added to the API is
fuzzed without a change here. An operation on one thing (``/jobs/{job_id}``...) is fuzzed with
made-up ids, and again with the tenant's own job, webhook or file (``tenantthings``), so that the
fuzzer gets past the lookup. Jobs the fuzzer submits that are valid run for real, on the server's
in-process executor, against the tenant's files folder (which holds a small CSV). All of it on a
state database in SQLite and in PostgreSQL.

Hypothesis is driven here, one operation at a time, rather than through schemathesis' pytest
integration (``schemathesis.pytest.from_fixture``), which fails on pytest 9.2: it reads an attribute
of pytest's test items (``_nodeid``) that pytest no longer has. The examples are few and the same
on every run (``derandomize``)."""

from __future__ import annotations

import base64
import json
from contextlib import ExitStack
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from portl.service import models
from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.tenantthings import MAKERS, Tenant, operations, path_parameters
from tests.integration.service.test_api_runs import wait_for, write_people
from tests.services import pg_database

# Kept small so that the whole document is fuzzed in well under a minute (for each database) here.
EXAMPLES_PER_OPERATION = 15
EXAMPLES_WITH_MADE_UP_IDS = 6


def error_in_the_one_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                           case: schemathesis.Case) -> None:
    """Every error is answered as {"error": {"code", "message", "problems"}}, whatever the document
    says of it (a schema that allows anything would let another shape through)."""
    if response.status_code < 400:
        return
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str) \
        and isinstance(error.get("problems"), list), f"a {response.status_code} not in the one error shape: {body}"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          error_in_the_one_shape]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """The server, its state database in SQLite or in PostgreSQL (which refuses what SQLite takes:
    NUL characters, numbers past 64 bits...)."""
    with ExitStack() as stack:
        database = stack.enter_context(pg_database()) if request.param == "postgresql" else None
        yield from serving(tmp_path_factory, database)


def serving(tmp_path_factory, database: str | None):
    server = ServiceServer(tmp_path_factory.mktemp("fuzz") / "home", database=database)
    server.home.mkdir()
    # private_network: the webhook made to fuzz the webhook endpoints points at this machine
    server.key, tenant_id = server.tenant("fuzzed", private_network=True)
    server.tenant_id = tenant_id
    with open_store(server.settings) as store, store.sessions() as session:
        # The fuzzer sends hundreds of requests a minute: what is fuzzed here is not the rate limit.
        session.execute(update(models.Tenant).where(models.Tenant.id == tenant_id)
                        .values(requests_per_minute=1_000_000))
        session.commit()
    write_people(server.files(tenant_id), 20, bad_every=5)
    server.start()
    yield server
    assert server.stop() == 0, server.output()


def test_every_operation_answers_without_a_server_error_and_as_documented(served):
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    schema.config.update(base_url=served.url)
    # The key is the tenant's, whatever else the fuzzer sends: the point is to reach each operation's
    # own code. Requests without a valid key are walked in test_api_isolation.
    key = {"Authorization": f"Bearer {served.key}"}
    runs, failures = [], []
    with served.client(served.key) as client:
        tenant = Tenant("fuzzed", served.key, client, served, served.tenant_id)
        for method, path, parameters in operations(schema.raw_schema):
            operation = schema[path][method.upper()]
            names = path_parameters(parameters)
            # Made-up ids (404 at once, mostly), then the tenant's own things, to reach the code past the lookup
            ids: list[dict[str, Any] | None] = [None]
            if names and all(name in MAKERS for name in names):
                tenant.make(names)
                ids.append({name: tenant.owned[name] for name in names})
            for fixed in ids:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    run = f"{operation.label} ({mode.value} data{', made-up ids' if names and fixed is None else ''})"
                    runs.append(run)
                    try:
                        fuzz(operation.as_strategy(mode, headers=key, path_parameters=fixed),
                             EXAMPLES_PER_OPERATION if fixed or not names else EXAMPLES_WITH_MADE_UP_IDS)
                    except hypothesis.errors.Unsatisfiable:
                        if mode is GenerationMode.POSITIVE:
                            raise
                        # Nothing in the request can be made invalid: the key and the ids, its inputs, are fixed.
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (each operation is fuzzed first)
                        failures.append(f"{run}: {exc}")
    assert any(run.startswith("POST /api/v1/jobs (") for run in runs), runs
    assert not failures, f"{len(failures)} of {len(runs)} fuzz runs failed:\n\n" + "\n\n".join(failures)
    # What the fuzzer sent may also break what runs after the answer (a job it submitted, a batch retried)
    log = served.output()
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 300):][:4000]


def fuzz(cases: SearchStrategy[schemathesis.Case], examples: int) -> None:
    """Send up to ``examples`` of ``cases``, the same ones on every run, and check each answer."""

    @hypothesis.given(case=cases)
    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), print_blob=False)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    run()


# What the fuzzer found, pinned down so that each stays fixed whatever the fuzzer draws next time.


def cursor(value: list) -> str:
    """A cursor as the API encodes one, holding ``value``."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("text, where", [
    ("name: x\x00\n", None),  # a character YAML does not allow: the parser knows no line for it
    ("source: {type: csv\n  path: people.csv\n", (2, 7)),
    ("name: [\n", (2, 1)),  # the end of the text, where the list should have been closed
])
def test_a_job_whose_yaml_does_not_parse_is_422_with_the_parsers_problem(served, text, where):
    with served.client(served.key) as client:
        answer = client.post("/api/v1/jobs", json={"job": text})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "job_invalid" and error["message"] == "the job has 1 problem; nothing was queued"
    [problem] = error["problems"]
    assert problem["message"].startswith("could not parse YAML: ") and problem["path"] is None
    assert (problem["line"], problem["column"]) == (where or (None, None))


def test_a_request_body_that_is_not_utf8_is_422_in_the_one_shape(served):
    with served.client(served.key) as client:
        answer = client.post("/api/v1/jobs", content=b'{"job": "\xe9t\xe9"}',
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == {"code": "request_invalid", "problems": [], "message": "the request body is not "
                                      "UTF-8 (byte 9 cannot be decoded): send JSON as UTF-8 text"}


def test_the_document_shows_every_422_in_the_one_error_shape(served):
    with served.client(None) as anyone:
        document = anyone.get("/openapi.json").json()
    invalid = {f"{method.upper()} {path}": answers["422"] for path, item in document["paths"].items()
               for method, operation in item.items() if "422" in (answers := operation.get("responses", {}))}
    assert "GET /api/v1/jobs/{job_id}" in invalid, sorted(invalid)
    assert {name: answer["content"]["application/json"]["schema"] for name, answer in invalid.items()} == \
        {name: {"$ref": "#/components/schemas/ErrorOut"} for name in invalid}
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("query", [{"batch": 2**63}, {"batch": -1}, {"cursor": cursor(["log", 10**21])}])
def test_a_record_log_filter_or_cursor_beyond_any_id_is_422(served, query):
    with served.client(served.key) as client:
        job = client.post("/api/v1/jobs", json={"job": "source: {type: csv, path: people.csv}\n"
                                                      "destination: {type: sqlite, path: out.db, table: people}\n"})
        answer = client.get(f"/api/v1/jobs/{job.json()['id']}/logs", params=query)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "request_invalid" and ("batch" in error["message"] or "cursor" in error["message"]), error


PEOPLE = "source: {type: csv, path: people.csv}\ndestination: {type: sqlite, path: out.db, table: people}\n"


@pytest.mark.parametrize("body, where", [
    ({"job": PEOPLE, "name": "a\x00b"}, "body.name"),
    ({"job": PEOPLE, "labels": {"team": "a\x00b"}}, "body.labels.team"),
    ({"job": PEOPLE, "labels": {"a\x00b": "crm"}}, "body.labels.a\x00b.[key]"),
])
def test_a_name_or_label_with_a_nul_character_is_422_and_located(served, body, where):
    with served.client(served.key) as client:
        answer = client.post("/api/v1/jobs", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "request_invalid" and [p["path"] for p in error["problems"]] == [where]
    assert "holds a NUL character" in error["problems"][0]["message"]


@pytest.mark.parametrize("job, where", [
    ('name: "a\\0b"\n' + PEOPLE, {"path": "job.name", "line": 1, "column": 7}),
    ({"name": "people", "source": {"type": "csv", "path": "people\x00.csv"},
      "destination": {"type": "sqlite", "path": "out.db", "table": "people"}}, {"path": "job.source.path"}),
])
def test_a_job_holding_a_nul_character_is_422_and_located(served, job, where):
    # Taken, it failed later: on PostgreSQL writing its batches, on SQLite opening its rejects file
    with served.client(served.key) as client:
        answer = client.post("/api/v1/jobs", json={"job": job})
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["error"]["problems"]
    assert "holds a NUL character (\\x00), which the service cannot keep" in problem["message"]
    assert {k: problem[k] for k in where} == where


@pytest.mark.parametrize("where, query, message", [
    ("/api/v1/jobs", {"label": "team:a\x00b"},
     "label 'team:a\\x00b' holds a NUL character (\\x00), which no label can"),
    ("/api/v1/jobs/{job}/logs", {"key": "7\x00"}, "key '7\\x00' holds a NUL character (\\x00), which the record log "
     "cannot hold"),
    ("/api/v1/jobs", {"created_after": "0001-01-01T00:00:00+14:00"},
     "created_after 0001-01-01T00:00:00+14:00 is outside the years 1 to 9999 once in UTC"),
    ("/api/v1/jobs", {"created_before": "9999-12-31T23:59:59-14:00"},
     "created_before 9999-12-31T23:59:59-14:00 is outside the years 1 to 9999 once in UTC"),
    ("/api/v1/jobs", {"cursor": cursor(["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"])},
     "cursor is not one this API gave: pass next_cursor as it was answered"),
])
def test_a_filter_the_state_database_cannot_compare_is_422(served, where, query, message):
    with served.client(served.key) as client:
        job = client.post("/api/v1/jobs", json={"job": PEOPLE}).json()
        answer = client.get(where.format(job=job["id"]), params=query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == {"code": "request_invalid", "message": message, "problems": []}


def test_the_document_describes_each_event_of_a_jobs_stream_as_it_is_sent(served):
    with served.client(served.key) as client:
        document = client.get("/openapi.json").json()
        job = client.post("/api/v1/jobs", json={"job": PEOPLE}).json()
        wait_for(client, job["id"], ("succeeded", "failed"))
        stream = client.get(f"/api/v1/jobs/{job['id']}/events")
    schema = document["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"][
        "text/event-stream"]["schema"]
    events = [dict(line.split(": ", 1) for line in block.splitlines()) for block in stream.text.strip().split("\n\n")]
    assert [e["event"] for e in events][-1] == "status" and {e["event"] for e in events} <= set(
        schema["properties"]["event"]["enum"])
    assert all(set(schema["required"]) <= set(e) and isinstance(json.loads(e["data"]), dict) for e in events), events


@pytest.mark.parametrize("key", ['say "hi"', "back\\slash", "$.x", "a.b", "a[0]"])
def test_a_label_whose_key_holds_json_path_characters_finds_its_job(served, key):
    with served.client(served.key) as client:
        job = client.post("/api/v1/jobs", json={"job": PEOPLE, "labels": {key: "found"}}).json()
        listed = client.get("/api/v1/jobs", params={"label": f"{key}:found"}).json()
        other = client.get("/api/v1/jobs", params={"label": f"{key}:lost"}).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and other["jobs"] == []
