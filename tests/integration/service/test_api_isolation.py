"""Tenants kept apart on every endpoint, walked from the OpenAPI document of a real `portl serve`.

Tenant A makes one thing of each kind the API has (a job that finished with rejected records, a
webhook...). Then every operation of /openapi.json is called with tenant B's key and A's ids in its
path: each must answer 404, as if A's thing did not exist (never 403, never A's data). Every list B
reads must hold B's own things and none of A's. And without a key, every operation but health
and metrics is a 401.

The walk is built from the document when the test runs, so a new endpoint is walked without a
change here; one whose path names a parameter this file does not know fails the walk, saying which,
rather than being left out: teach :data:`MAKERS` how tenant A makes such a thing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import BaseSchema, GenerationMode

from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import job_text, wait_for, write_people

METHODS = ("get", "put", "post", "delete", "patch")
PUBLIC = {"health", "metrics"}
"""The last segments of the paths that answer without a key."""


@dataclass
class Tenant:
    """A tenant of the walk: its key, a client with it, and what it made, by path parameter name."""

    name: str
    key: str
    client: httpx.Client
    owned: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ServiceServer(tmp_path_factory.mktemp("isolation") / "home")
    server.home.mkdir()
    server.made = {}
    for name in ("acme", "globex"):
        # private_network: a webhook may point at this machine, where nothing has to answer it
        key, tenant_id = server.tenant(name, private_network=True)
        write_people(server.files(tenant_id), 30, bad_every=10)
        server.made[name] = key
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
    """A and B, each having made one thing for every path parameter the document names."""
    with served.client(served.made["acme"]) as a_client, served.client(served.made["globex"]) as b_client:
        a, b = Tenant("acme", served.made["acme"], a_client), Tenant("globex", served.made["globex"], b_client)
        wanted = sorted({name for _, _, parameters in operations(document) for name in path_parameters(parameters)})
        unknown = [name for name in wanted if name not in MAKERS]
        assert not unknown, (
            f"the API has path parameters this walk cannot fill: {', '.join(unknown)} (in "
            + "; ".join(f"{method.upper()} {path}" for method, path, parameters in operations(document)
                        if set(path_parameters(parameters)) & set(unknown))
            + "). Add to MAKERS in this file how a tenant makes such a thing, so that the endpoint is walked")
        for tenant in (a, b):
            for name in wanted:
                if name not in tenant.owned:
                    MAKERS[name](tenant)
        yield a, b


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """Each operation: its method, path and parameters (the path's own too). Deletions come last:
    one that wrongly reached A's thing would make every later operation on it a 404 for the wrong
    reason."""
    found = [(method, path, item) for path, item in document["paths"].items() for method in METHODS if method in item]
    for method, path, item in sorted(found, key=lambda one: one[0] == "delete"):
        yield method, path, [*item.get("parameters", []), *item[method].get("parameters", [])]


def path_parameters(parameters: list[dict[str, Any]]) -> list[str]:
    return [p["name"] for p in parameters if p.get("in") == "path"]


def is_public(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] in PUBLIC


def filled(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m.group(1)]), path)


# --- what each tenant makes ------------------------------------------------------------------

def make_job(tenant: Tenant) -> None:
    """A job that has finished, with a name only this tenant uses and records in its log."""
    created = tenant.client.post("/api/v1/jobs", json={"job": job_text(), "name": f"{tenant.name}-people",
                                                        "labels": {"owner": tenant.name}})
    assert created.status_code == 201, created.text
    job = wait_for(tenant.client, created.json()["id"], ("succeeded",))
    assert job["counts"]["rejected"] == 3, job
    tenant.owned["job_id"] = job["id"]


def make_webhook(tenant: Tenant) -> None:
    made = tenant.client.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{tenant.name}-hook"})
    assert made.status_code == 201, made.text
    tenant.owned["webhook_id"] = made.json()["id"]


def make_file(tenant: Tenant) -> None:
    """An uploaded file, named for its tenant: the other tenant has no file of that name."""
    name = f"{tenant.name}-upload.csv"
    made = tenant.client.post("/api/v1/files", files={"file": (name, b"id,name\n1,one\n", "text/csv")})
    assert made.status_code == 201, made.text
    tenant.owned["path"] = name


MAKERS: dict[str, Callable[[Tenant], None]] = {
    "job_id": make_job,
    "webhook_id": make_webhook,
    "path": make_file,
}
"""How a tenant makes the thing a path parameter names, recording it in ``tenant.owned``."""


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
        case.headers = {"Authorization": f"Bearer {b.key}"}
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
        # What one item of a list is: the parameter of the path below it, /jobs -> /jobs/{job_id}
        item = next((m.group(1) for other in document["paths"]
                     if (m := re.fullmatch(re.escape(path.rstrip("/")) + r"/\{(\w+)\}", other))), None)
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
            url = filled(path, {name: a.owned[name] for name in path_parameters(parameters)})
            answer = anyone.request(method.upper(), url, timeout=30)
            checked.append(f"{method.upper()} {path}")
            if is_public(path):
                if answer.status_code == 401:
                    wrong.append(f"{method.upper()} {url} is public but answered 401")
            elif answer.status_code != 401 or answer.json()["error"]["code"] != "unauthorized":
                wrong.append(f"{method.upper()} {url} without a key answered {answer.status_code}: {answer.text[:300]}")
    assert "GET /api/v1/health" in checked and len(checked) > 1, checked
    assert not wrong, f"{len(wrong)} of {len(checked)} operations:\n" + "\n".join(wrong)
