"""Tenants kept apart on every endpoint, walked from the OpenAPI document of a real `portl serve`.

Tenant A makes one thing of each kind the API has (a job that finished with rejected records, a
webhook...). Then every operation of /openapi.json is called with tenant B's key and A's ids in its
path: each must answer 404, as if A's thing did not exist (never 403, never A's data). Every list B
reads must hold B's own things and none of A's. Without a key, every operation but health and
metrics is a 401. And a path that climbs from B's files folder into A's (``../../1/files/...``, or
absolute) is refused wherever B may give one: deleting a file, uploading one, a job's source.

The walk is built from the document when the test runs, so a new endpoint is walked without a
change here; one whose path names a parameter the tests do not know fails the walk, saying which,
rather than being left out: teach ``tenantthings.MAKERS`` how a tenant makes such a thing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
import schemathesis
from schemathesis import BaseSchema, GenerationMode

from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.tenantthings import (MAKERS, Tenant, filled, operations, path_parameters,
                                                     unknown_path_parameters)
from tests.integration.service.test_api_runs import write_people
from tests.services import pg_database

PUBLIC = {"health", "metrics"}
"""The last segments of the paths that answer without a key."""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """The server, its state database in SQLite or in PostgreSQL (where row-level security keeps
    tenants apart too)."""
    with ExitStack() as stack:
        database = stack.enter_context(pg_database()) if request.param == "postgresql" else None
        yield from serving(tmp_path_factory, database)


def serving(tmp_path_factory, database: str | None):
    server = ServiceServer(tmp_path_factory.mktemp("isolation") / "home", database=database)
    server.home.mkdir()
    server.made, server.ids = {}, {}
    for name in ("acme", "globex"):
        # private_network: a webhook may point at this machine, where nothing has to answer it
        key, tenant_id = server.tenant(name, private_network=True)
        write_people(server.files(tenant_id), 30, bad_every=10)
        server.made[name], server.ids[name] = key, tenant_id
    server.start()
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def document(served) -> dict[str, Any]:
    with served.client(None) as anyone:
        answer = anyone.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def tenants(served, document) -> Iterator[tuple[Tenant, Tenant]]:
    """A and B, each having made one thing of every kind the tests know (a job, a webhook, a file,
    a dead batch...), which covers every path parameter the document names."""
    with served.client(served.made["acme"]) as a_client, served.client(served.made["globex"]) as b_client:
        a = Tenant("acme", served.made["acme"], a_client, served, served.ids["acme"])
        b = Tenant("globex", served.made["globex"], b_client, served, served.ids["globex"])
        unknown = unknown_path_parameters(document)
        assert unknown is None, unknown
        a.make(list(MAKERS))
        b.make(list(MAKERS))
        yield a, b


def is_public(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] in PUBLIC


# --- the walk ------------------------------------------------------------------------------------

def a_request_for(schema: BaseSchema, method: str, path: str) -> schemathesis.Case:
    """A request the operation's document calls valid (its body, its required query parameters), the
    same one on every run; its path and key are the caller's to set."""
    operation = schema[path][method.upper()]
    drawn: list[schemathesis.Case] = []

    @hypothesis.given(case=operation.as_strategy(GenerationMode.POSITIVE))
    @hypothesis.settings(max_examples=1, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
    def draw(case: schemathesis.Case) -> None:
        drawn.append(case)

    draw()
    case = drawn[0]
    required = {p.name for p in operation.query if p.is_required}
    case.query = {name: value for name, value in (case.query or {}).items() if name in required}
    return case


def test_every_operation_on_another_tenants_things_is_404(served, document, tenants):
    a, b = tenants
    schema = schemathesis.openapi.from_dict(document)
    walked, wrong = [], []
    for method, path, parameters in operations(document):
        names = path_parameters(parameters)
        if not names:
            continue
        case = a_request_for(schema, method, path)
        case.path_parameters = {name: a.owned[name] for name in names}
        drawn = {name: value for name, value in (case.headers or {}).items()
                 if name.lower() not in ("authorization", "x-api-key")}
        case.headers = {**drawn, "Authorization": f"Bearer {b.key}"}
        answer = case.call(base_url=served.url, timeout=30)
        walked.append(f"{method.upper()} {path}")
        body = answer.text
        told = body  # what the answer says beyond the ids B sent: nothing of A's (its names start "acme-")
        for value in case.path_parameters.values():
            told = told.replace(str(value), "")
        if answer.status_code != 404 or '"not_found"' not in body or f"{a.name}-" in told:
            wrong.append(f"{method.upper()} {filled(path, case.path_parameters)} with {b.name}'s key answered "
                         f"{answer.status_code}: {body[:300]}")
    assert {"GET /api/v1/jobs/{job_id}", "POST /api/v1/jobs/{job_id}/retry"} <= set(walked), walked
    assert not wrong, f"{len(wrong)} of {len(walked)} operations did not answer 404:\n" + "\n".join(wrong)


def test_every_read_of_a_tenants_own_things_answers_them(served, document, tenants):
    """The other side of the walk above: the ids it sent are real, their owner reads each of them."""
    a, _ = tenants
    read, wrong = [], []
    for method, path, parameters in operations(document):
        names = path_parameters(parameters)
        if method != "get" or not names:
            continue
        url = filled(path, {name: a.owned[name] for name in names})
        answer = a.client.get(url, timeout=30)
        read.append(url)
        if not answer.is_success:
            wrong.append(f"GET {url} with {a.name}'s own key answered {answer.status_code}: {answer.text[:300]}")
    assert read and not wrong, "\n".join(wrong)


def ids_in(answer: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) of an answer whose key names a thing: id, *_id, name, path, url."""
    if isinstance(answer, dict):
        for k, v in answer.items():
            yield from ids_in(v, k)
    elif isinstance(answer, list):
        for item in answer:
            yield from ids_in(item, key)
    elif key in ("id", "name", "path", "url") or key.endswith("_id"):
        yield key, answer


def test_every_read_holds_the_callers_things_and_none_of_another_tenants(served, document, tenants):
    """Lists, and reads of B's own things (a webhook's deliveries, a job's log...): none holds
    anything of A's; a list of things of a kind holds B's own."""
    a, b = tenants
    markers = [f"{a.name}-", *(value for value in a.owned.values() if isinstance(value, str))]
    read, wrong = [], []
    for method, path, parameters in operations(document):
        if method != "get" or is_public(path):
            continue
        url = filled(path, {name: b.owned[name] for name in path_parameters(parameters)})
        answer = b.client.get(url, timeout=30)
        read.append(url)
        if not answer.is_success:
            wrong.append(f"GET {url} with {b.name}'s key answered {answer.status_code}: {answer.text[:300]}")
            continue
        wrong += [f"GET {url} with {b.name}'s key answers {marker!r}, of {a.name}'s"
                  for marker in markers if marker in answer.text]
        if not answer.headers.get("content-type", "").startswith("application/json"):
            continue
        # What one item of a list is: the parameter of the paths below it, /jobs -> /jobs/{job_id}
        item = next((m.group(1) for other in document["paths"]
                     if (m := re.match(re.escape(path.rstrip("/")) + r"/\{(\w+)\}(/|$)", other))), None)
        found = list(ids_in(answer.json()))
        wrong += [f"GET {url} with {b.name}'s key answers {a.name}'s {kind} {value!r}" for key, value in found
                  if (kind := item if key == "id" else key) in a.owned and str(value) == str(a.owned[kind])]
        if item is not None and not any(str(v) == str(b.owned[item]) for k, v in found if k in ("id", item)):
            wrong.append(f"GET {url} with {b.name}'s key does not list {b.name}'s own {item} {b.owned[item]}")
    assert "/api/v1/jobs" in read, read
    assert not wrong, "\n".join(wrong)


def test_every_operation_but_health_and_metrics_needs_a_key(served, document, tenants):
    a, _ = tenants
    checked, wrong = [], []
    with served.client(None) as anyone:
        for method, path, parameters in operations(document):
            if is_public(path):  # health answers anyone; the metrics want the admin token, not a tenant's key
                continue
            url = filled(path, {name: a.owned[name] for name in path_parameters(parameters)})
            answer = anyone.request(method.upper(), url, timeout=30)
            checked.append(f"{method.upper()} {path}")
            if answer.status_code != 401 or answer.json()["error"]["code"] != "unauthorized":
                wrong.append(f"{method.upper()} {url} without a key answered {answer.status_code}: {answer.text[:300]}")
        health = anyone.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded"), health.text
    assert "GET /api/v1/jobs/{job_id}" in checked, checked
    assert not wrong, f"{len(wrong)} of {len(checked)} operations:\n" + "\n".join(wrong)


def climbs(served: ServiceServer, a: Tenant, b: Tenant, name: str) -> list[str]:
    """Paths from B's files folder to A's file ``name``: relative, climbing out, and absolute."""
    theirs = served.files(served.ids[a.name]) / name
    return [os.path.relpath(theirs, served.files(served.ids[b.name])), str(theirs)]


def test_a_path_that_climbs_into_another_tenants_files_reaches_nothing(served, tenants):
    a, b = tenants
    theirs = served.files(served.ids[a.name]) / a.owned["path"]
    # Encoded, for the client not to resolve the '..' itself; the server decodes it back
    deleted = [(path, b.client.delete("/api/v1/files/" + quote(path, safe="")))
               for path in climbs(served, a, b, a.owned["path"])]
    uploaded = [(path, b.client.post("/api/v1/files", files={"file": ("x.csv", b"id\n1\n", "text/csv")},
                                     data={"path": path})) for path in climbs(served, a, b, "planted.csv")]
    reading = "source: {{type: csv, path: '{}'}}\ndestination: {{type: sqlite, path: out.db, table: t}}\n"
    jobs = [(path, b.client.post("/api/v1/jobs", json={"job": reading.format(path)}))
            for path in climbs(served, a, b, "people.csv")]
    wrong = [f"{what} {path!r} with {b.name}'s key answered {answer.status_code}: {answer.text[:200]}"
             for what, tried in (("DELETE", deleted), ("upload", uploaded), ("job reading", jobs))
             for path, answer in tried
             if not (answer.status_code == 422 or answer.status_code == 404 and "no such endpoint" not in answer.text)]
    assert not wrong, "\n".join(wrong)
    assert theirs.read_bytes() == b"id,name\n1,one\n"
    assert not (theirs.parent / "planted.csv").exists()
