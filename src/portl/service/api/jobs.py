"""``/api/v1/jobs``: submit a job, read one, list them, cancel one, delete one. Every query is
filtered by the caller's tenant: another tenant's job is answered 404, as if it did not exist.

Deleting is soft: the row stays, with ``deleted_at`` set, as the audit trail (with its record
log), and every endpoint answers 404 for it from then on, as for a job that never existed."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy import ColumnElement, and_, event, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portl.errors import ServiceError
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.schemas import ERRORS, ErrorOut, JobOut, JobPage, JobSubmission
from portl.service.api.showjob import job_out
from portl.service.api.submit import nul_characters, problem_dicts, submitted
from portl.service.models import Job, now
from portl.service.status import JobStatus
from portl.service.tenants import Caller

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
MAX_PAGE = 200
log = logging.getLogger("portl.service")


@contextmanager
def tenant_session(request: Request, caller: Caller) -> Iterator[Session]:
    """A session for one request of ``caller``; on PostgreSQL each of its transactions also names
    the tenant for row-level security (for that transaction only: a pooled connection keeps nothing)."""
    store = request.app.state.store
    with store.tenant_sessions() as session:
        if not store.settings.is_sqlite:
            tenant = str(caller.tenant_id)

            def name_tenant(_session: Session, _transaction: Any, connection: Any) -> None:
                connection.execute(text("SELECT set_config('portl.tenant_id', :tenant, true)"), {"tenant": tenant})

            event.listen(session, "after_begin", name_tenant)
        yield session


def _own_job(session: Session, caller: Caller, job_id: uuid.UUID) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id, Job.tenant_id == caller.tenant_id,
                                            Job.deleted_at.is_(None))).first()
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id} for tenant {caller.tenant!r}")
    return job


@router.post("", status_code=201, response_model=JobOut, summary="Submit a job",
             responses={200: {"model": JobOut, "description": "A repeat of an earlier submission with the same "
                              "Idempotency-Key: the job it created."},
                        409: {"model": ErrorOut, "description": "The Idempotency-Key was used for another job."},
                        422: {"model": ErrorOut, "description": "The job is invalid or does what the tenant is not "
                              "allowed: every problem, located."}, **ERRORS})
def submit_job(body: JobSubmission, request: Request, response: Response, caller: CurrentCaller,
               idempotency_key: Annotated[Optional[str], Header(max_length=200, description="Makes a retried "
                                                                "submission answer the first job instead of running it twice.")] = None) -> JobOut:
    """Validate a job as `portl validate` does, refuse what the tenant is not allowed (code hooks,
    paths outside its files folder, non-public addresses), queue it and start it."""
    from portl.service.policy import job_problems

    sent = submitted(body.job, body.name, body.labels)
    app = request.app.state
    with tenant_session(request, caller) as session:
        if idempotency_key and (earlier := _by_key(session, caller, idempotency_key)) is not None:
            return _repeat(earlier, sent, idempotency_key, response)
    problems = nul_characters(sent.text) or job_problems(sent.text, caller, files_dir=app.files_dir(caller.tenant_id))
    if problems:
        count = len(problems)
        raise ApiError(422, "job_invalid", f"the job has {count} problem{'s' if count != 1 else ''}; nothing was queued",
                       problem_dicts(problems, sent))
    with tenant_session(request, caller) as session:
        job = Job(tenant_id=caller.tenant_id, name=sent.name, labels=sent.labels, job_text=sent.text,
                  status=JobStatus.QUEUED, idempotency_key=idempotency_key, counts={})
        session.add(job)
        try:
            session.commit()
        except IntegrityError:  # the same key, submitted at the same moment by another request
            session.rollback()
            earlier = _by_key(session, caller, idempotency_key or "")
            if earlier is None:
                raise
            return _repeat(earlier, sent, idempotency_key or "", response)
        shown = job_out(job)
    try:
        app.executor.submit(shown.id)
    except ServiceError as exc:
        # The job is stored, queued, and sent again by the sweeper once the broker answers: the
        # submission succeeded. A 500 here would have the client submit it a second time.
        log.warning("job %s is queued; it is sent to the workers when the broker is back: %s", shown.id, exc)
    return shown


def _by_key(session: Session, caller: Caller, key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.tenant_id == caller.tenant_id, Job.idempotency_key == key)).first()


def _repeat(earlier: Job, sent: Any, key: str, response: Response) -> JobOut:
    if earlier.deleted_at is not None:  # its key stays taken: the row is kept, and answering it would show it
        raise ApiError(409, "idempotency_conflict", f"Idempotency-Key {key!r} was used for a job that has since been "
                       "deleted; use a new key to submit the job again")
    if not sent.same_as(earlier.job_text, earlier.name, earlier.labels):
        raise ApiError(409, "idempotency_conflict", f"Idempotency-Key {key!r} was used for job {earlier.id}, submitted "
                       "with another body; use a new key for another job")
    response.status_code = 200
    return job_out(earlier)


@router.get("/{job_id}", response_model=JobOut, summary="Read a job", responses=ERRORS)
def read_job(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> JobOut:
    """A job's status, counts and progress (never its text)."""
    with tenant_session(request, caller) as session:
        return job_out(_own_job(session, caller, job_id))


