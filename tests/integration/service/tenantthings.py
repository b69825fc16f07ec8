"""What a tenant makes through the API, one thing of each kind, named by the path parameter that
stands for it (``job_id``, ``webhook_id``, a file's ``path``, ``batch_id``, ``entry_id``...), and
the API's operations as the OpenAPI document lists them. The walks over every operation (the
fuzzer's, the tenant isolation walk) fill path parameters from here, so that they reach real
things, not only made-up ids that are 404 at once.

A new kind of thing, named by a new path parameter, is taught here: :data:`MAKERS`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from portl.service.models import Batch, DeadLetter
from portl.service.status import BatchStatus
from portl.service.store import open_store
from tests.integration.service.apiserver import ServiceServer
from tests.integration.service.test_api_runs import job_text, wait_for

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class Tenant:
    """A tenant: its name, its key, a client with it, and what it made, by path parameter name;
    the server and the tenant's id, for what only the service itself makes (a dead batch)."""

    name: str
    key: str
    client: httpx.Client
    server: ServiceServer
    id: int
    owned: dict[str, Any] = field(default_factory=dict)

    def make(self, names: list[str]) -> None:
        """One thing for each of ``names`` not made yet."""
        for name in names:
            if name not in self.owned:
                MAKERS[name](self)


def make_job(tenant: Tenant) -> None:
    """A job that has finished, named for its tenant, with rejected records in its log (the
    tenant's files folder holds people.csv, some of its ages not numbers)."""
    created = tenant.client.post("/api/v1/jobs", json={"job": job_text(), "name": f"{tenant.name}-people",
                                                        "labels": {"owner": tenant.name}})
    assert created.status_code == 201, created.text
    job = wait_for(tenant.client, created.json()["id"], ("succeeded",))
    assert job["counts"]["rejected"] > 0, job
    tenant.owned["job_id"] = job["id"]


def make_webhook(tenant: Tenant) -> None:
    """A webhook to a port of this machine where nothing listens (the tenant needs private_network)."""
    made = tenant.client.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{tenant.name}-hook"})
    assert made.status_code == 201, made.text
    tenant.owned["webhook_id"] = made.json()["id"]


def make_file(tenant: Tenant) -> None:
    """An uploaded file, named for its tenant: another tenant has no file of that name."""
    name = f"{tenant.name}-upload.csv"
    made = tenant.client.post("/api/v1/files", files={"file": (name, b"id,name\n1,one\n", "text/csv")})
    assert made.status_code == 201, made.text
    tenant.owned["path"] = name


def make_dead_letter(tenant: Tenant) -> None:
    """A batch of the tenant's job that ran out of attempts, in the dead-letter queue. Written in the
    state database as the workers write one: no request makes a batch fail on purpose."""
    tenant.make(["job_id"])
    with open_store(tenant.server.settings) as store, store.sessions() as session:
        batch = Batch(tenant_id=tenant.id, job_id=uuid.UUID(tenant.owned["job_id"]), status=BatchStatus.DEAD,
                      attempts=3, last_error=f"{tenant.name}-dead: the destination refused the batch",
                      source_range={}, counts={})
        session.add(batch)
        session.flush()
        letter = DeadLetter(tenant_id=tenant.id, batch_id=batch.id, error=batch.last_error)
        session.add(letter)
        session.commit()
        tenant.owned["batch_id"], tenant.owned["entry_id"] = batch.id, letter.id


MAKERS: dict[str, Callable[[Tenant], None]] = {
    "job_id": make_job,
    "webhook_id": make_webhook,
    "path": make_file,
    "batch_id": make_dead_letter,
    "entry_id": make_dead_letter,  # a dead-letter entry: /dlq/{entry_id}
}
"""How a tenant makes the thing a path parameter names, recording it in ``tenant.owned``."""


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """Each operation: its method, path and parameters (the path's own too). Deletions come last:
    one would make every later operation on the thing it deleted a 404."""
    found = [(method, path, item) for path, item in document["paths"].items() for method in METHODS if method in item]
    for method, path, item in sorted(found, key=lambda one: one[0] == "delete"):
        yield method, path, [*item.get("parameters", []), *item[method].get("parameters", [])]


def path_parameters(parameters: list[dict[str, Any]]) -> list[str]:
    return [p["name"] for p in parameters if p.get("in") == "path"]


def unknown_path_parameters(document: dict[str, Any]) -> str | None:
    """A sentence naming the path parameters :data:`MAKERS` cannot fill, and where; None if none."""
    unknown = {name: [f"{method.upper()} {path}" for method, path, parameters in operations(document)
                      if name in path_parameters(parameters)]
               for _, _, parameters in operations(document) for name in path_parameters(parameters)
               if name not in MAKERS}
    if not unknown:
        return None
    return ("the API has path parameters no test knows how to fill: "
            + "; ".join(f"{name} (in {', '.join(where)})" for name, where in sorted(unknown.items()))
            + ". Teach MAKERS in tests/integration/service/tenantthings.py how a tenant makes such a thing")


def filled(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m.group(1)]), path)
