"""A job row as the API shows it: counts, and progress with a rate and an estimate when they
can be computed."""

from __future__ import annotations

from portl.secrets import mask_url
from portl.service.api.schemas import Counts, JobOut, Progress
from portl.service.models import Job, now


def job_out(job: Job) -> JobOut:
    counts = {k: int(v) for k, v in (job.counts or {}).items() if k in Counts.model_fields}
    return JobOut(id=job.id, name=job.name, labels=job.labels or {}, status=job.status, counts=Counts(**counts),
                  progress=progress(job), attempts=job.attempts or 0, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at, error=mask_url(job.error) if job.error else None)


def progress(job: Job) -> Progress:
    done = job.rows_done or 0
    rate = eta = None
    if job.started_at is not None:
        elapsed = ((job.finished_at or now()) - job.started_at).total_seconds()
        if elapsed > 0 and done > 0:
            rate = round(done / elapsed, 1)
            if job.rows_total is not None and job.finished_at is None:
                eta = round(max(job.rows_total - done, 0) / (done / elapsed), 1)
    return Progress(rows_done=done, rows_total=job.rows_total, bytes_done=job.bytes_done or 0,
                    bytes_total=job.bytes_total, rows_per_s=rate, eta_s=eta)
