"""Monitoring: ``/api/v1/stats`` (the caller's tenant's jobs, rows and batches), ``/api/v1/workers``
and ``/api/v1/queues`` (what runs the jobs and what waits for it, no tenant's data), with a tenant's
API key; and ``/metrics``, every tenant's figures and the workers' in Prometheus' text format,
with the admin token ``PORTL_ADMIN_TOKEN`` instead.

The figures are counted by the state database, one grouped query per kind, from the jobs' counts
and the batches' times. ``/metrics`` reads across tenants, so it needs the database role the
service connects as to see every tenant's rows: on PostgreSQL, the tables' owner (which row-level
security does not restrict), as the service connects today.
"""

from __future__ import annotations

import hmac
import os
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from portl.service import monitor
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.health import executor_kind
from portl.service.api.jobs import tenant_session
from portl.service.api.prometheus import CONTENT_TYPE, Exposition
from portl.service.api.schemas import ErrorOut
from portl.service.models import Batch, DeadLetter, Job, Tenant, now
from portl.service.status import BatchStatus, JobStatus

router = APIRouter(tags=["monitoring"])

ADMIN_TOKEN_VARIABLE = "PORTL_ADMIN_TOKEN"
WINDOW = timedelta(hours=24)
DURATION_BOUNDS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Upper bounds (seconds) of the batch duration histogram's buckets."""
COUNTERS = (("portl_rows_read_total", "Records read from the sources by the tenant's jobs."),
            ("portl_rows_moved_total", "Rows written to the destinations (inserted plus updated) by the tenant's "
             "jobs."),
            ("portl_rejects_total", "Records rejected by the tenant's jobs."))
"""The counters, in the order of the sums the query answers: read, moved, rejected."""
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


# --- bodies ---------------------------------------------------------------------------------------

class JobTotals(BaseModel):
    jobs: dict[str, int] = Field(description="How many jobs are in each status (every status, 0 included).")
    rows_read: int = Field(description="Records read from the sources.")
    rows_moved: int = Field(description="Rows written to the destinations: inserted plus updated.")
    rejects: int = Field(description="Records rejected.")


class WindowTotals(JobTotals):
    """The jobs that finished since ``since``, and those not finished that were submitted since then."""

    since: datetime


class StatsOut(BaseModel):
    """A tenant's figures: its jobs (not deleted) and what they moved, in all and over the last
    24 hours; their batches; the dead-letter queue."""

    tenant: str
    total: JobTotals
    last_24h: WindowTotals
    batches: dict[str, int] = Field(description="How many of the jobs' batches are in each status (every status, "
                                    "0 included).")
    dead_letters: int = Field(description="Batches in the dead-letter queue, not replayed.")


class WorkerOut(BaseModel):
    name: str = Field(description="A Celery worker's name (name@host), or in-process@host:pid for the server itself.")
    concurrency: Optional[int] = Field(description="Jobs it runs at once; null when it did not say.")
    active: int = Field(description="What it is running now: with Celery, its tasks under way; in-process, the jobs "
                        "its threads are working on.")


class WorkersOut(BaseModel):
    """The workers that answered within a second; none, with a note, when none did."""

    executor: str
    workers: list[WorkerOut]
    note: Optional[str] = Field(None, description="Why the list is empty or may be incomplete.")


class QueueOut(BaseModel):
    name: str
    depth: Optional[int] = Field(description="Jobs waiting in it, not yet taken by a worker; null when the broker "
                                 "cannot be reached.")


class QueuesOut(BaseModel):
    executor: str
    queues: list[QueueOut]
    note: Optional[str] = Field(None, description="Why the depths are unknown, when they are.")


# --- tenant endpoints -----------------------------------------------------------------------------

KEY_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut, "description": "No API key, or one that "
                                                     "is not valid."}}


@router.get("/api/v1/stats", response_model=StatsOut, summary="The tenant's job and batch figures",
            responses=KEY_ERRORS)
