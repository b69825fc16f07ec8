"""A job's batches and what failed of them: ``/api/v1/jobs/{id}/retry-status`` (each batch's
attempts, last error, next retry and state), ``/api/v1/batches/{id}/retry`` (one batch's source
range again), the dead-letter queue (``/api/v1/dlq``, ``/api/v1/dlq/{id}/replay``) and the tenant's
retry policy (``/api/v1/retry-policies``). A batch loaded again goes on from its checkpoint in the
destination: its rows are committed once, whichever way it is run again."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import datetime
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from portl.errors import ServiceError
from portl.service import work
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import _own_job, tenant_session
from portl.service.api.schemas import ERRORS, Counts, ErrorOut
from portl.service.models import Batch, DeadLetter, Job, RetryPolicy, now
from portl.service.status import BatchStatus

router = APIRouter(prefix="/api/v1", tags=["batches and retries"])
log = logging.getLogger("portl.service.api")
MAX_PAGE = 200


# --- bodies -------------------------------------------------------------------------------------


class BatchOut(BaseModel):
    """One batch of a job: a partition of its source (or the whole of it), and how its attempts went."""

    id: int
    job_id: uuid.UUID
    job_name: Optional[str] = Field(description="Which job of the submitted file.")
    kind: str = Field(description="part: one partition of a run spread over workers; whole: the whole job.")
    partition: int
    status: str = Field(description="pending, running, retrying, succeeded, dead (in the dead-letter queue) or "
                        "cancelled.")
    attempts: int
    last_error: Optional[str]
    next_retry_at: Optional[datetime] = Field(description="When the next attempt is due, while retrying.")
    counts: Counts
    started_at: Optional[datetime]
    finished_at: Optional[datetime]


RetryOn = Literal["transient", "connector", "data", "any"]


class PolicyIn(BaseModel):
    """The tenant's default retry policy for failed batches. A job's own `retry:` wins over it."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(3, ge=1, le=100, description="Attempts per batch, the first one included.")
    backoff_s: float = Field(1.0, ge=0, le=86_400, description="Wait before the second attempt; doubles each time.")
    max_backoff_s: float = Field(300.0, ge=0, le=86_400, description="Upper bound of the wait.")
    retry_on: list[RetryOn] = Field(["transient"], min_length=1, description=(
        "Which errors are tried again: transient (dropped connections, timeouts, deadlocks), connector (any error "
        "of a source or destination), data (refused values, conflicting keys, too many rejects), any. Other errors "
        "send the batch to the dead-letter queue at once."))


class PolicyOut(PolicyIn):
    source: str = Field(description="Where it comes from: the service default, the tenant's policy, or the job's "
                        "retry:.")


class RetryStatus(BaseModel):
    """Where each batch of a job stands, with totals over every attempt."""

    job_id: uuid.UUID
    status: str
    policy: PolicyOut
    batches: list[BatchOut]
    attempts: int = Field(description="Attempts over every batch.")
    retrying: int
    dead: int
    counts: Counts = Field(description="What the batches did, over all their attempts.")


class DeadLetterOut(BaseModel):
    """A batch that ran out of attempts (or failed in a way its policy does not retry)."""

    id: int
    batch: BatchOut
    error: str
    created_at: datetime
    replayed_at: Optional[datetime] = Field(description="When it was replayed; null while it waits.")


class DeadLetterPage(BaseModel):
    entries: list[DeadLetterOut]
    next_cursor: Optional[str] = Field(description="Pass as cursor for the next page; null on the last page.")


def _batch_out(batch: Batch) -> BatchOut:
    counts = batch.counts or {}
    skipped = counts.get("skipped", 0)
    return BatchOut(id=batch.id, job_id=batch.job_id, job_name=batch.job_name, kind=batch.kind,
                    partition=batch.partition, status=batch.status, attempts=batch.attempts,
                    last_error=batch.last_error, next_retry_at=batch.next_retry_at,
                    counts=Counts(read=counts.get("read", 0), inserted=counts.get("inserted", 0),
                                  updated=counts.get("updated", 0),
                                  skipped=sum(skipped.values()) if isinstance(skipped, dict) else skipped,
                                  rejected=counts.get("rejected", 0)),
                    started_at=batch.started_at, finished_at=batch.finished_at)


