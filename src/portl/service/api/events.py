"""``/api/v1/jobs/{id}/events``: a job's progress as Server-Sent Events. The server reads the job
row every :data:`POLL_S` and sends ``event: status`` when its status changes and ``event:
progress`` when its counts or progress do, each with JSON data; the stream ends after a finished
status. A comment line every :data:`HEARTBEAT_S` of silence keeps proxies from closing it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import _own_job, tenant_session
from portl.service.api.schemas import ERRORS
from portl.service.api.showjob import job_out
from portl.service.status import JobStatus
from portl.service.tenants import Caller

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
POLL_S = 0.25
HEARTBEAT_S = 15.0
EVENT_STREAM = "text/event-stream"


# One event of the stream, as OpenAPI 3.1 has a text/event-stream schema describe it (3.2 names it itemSchema).
EVENT_SCHEMA = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["status", "progress"]},
    "id": {"type": "string", "description": "The event's number in this stream, from 1."},
    "data": {"type": "string", "contentMediaType": "application/json", "description": "A JSON object."}}}


@router.get("/{job_id}/events", summary="Follow a job's progress (Server-Sent Events)", responses={
    200: {"content": {EVENT_STREAM: {"schema": EVENT_SCHEMA}}, "description": (
        "`event: status` with data {id, status, attempts, error, started_at, finished_at} when the status "
        "changes; `event: progress` with data {id, counts, progress} when they change; ends after the final "
        "status. Lines starting with ':' are heartbeats.")}, **ERRORS})
async def job_events(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> StreamingResponse:
    """The job's status and progress as they change, until it has finished."""
    first = await run_in_threadpool(_snapshot, request, caller, job_id)  # 404 before the stream starts
    return StreamingResponse(_stream(request, caller, job_id, first), media_type=EVENT_STREAM,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _snapshot(request: Request, caller: Caller, job_id: uuid.UUID) -> dict[str, Any]:
    with tenant_session(request, caller) as session:
        return job_out(_own_job(session, caller, job_id)).model_dump(mode="json")


async def _stream(request: Request, caller: Caller, job_id: uuid.UUID, job: dict[str, Any]) -> AsyncIterator[str]:
    last_status: dict[str, Any] | None = None
    last_progress: tuple[Any, ...] | None = None
    sent = 0
    quiet_since = time.monotonic()
    while True:
        status = {k: job[k] for k in ("id", "status", "attempts", "error", "started_at", "finished_at")}
        progress = {"id": job["id"], "counts": job["counts"], "progress": job["progress"]}
        # The rate and estimate change with the clock alone: what moved is the counts and totals.
        moved = (job["counts"], {k: v for k, v in job["progress"].items() if k not in ("rows_per_s", "eta_s")})
        if moved != last_progress:
            sent += 1
            yield _event("progress", sent, progress)
            last_progress, quiet_since = moved, time.monotonic()
        if status != last_status:
            sent += 1
            yield _event("status", sent, status)
            last_status, quiet_since = status, time.monotonic()
        if job["status"] in JobStatus.FINISHED:
            return
        if time.monotonic() - quiet_since >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_S)
        if await request.is_disconnected():
            return
        try:
            job = await run_in_threadpool(_snapshot, request, caller, job_id)
        except ApiError:  # deleted meanwhile: nothing more will happen to it
            return


def _event(name: str, number: int, data: dict[str, Any]) -> str:
    return f"event: {name}\nid: {number}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