def stats(request: Request, caller: CurrentCaller) -> StatsOut:
    """The caller's tenant's jobs by status, the rows they read, moved and rejected (in all, and for
    the last 24 hours), their batches by status and the dead-letter entries not replayed."""
    since = now() - WINDOW
    with tenant_session(request, caller) as session:
        totals = _job_totals(session, caller.tenant_id)
        recent = _job_totals(session, caller.tenant_id, since)
        batches = dict.fromkeys(BatchStatus.ALL, 0)
        batches.update(session.execute(
            select(Batch.status, func.count()).join(Job, Job.id == Batch.job_id)
            .where(Batch.tenant_id == caller.tenant_id, Job.deleted_at.is_(None))
            .group_by(Batch.status)).tuples().all())
        dead = session.scalar(
            select(func.count()).select_from(DeadLetter).join(Batch, Batch.id == DeadLetter.batch_id)
            .join(Job, Job.id == Batch.job_id)
            .where(DeadLetter.tenant_id == caller.tenant_id, DeadLetter.replayed_at.is_(None),
                   Job.deleted_at.is_(None)))
    return StatsOut(tenant=caller.tenant, total=totals, last_24h=WindowTotals(since=since, **recent.model_dump()),
                    batches=batches, dead_letters=dead or 0)


@router.get("/api/v1/workers", response_model=WorkersOut, summary="The workers running jobs", responses=KEY_ERRORS)
def workers(request: Request, caller: CurrentCaller) -> WorkersOut:
    """Each worker with its concurrency and the jobs it runs now: the Celery workers that answer
    within a second, or this server's own threads. Shows no tenant's data."""
    executor = request.app.state.executor
    found = monitor.workers(executor)
    return WorkersOut(executor=executor_kind(executor), note=found.note,
                      workers=[WorkerOut(name=w.name, concurrency=w.concurrency, active=w.active)
                               for w in found.workers])


@router.get("/api/v1/queues", response_model=QueuesOut, summary="Jobs waiting, per queue", responses=KEY_ERRORS)
def queues(request: Request, caller: CurrentCaller) -> QueuesOut:
    """How many jobs wait for a worker in each queue: the broker's queues with Celery, the jobs
    waiting for a thread (queue `in-process`) otherwise. Shows no tenant's data."""
    executor = request.app.state.executor
    found = monitor.queues(executor)
    return QueuesOut(executor=executor_kind(executor), note=found.note,
                     queues=[QueueOut(name=name, depth=depth) for name, depth in found.depths.items()])


def _moved() -> ColumnElement[Any]:
    return _count("inserted") + _count("updated")


def _count(key: str) -> ColumnElement[Any]:
    """One of a job's counts, 0 when it has none; BIGINT, since a count may pass 2**31."""
    return func.coalesce(cast(Job.counts[key].as_string(), BigInteger), 0)


def _job_totals(session: Session, tenant_id: int, since: datetime | None = None) -> JobTotals:
    query = (select(Job.status, func.count(), func.sum(_count("read")), func.sum(_moved()),
                    func.sum(_count("rejected")))
             .where(Job.tenant_id == tenant_id, Job.deleted_at.is_(None)).group_by(Job.status))
    if since is not None:
        query = query.where(func.coalesce(Job.finished_at, Job.created_at) >= since)
    jobs = dict.fromkeys(JobStatus.ALL, 0)
    sums = [0, 0, 0]
    for status, count, *figures in session.execute(query).tuples():
        jobs[status] = count
        sums = [total + int(figure or 0) for total, figure in zip(sums, figures)]
    return JobTotals(jobs=jobs, rows_read=sums[0], rows_moved=sums[1], rejects=sums[2])


# --- /metrics -------------------------------------------------------------------------------------

def admin(authorization: Annotated[Optional[str], Header(description="`Bearer <admin token>`")] = None) -> None:
    """Let through only a request bearing the server's ``PORTL_ADMIN_TOKEN`` (compared in constant time)."""
    token = os.environ.get(ADMIN_TOKEN_VARIABLE, "").strip()
    if not token:
        raise ApiError(404, "not_found", f"metrics are off on this server: set {ADMIN_TOKEN_VARIABLE} in its "
                       "environment to a secret token and restart it, then send 'Authorization: Bearer <token>'")
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthorized", "the metrics need the admin token: send 'Authorization: Bearer <token>', "
                       f"the token being the server's {ADMIN_TOKEN_VARIABLE} (a tenant's API key is not enough)",
                       headers=_CHALLENGE)
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", f"that is not the admin token: send the server's {ADMIN_TOKEN_VARIABLE}",
                       headers=_CHALLENGE)


