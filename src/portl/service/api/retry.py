"""``/api/v1/jobs/{id}/retry``: run again a job that failed or was cancelled. It continues from
the checkpoints its destination holds (the engine's resume), so the batches it committed are not
loaded again; a job that never got as far as a run starts afresh. Its attempts count up."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy import update

from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import _own_job, tenant_session
from portl.service.api.schemas import ERRORS, ErrorOut, JobOut
from portl.service.api.showjob import job_out
from portl.service.models import Job
from portl.service.status import JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


@router.post("/{job_id}/retry", response_model=JobOut, summary="Retry a failed or cancelled job", responses={
    409: {"model": ErrorOut, "description": "The job is queued, running or succeeded: nothing to retry."}, **ERRORS})
def retry_job(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> JobOut:
    """Queue the job again, to continue from its destination's checkpoints: each row is loaded once."""
    with tenant_session(request, caller) as session:
        # The write first, in one statement: on SQLite a read before it would make the write fail
        # at once while a job commits progress, rather than wait; and two retries queue it once.
        changed = session.execute(update(Job).where(Job.id == job_id, Job.tenant_id == caller.tenant_id,
                                                    Job.deleted_at.is_(None), Job.status.in_(RETRYABLE))
                                  .values(status=JobStatus.QUEUED, finished_at=None, error=None)).rowcount
        session.commit()
    if not changed:
        with tenant_session(request, caller) as session:
            status = _own_job(session, caller, job_id).status  # 404 when it is not the caller's
        raise ApiError(409, "job_not_retryable", f"job {job_id} is {status}; only a failed or cancelled job can "
                       "be retried" + (" (cancel it first)" if status not in JobStatus.FINISHED else ""))
    request.app.state.executor.submit(job_id, resume=True)
    with tenant_session(request, caller) as session:
        return job_out(_own_job(session, caller, job_id))
