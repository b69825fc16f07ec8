"""Every operation of the service's OpenAPI document, fuzzed through a real `portl serve` with
schemathesis: requests made from the document (valid ones and ones it forbids), sent with a
tenant's key, must never be answered 500, and every answer must be one the document promises —
a documented status code, a documented content type, a body valid against its schema.

The operations are read from /openapi.json when the test runs, so an endpoint added to the API is
fuzzed without a change here. Jobs the fuzzer submits that are valid run for real, on the
server's in-process executor, against the tenant's files folder (which holds a small CSV)."""

from __future__ import annotations

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

from portl.service.models import Tenant
from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import write_people

# Kept small so that the whole document is fuzzed in well under a minute here.
EXAMPLES_PER_OPERATION = 25


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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ServiceServer(tmp_path_factory.mktemp("fuzz") / "home")
    server.home.mkdir()
    server.key, tenant_id = server.tenant("fuzzed")
    with open_store(server.settings) as store, store.sessions() as session:
        # The fuzzer sends hundreds of requests a minute: what is fuzzed here is not the rate limit.
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(requests_per_minute=1_000_000))
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
    operations, failures = [], []
    for found in schema.get_all_operations():
        operation = found.ok()  # raises, naming the operation, if its part of the document is malformed
        operations.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation.as_strategy(mode, headers=key))
            except hypothesis.errors.Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # Nothing in the request can be made invalid: the key, its only input, is fixed.
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (each operation is fuzzed first)
                failures.append(f"{operation.label} ({mode.value} data): {exc}")
    assert "POST /api/v1/jobs" in operations, operations
    assert not failures, f"{len(failures)} of {2 * len(operations)} fuzz runs failed:\n\n" + "\n\n".join(failures)


def fuzz(cases: SearchStrategy[schemathesis.Case]) -> None:
    """Send up to EXAMPLES_PER_OPERATION of ``cases``, the same ones on every run, and check each answer."""

    @hypothesis.given(case=cases)
    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), print_blob=False)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    run()


# What the fuzzer found, pinned down so that each stays fixed whatever the fuzzer draws next time.

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
        answer = client.post("/api/v1/jobs", content=b'{"job": "\xe9t\xe9"}', headers={"Content-Type": "application/json"})
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


@pytest.mark.parametrize("query", [{"batch": 2**63}, {"batch": -1}, {"cursor": "WyJsb2ciLCAxMDAwMDAwMDAwMDAwMDAwMDAwMDAwXQ"}])
def test_a_record_log_filter_or_cursor_beyond_any_id_is_422(served, query):
    with served.client(served.key) as client:
        job = client.post("/api/v1/jobs", json={"job": "source: {type: csv, path: people.csv}\n"
                                                      "destination: {type: sqlite, path: out.db, table: people}\n"})
        answer = client.get(f"/api/v1/jobs/{job.json()['id']}/logs", params=query)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "request_invalid" and ("batch" in error["message"] or "cursor" in error["message"]), error