# Declared by hand: with a plain-text answer, FastAPI would document the errors as text too.
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


@router.get("/metrics", response_class=PlainTextResponse, summary="Every tenant's figures, for Prometheus",
            dependencies=[Depends(admin)], responses={
                200: {"content": {"text/plain": {}}, "description": "Prometheus' text exposition format 0.0.4."},
                401: {"content": _ERROR_JSON, "description": "No admin token, or not the server's."},
                404: {"content": _ERROR_JSON, "description": f"No {ADMIN_TOKEN_VARIABLE} is set: the metrics are off."}})
def metrics(request: Request) -> PlainTextResponse:
    """Jobs by status and tenant, rows moved and rejected, batch durations and retry latency, queue
    depths and workers. Needs `Authorization: Bearer <PORTL_ADMIN_TOKEN>`, not a tenant's key."""
    state = request.app.state
    out = Exposition()
    with state.store.sessions() as session:
        names = dict(session.execute(select(Tenant.id, Tenant.name).order_by(Tenant.name)).tuples().all())
        _write_jobs(out, session, names)
        _write_batch_states(out, session, names)
        _write_batch_times(out, session, names, state.store.settings.is_sqlite)
    _write_executor(out, state.executor)
    return PlainTextResponse(str(out), media_type=CONTENT_TYPE)


def _write_jobs(out: Exposition, session: Session, names: dict[int, str]) -> None:
    by_status: dict[tuple[int, str], int] = defaultdict(int)
    by_status.update({(tenant, status): count for tenant, status, count in session.execute(
        select(Job.tenant_id, Job.status, func.count()).where(Job.deleted_at.is_(None))
        .group_by(Job.tenant_id, Job.status)).tuples()})
    out.family("portl_jobs", "gauge", "Jobs in each status, per tenant (deleted jobs not counted).",
               (({"tenant": name, "status": status}, by_status[tenant, status])
                for tenant, name in names.items() for status in JobStatus.ALL))
    # Counters: every job counts, deleted ones too (their rows stay), so that they never go down.
    sums = {tenant: [int(figure or 0) for figure in figures] for tenant, *figures in session.execute(
        select(Job.tenant_id, func.sum(_count("read")), func.sum(_moved()), func.sum(_count("rejected")))
        .group_by(Job.tenant_id)).tuples()}
    for position, (name, help_text) in enumerate(COUNTERS):
        out.family(name, "counter", help_text, (({"tenant": tenant_name}, sums.get(tenant, [0, 0, 0])[position])
                                                for tenant, tenant_name in names.items()))


def _write_batch_states(out: Exposition, session: Session, names: dict[int, str]) -> None:
    by_status: dict[tuple[int, str], int] = defaultdict(int)
    by_status.update({(tenant, status): count for tenant, status, count in session.execute(
        select(Batch.tenant_id, Batch.status, func.count()).group_by(Batch.tenant_id, Batch.status)).tuples()})
    out.family("portl_batches", "gauge", "Batches in each status, per tenant.",
               (({"tenant": name, "status": status}, by_status[tenant, status])
                for tenant, name in names.items() for status in BatchStatus.ALL))
    dead = dict(session.execute(select(DeadLetter.tenant_id, func.count()).where(DeadLetter.replayed_at.is_(None))
                                .group_by(DeadLetter.tenant_id)).tuples().all())
    out.family("portl_dead_letters", "gauge", "Dead-letter entries not replayed, per tenant.",
               (({"tenant": name}, dead.get(tenant, 0)) for tenant, name in names.items()))
    due = dict(session.execute(select(Batch.tenant_id, func.min(Batch.next_retry_at))
                               .where(Batch.status == BatchStatus.RETRYING, Batch.next_retry_at <= now())
                               .group_by(Batch.tenant_id)).tuples().all())
    at = now()
    out.family("portl_batch_retry_overdue_seconds", "gauge", "Per tenant, how long the batch waiting longest for "
               "its retry has been due (now minus its next_retry_at, for batches in status retrying); 0 when none "
               "is overdue.", (({"tenant": name}, round((at - due[tenant]).total_seconds(), 3) if tenant in due else 0)
                               for tenant, name in names.items()))