@router.get("", response_model=JobPage, summary="List jobs", responses={
    422: {"model": ErrorOut, "description": "A filter or the cursor is malformed."}, **ERRORS})
def list_jobs(
    request: Request,
    caller: CurrentCaller,
    status: Annotated[Optional[str], Query(description="Only jobs in this status.")] = None,
    label: Annotated[list[str], Query(description="key:value; repeat for several (all must match).")] = [],  # noqa: B006
    created_after: Annotated[Optional[datetime], Query(description="ISO 8601, with a time zone.")] = None,
    created_before: Annotated[Optional[datetime], Query(description="ISO 8601, with a time zone.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[Optional[str], Query(description="next_cursor of the previous page.")] = None,
) -> JobPage:
    """The tenant's jobs, newest first, a page at a time."""
    query = select(Job).where(Job.tenant_id == caller.tenant_id, Job.deleted_at.is_(None))
    if status is not None:
        if status not in JobStatus.ALL:
            raise ApiError(422, "request_invalid", f"status {status!r} is not one of {', '.join(JobStatus.ALL)}")
        query = query.where(Job.status == status)
    for wanted in label:
        key, sep, value = wanted.partition(":")
        if not sep or not key:
            raise ApiError(422, "request_invalid", f"label {wanted!r} should be key:value, e.g. team:billing")
        if "\x00" in wanted:
            raise ApiError(422, "request_invalid",
                           f"label {wanted!r} holds a NUL character (\\x00), which no label can")
        query = query.where(_has_label(key, value, sqlite=request.app.state.store.settings.is_sqlite))
    for name, when in (("created_after", created_after), ("created_before", created_before)):
        if when is not None and when.tzinfo is None:
            raise ApiError(422, "request_invalid", f"{name} needs a time zone, e.g. 2026-01-31T12:00:00Z")
        if when is not None and _in_utc(when) is None:
            raise ApiError(422, "request_invalid", f"{name} {when.isoformat()} is outside the years 1 to 9999 once "
                           "in UTC")
    if created_after is not None:
        query = query.where(Job.created_at > created_after)
    if created_before is not None:
        query = query.where(Job.created_at < created_before)
    if cursor is not None:
        at, last = _decode(cursor)
        query = query.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id < last)))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    with tenant_session(request, caller) as session:
        jobs = list(session.scalars(query))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return JobPage(jobs=[job_out(j) for j in jobs], next_cursor=_encode(jobs[-1]) if more else None)


def _has_label(key: str, value: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Whether a job's label ``key`` is ``value``. On SQLite the labels are read as rows
    (``json_each``): its JSON paths cannot name a key that holds a double quote or a backslash."""
    if not sqlite:
        return Job.labels[key].as_string() == value
    labels = func.json_each(Job.labels).table_valued("key", "value")
    return exists(select(1).select_from(labels).where(labels.c.key == key, labels.c.value == value))


def _encode(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _in_utc(when: datetime) -> datetime | None:
    """The time in UTC, or None when it falls outside the years a datetime holds (0001-01-01T00:00
    at +14:00 is in the year 0 in UTC): the database would refuse it."""
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        return None


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = _in_utc(datetime.fromisoformat(at))
        if when is None:
            raise ValueError(at)
        return when, uuid.UUID(last)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "request_invalid", "cursor is not one this API gave: pass next_cursor as it was "
                       "answered") from exc


@router.put("/{job_id}/cancel", response_model=JobOut, summary="Cancel a job", responses={
    409: {"model": ErrorOut, "description": "The job has already finished."}, **ERRORS})
def cancel_job(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> JobOut:
    """Cancel a queued job at once, or a running one after its batch in flight (status cancelling,
    then cancelled)."""
    with tenant_session(request, caller) as session:
        job = _own_job(session, caller, job_id)
        if job.status in JobStatus.FINISHED:
            raise ApiError(409, "job_finished", f"job {job_id} has already finished ({job.status}); there is "
                           "nothing to cancel")
    request.app.state.executor.cancel(job_id)
    with tenant_session(request, caller) as session:
        return job_out(_own_job(session, caller, job_id))


@router.delete("/{job_id}", status_code=204, response_class=Response, summary="Delete a job", responses={
    409: {"model": ErrorOut, "description": "The job is queued, running or cancelling: cancel it first."}, **ERRORS})
def delete_job(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> Response:
    """Delete a finished job: it is no longer listed and every endpoint answers 404 for it. Its
    row and record log stay in the state database, as the audit trail."""
    with tenant_session(request, caller) as session:
        # One statement, as for retry: a job that starts meanwhile is not deleted under its worker.
        changed = session.execute(update(Job).where(Job.id == job_id, Job.tenant_id == caller.tenant_id,
                                                    Job.deleted_at.is_(None), Job.status.in_(JobStatus.FINISHED))
                                  .values(deleted_at=now())).rowcount
        session.commit()
    if not changed:
        with tenant_session(request, caller) as session:
            status = _own_job(session, caller, job_id).status  # 404 when it is not the caller's, or gone
        raise ApiError(409, "job_not_finished", f"job {job_id} is {status}; only a finished job can be deleted: "
                       "cancel it first, then delete it once it is cancelled")
    return Response(status_code=204)
