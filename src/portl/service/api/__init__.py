"""The service's HTTP API (FastAPI): ``create_app(store, executor)``. Modules: ``auth`` (who is
calling, and how often), ``errors`` (one error shape), ``jobs`` (submit, read, list, cancel,
delete), ``retry``, ``logs`` (the record log), ``events`` (progress as Server-Sent Events),
``files`` (uploads), ``webhooks`` (URLs told of job events, and their deliveries), ``health``,
``monitor`` (the tenant's figures, the workers, the queues, and Prometheus' ``/metrics``);
``schemas`` holds the bodies, which are the OpenAPI schema too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

import portl
from portl.service.api import batches, errors, events, files, health, jobs, logs, monitor, retry, webhooks

if TYPE_CHECKING:
    from portl.service.executor import Executor
    from portl.service.ratelimit import RateLimiter
    from portl.service.store import Store

__all__ = ["create_app"]

DESCRIPTION = """Submit Portl jobs (YAML or JSON), follow them, read their rejected records, cancel, retry and
delete them; upload the files they read.

Every endpoint but health needs an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`;
each such request counts against the tenant's requests per minute (over it: 429, with Retry-After).
`/metrics` needs the server's admin token (`PORTL_ADMIN_TOKEN`) instead: `Authorization: Bearer <token>`.
Every error is answered as `{"error": {"code", "message", "problems"}}`."""


def create_app(store: Store, executor: Executor, rate_limiter: RateLimiter | None = None) -> FastAPI:
    """The API over an open state database, handing accepted jobs to ``executor``; each tenant's
    requests counted by ``rate_limiter`` (default: as the environment says, see
    :func:`portl.service.ratelimit.limiter_from_environment`)."""
    from portl.service.filestore import max_upload_bytes
    from portl.service.ratelimit import limiter_from_environment

    app = FastAPI(title="Portl service API", version=portl.__version__, description=DESCRIPTION,
                  docs_url="/docs", openapi_url="/openapi.json", redoc_url=None)
    app.state.store = store
    app.state.executor = executor
    app.state.files_dir = lambda tenant_id: str(_files_dir(store, tenant_id))
    app.state.rate_limiter = rate_limiter or limiter_from_environment()
    app.state.max_upload_bytes = max_upload_bytes()
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(retry.router)
    app.include_router(batches.router)
    app.include_router(logs.router)
    app.include_router(events.router)
    app.include_router(files.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(monitor.router)
    return app


def _files_dir(store: Store, tenant_id: int) -> Path:
    from portl.service.workspace import files_dir

    return files_dir(store.settings, tenant_id)