def _write_batch_times(out: Exposition, session: Session, names: dict[int, str], is_sqlite: bool) -> None:
    ran = _seconds(Batch.finished_at, Batch.started_at, is_sqlite)
    out.histogram("portl_batch_duration_seconds", "Seconds from a batch's start to its end (started_at to "
                  "finished_at), per tenant, for each batch's latest attempt that ended (succeeded, failed or "
                  "cancelled).", DURATION_BOUNDS,
                  _histogram(session, names, ran, DURATION_BOUNDS, Batch.started_at.is_not(None),
                             Batch.finished_at.is_not(None), Batch.finished_at >= Batch.started_at))
    # A failed attempt leaves its end in finished_at, and the retry's start overwrites started_at
    # (and clears next_retry_at); finished_at is overwritten when the retry ends. So the time from a
    # failure to its retry is in the row only while the retry runs.
    waited = _seconds(Batch.started_at, Batch.finished_at, is_sqlite)
    latency = dict(session.execute(
        select(Batch.tenant_id, func.max(waited))
        .where(Batch.status == BatchStatus.RUNNING, Batch.attempts > 1, Batch.finished_at.is_not(None),
               Batch.started_at >= Batch.finished_at).group_by(Batch.tenant_id)).tuples().all())
    out.family("portl_batch_retry_latency_seconds", "gauge", "Retry latency, per tenant: among the batches now "
               "running a second or later attempt, the longest time from the end of the failed attempt "
               "(finished_at) to the start of the retry (started_at), that is the backoff plus the wait for a "
               "worker. A batch keeps both times only while its retry runs, so retries that have ended are not "
               "counted; 0 when no retry runs.",
               (({"tenant": name}, round(float(latency.get(tenant) or 0), 3)) for tenant, name in names.items()))


def _seconds(later: Any, earlier: Any, is_sqlite: bool) -> ColumnElement[Any]:
    """``later - earlier`` in seconds, computed by the database."""
    if is_sqlite:
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _histogram(session: Session, names: dict[int, str], seconds: ColumnElement[Any], bounds: tuple[float, ...],
               *where: Any) -> list[tuple[dict[str, str], list[int], float, int]]:
    """Per tenant: the batches at or below each bound, the sum of their seconds and their count."""
    buckets = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    found = {row[0]: row[1:] for row in session.execute(
        select(Batch.tenant_id, func.count(), func.sum(seconds), *buckets).where(*where).group_by(Batch.tenant_id))}
    series = []
    for tenant, name in names.items():
        count, total, *below = found.get(tenant, (0, 0.0, *[0] * len(bounds)))
        series.append(({"tenant": name}, [int(b or 0) for b in below], round(float(total or 0.0), 6), int(count)))
    return series


def _write_executor(out: Exposition, executor: Any) -> None:
    found = monitor.queues(executor)
    out.family("portl_queue_depth", "gauge", "Jobs waiting for a worker, per queue (the broker's queues with Celery, "
               "in-process otherwise); absent when the broker cannot be reached.",
               (({"queue": name}, depth) for name, depth in found.depths.items() if depth is not None))
    if getattr(executor, "kind", None) == "celery":
        out.family("portl_broker_up", "gauge", "1 when the broker answered, 0 when it could not be reached.",
                   [({}, 0 if None in found.depths.values() else 1)])
    running = monitor.workers(executor)
    out.family("portl_workers", "gauge", "Workers that answered (with Celery, within a second).",
               [({}, len(running.workers))])
    out.family("portl_worker_concurrency", "gauge", "Jobs a worker runs at once.",
               (({"worker": w.name}, w.concurrency) for w in running.workers if w.concurrency is not None))
    out.family("portl_worker_active", "gauge", "What a worker is running now: with Celery, its tasks under way; "
               "in-process, the jobs its threads are working on.",
               (({"worker": w.name}, w.active) for w in running.workers))
