"""``/api/v1/jobs/{id}/retry``: run again what did not succeed of a job that failed, ended partial
or was cancelled (:func:`portl.service.work.retry_job`). Its batches go on from the checkpoints
their destination holds, so what they committed is not loaded again; a job that never got as far
as its batches starts afresh. Its attempts count up."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Request

from portl.errors import ServiceError
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import _own_job, tenant_session
from portl.service.api.schemas import ERRORS, ErrorOut, JobOut
from portl.service.api.showjob import job_out
from portl.service import work
from portl.service.status import JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
log = logging.getLogger("portl.service")


@router.post("/{job_id}/retry", response_model=JobOut, summary="Retry a failed, partial or cancelled job", responses={
    409: {"model": ErrorOut, "description": "The job is queued, running or succeeded: nothing to retry."}, **ERRORS})
def retry_job(job_id: uuid.UUID, request: Request, caller: CurrentCaller) -> JobOut:
    """Run again what did not succeed: its dead-lettered and cancelled batches, each from its
    checkpoint in the destination, or the job from where it stopped. Each row is loaded once."""
    with tenant_session(request, caller) as session:
        _own_job(session, caller, job_id)  # 404 when it is not the caller's
    try:
        retried = work.retry_job(request.app.state.store, job_id, request.app.state.executor)
    except ServiceError as exc:
        # The retry is recorded (the job queued) before its start is sent: the sweeper sends it once
        # the broker answers. A 500 here would tell the client it failed, and a second try gets a 409.
        log.warning("job %s is queued again; it is sent to the workers when the broker is back: %s", job_id, exc)
        retried = True
    if not retried:
        with tenant_session(request, caller) as session:
            status = _own_job(session, caller, job_id).status
        raise ApiError(409, "job_not_retryable", f"job {job_id} is {status}; only a failed, partial or cancelled job "
                       "can be retried" + (" (cancel it first)" if status not in JobStatus.FINISHED else ""))
    with tenant_session(request, caller) as session:
        return job_out(_own_job(session, caller, job_id))