def _policy_out(policy: work.Policy) -> PolicyOut:
    return PolicyOut(max_attempts=policy.max_attempts, backoff_s=policy.backoff_s,
                     max_backoff_s=policy.max_backoff_s, retry_on=list(policy.retry_on),  # type: ignore[arg-type]
                     source=policy.source)


# --- a job's batches ----------------------------------------------------------------------------


@router.get("/jobs/{job_id}/retry-status", response_model=RetryStatus, summary="A job's batches and their retries",
            responses=ERRORS)
def retry_status(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> RetryStatus:
    """Per batch: attempts, last error, next retry time and state; totals across all attempts."""
    with tenant_session(request, caller) as session:
        job = _own_job(session, caller, job_id)
        batches = list(session.scalars(select(Batch).where(Batch.job_id == job_id, Batch.tenant_id == caller.tenant_id)
                                       .order_by(Batch.stage, Batch.partition, Batch.id)))
        policy = work.policy_for(session, caller.tenant_id, job.job_text, batches[-1].job_name if batches else None)
        shown = [_batch_out(b) for b in batches]
        status = job.status
    total = Counts()
    for b in shown:
        for field in ("read", "inserted", "updated", "skipped", "rejected"):
            setattr(total, field, getattr(total, field) + getattr(b.counts, field))
    return RetryStatus(job_id=job_id, status=status, policy=_policy_out(policy), batches=shown,
                       attempts=sum(b.attempts for b in shown),
                       retrying=sum(b.status == BatchStatus.RETRYING for b in shown),
                       dead=sum(b.status == BatchStatus.DEAD for b in shown), counts=total)


@router.post("/batches/{batch_id}/retry", response_model=BatchOut, summary="Run one batch again", responses={
    409: {"model": ErrorOut, "description": "The batch is running, pending or succeeded, or its job moved on."},
    **{**ERRORS, 404: {"model": ErrorOut, "description": "No such batch for this tenant."}}})
def retry_batch(batch_id: int, request: Request, caller: CurrentCaller) -> BatchOut:
    """Run a dead, cancelled or retrying batch's source range again now, from its last checkpoint:
    exactly once, whatever its earlier attempts committed."""
    return _replay(request, caller, _checked_id(batch_id, "batch"))


def _replay(request: Request, caller: CurrentCaller, batch_id: int) -> BatchOut:
    try:
        why = work.retry_batch(request.app.state.store, batch_id, request.app.state.executor, caller.tenant_id)
    except ServiceError as exc:
        # Recorded (the batch pending) before it was sent: the sweeper sends it once the broker answers.
        log.warning("batch %s is pending again; it is sent to the workers when the broker is back: %s", batch_id, exc)
        why = None
    if why == "not_found":
        raise ApiError(404, "not_found", f"no batch {batch_id} for tenant {caller.tenant!r}")
    if why is not None:
        raise ApiError(409, "batch_not_retryable", why)
    with tenant_session(request, caller) as session:
        return _batch_out(session.get(Batch, batch_id))


def _checked_id(value: int, what: str) -> int:
    if not 1 <= value <= 2**63 - 1:
        raise ApiError(404, "not_found", f"no {what} {value}")
    return value


# --- the dead-letter queue ----------------------------------------------------------------------


@router.get("/dlq", response_model=DeadLetterPage, summary="The dead-letter queue", responses={
    422: {"model": ErrorOut, "description": "A filter or the cursor is malformed."}, **ERRORS})
def dead_letters(
    request: Request,
    caller: CurrentCaller,
    job_id: Annotated[Optional[uuid.UUID], Query(description="Only this job's batches.")] = None,
    replayed: Annotated[Optional[bool], Query(description="false: only those waiting; true: only replayed ones.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[Optional[str], Query(description="next_cursor of the previous page.")] = None,
) -> DeadLetterPage:
    """Batches that exhausted their retries, newest first, with the error that stopped them."""
    query = (select(DeadLetter, Batch).join(Batch, Batch.id == DeadLetter.batch_id)
             .join(Job, Job.id == Batch.job_id)
             .where(DeadLetter.tenant_id == caller.tenant_id, Job.deleted_at.is_(None)))
    if job_id is not None:
        query = query.where(Batch.job_id == job_id)
    if replayed is not None:
        query = query.where(DeadLetter.replayed_at.is_not(None) if replayed else DeadLetter.replayed_at.is_(None))
    if cursor is not None:
        query = query.where(DeadLetter.id < _decode(cursor))
    query = query.order_by(DeadLetter.id.desc()).limit(limit + 1)
    with tenant_session(request, caller) as session:
        rows = session.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [DeadLetterOut(id=d.id, batch=_batch_out(b), error=d.error, created_at=d.created_at,
                                 replayed_at=d.replayed_at) for d, b in rows]
    return DeadLetterPage(entries=entries, next_cursor=_encode(entries[-1].id) if more else None)


@router.post("/dlq/{entry_id}/replay", response_model=DeadLetterOut, summary="Replay a dead-lettered batch",
             responses={409: {"model": ErrorOut, "description": "Already replayed, or its job moved on."},
                        **{**ERRORS, 404: {"model": ErrorOut, "description": "No such entry for this tenant."}}})
def replay(entry_id: int, request: Request, caller: CurrentCaller) -> DeadLetterOut:
    """Run the batch again, once its cause is fixed: from its last checkpoint, each row once."""
    _checked_id(entry_id, "dead-letter entry")
    with tenant_session(request, caller) as session:
        entry = session.scalars(select(DeadLetter).join(Batch, Batch.id == DeadLetter.batch_id)
                                .join(Job, Job.id == Batch.job_id)
                                .where(DeadLetter.id == entry_id, DeadLetter.tenant_id == caller.tenant_id,
                                       Job.deleted_at.is_(None))).first()
        if entry is None:
            raise ApiError(404, "not_found", f"no dead-letter entry {entry_id} for tenant {caller.tenant!r}")
        if entry.replayed_at is not None:
            raise ApiError(409, "already_replayed", f"dead-letter entry {entry_id} was replayed at "
                           f"{entry.replayed_at.isoformat()}; see its batch {entry.batch_id}")
        batch_id = entry.batch_id
    batch = _replay(request, caller, batch_id)
    with tenant_session(request, caller) as session:
        entry = session.get(DeadLetter, entry_id)
        return DeadLetterOut(id=entry.id, batch=batch, error=entry.error, created_at=entry.created_at,
                             replayed_at=entry.replayed_at)


def _encode(last: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(["dlq", last]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        kind, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "dlq" or not isinstance(last, int):
            raise ValueError(cursor)
        return last
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "request_invalid", "cursor is not one this API gave: pass next_cursor as it was "
                       "answered") from exc


# --- the tenant's retry policy ------------------------------------------------------------------


@router.get("/retry-policies", response_model=PolicyOut, summary="The tenant's retry policy", responses=ERRORS)
def read_policy(request: Request, caller: CurrentCaller) -> PolicyOut:
    """The policy failed batches are tried again under, unless a job sets its own `retry:`."""
    with tenant_session(request, caller) as session:
        return _policy_out(work.policy_for(session, caller.tenant_id, "", None))


@router.put("/retry-policies", response_model=PolicyOut, summary="Set the tenant's retry policy", responses={
    422: {"model": ErrorOut, "description": "A value is out of range."}, **ERRORS})
def set_policy(body: PolicyIn, request: Request, caller: CurrentCaller) -> PolicyOut:
    """Replace the tenant's default policy; it applies to batches that fail from now on."""
    if body.max_backoff_s < body.backoff_s:
        raise ApiError(422, "request_invalid", f"max_backoff_s ({body.max_backoff_s:g}) is below backoff_s "
                       f"({body.backoff_s:g}): the wait could never reach its start")
    with tenant_session(request, caller) as session:
        row = session.scalars(select(RetryPolicy).where(RetryPolicy.tenant_id == caller.tenant_id)).first()
        if row is None:
            row = RetryPolicy(tenant_id=caller.tenant_id)
            session.add(row)
        row.max_attempts, row.backoff_s, row.max_backoff_s = body.max_attempts, body.backoff_s, body.max_backoff_s
        row.retry_on, row.updated_at = list(dict.fromkeys(body.retry_on)), now()
        session.commit()
        return _policy_out(work.policy_for(session, caller.tenant_id, "", None))
