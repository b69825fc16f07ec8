"""Where submitted jobs run: the :class:`Executor` seam, and the in-process executor on a pool
of threads that the service uses unless a broker is configured.

The API inserts a job row (``queued``) and calls :meth:`Executor.submit`; the executor runs it
with :func:`portl.service.runner.run_job` when a worker is free and the job's tenant runs fewer
jobs than its ``max_running_jobs`` (a tenant at its limit waits, other tenants' jobs start).
Cancelling is cooperative: a running job stops after its batch in flight. With ``PORTL_BROKER``
set, :class:`CeleryExecutor` sends the jobs to ``portl worker`` processes instead
(:mod:`portl.service.tasks`).

:func:`executor_for` starts the executor and takes back what a previous process left: jobs it
left ``running`` are resumed from the destination's checkpoints, ``queued`` ones submitted again,
and ``cancelling`` ones marked ``cancelled`` (they were stopped by the process ending, which is
what was asked; their committed batches stay).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select, update

from portl.errors import ServiceError
from portl.service.models import Job, Tenant, now
from portl.service.status import JobStatus
from portl.service.store import Store
from portl.service.settings import whole_number

log = logging.getLogger("portl.service")

BROKER_VARIABLE = "PORTL_BROKER"
WORKERS_VARIABLE = "PORTL_WORKERS"
DEFAULT_WORKERS = 4


class Executor(Protocol):
    """Runs submitted jobs somewhere: in this process, or on Celery workers."""

    kind: str
    """What runs the jobs, as the health check names it: ``in-process``, ``celery``."""

    def submit(self, job_id: uuid.UUID, *, resume: bool = False) -> None:
        """Run a job whose row exists with status ``queued``; returns at once. ``resume``: continue
        its earlier run from the destination's checkpoints (a retry, or a job a stopped process left)."""

    def cancel(self, job_id: uuid.UUID) -> None:
        """A queued job is cancelled at once; a running one is ``cancelling`` and stops after its
        batch in flight (then ``cancelled``)."""

    def close(self) -> None:
        """Stop taking work; running jobs stop after their batch and are resumed by the next executor."""


@dataclass
class _Entry:
    job_id: uuid.UUID
    tenant_id: int
    limit: int
    resume: bool = False
    stop: threading.Event = field(default_factory=threading.Event)


class InProcessExecutor:
    """Jobs on ``workers`` threads of this process, at most ``max_running_jobs`` per tenant."""

    kind = "in-process"

    def __init__(self, store: Store, workers: int = DEFAULT_WORKERS):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.store = store
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="portl-job")
        self._lock = threading.Lock()
        self._waiting: deque[_Entry] = deque()
        self._running: dict[uuid.UUID, _Entry] = {}
        self._futures: dict[uuid.UUID, Future[None]] = {}
        # Submitted again while its last run was still ending (a retry just after it was
        # cancelled): queued once that run's thread is done, never two runs at once.
        self._again: dict[uuid.UUID, _Entry] = {}
        self._closed = False

    # --- the seam -------------------------------------------------------------------------------

    def submit(self, job_id: uuid.UUID, *, resume: bool = False) -> None:
        with self.store.sessions() as session:
            row = session.execute(select(Job.tenant_id, Tenant.max_running_jobs)
                                  .join(Tenant, Tenant.id == Job.tenant_id).where(Job.id == job_id)).first()
        if row is None:
            raise ServiceError(f"no job {job_id} in the state database: insert its row before submitting it")
        with self._lock:
            if self._closed:
                raise ServiceError("this executor is closed and takes no more jobs; the job stays queued and runs "
                                   "when the service starts again")
            entry = _Entry(job_id, row.tenant_id, max(1, row.max_running_jobs), resume)
            if job_id in self._running:
                self._again[job_id] = entry
                return
            if any(e.job_id == job_id for e in self._waiting):
                return
            self._waiting.append(entry)
            self._dispatch()

    def cancel(self, job_id: uuid.UUID) -> None:
        with self._lock:
            waiting = next((e for e in self._waiting if e.job_id == job_id), None)
            if waiting is not None:
                self._waiting.remove(waiting)
            running = self._running.get(job_id)
        with self.store.sessions() as session:
            # Queued (or waiting to resume): nothing started, so it is cancelled now.
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                            .values(status=JobStatus.CANCELLED, finished_at=now()))
            if waiting is not None and waiting.resume:
                session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                                .values(status=JobStatus.CANCELLED, finished_at=now()))
            # Running here or elsewhere: the runner ends it as cancelled when it sees this status.
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                            .values(status=JobStatus.CANCELLING))
            session.commit()
        if running is not None:
            running.stop.set()

    def close(self, wait: bool = True) -> None:
        """Stop taking work. Jobs not started stay ``queued``; running ones stop after their batch
        and stay ``running``, for the next executor to resume. ``wait``: until they have stopped."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._again.clear()
            for entry in self._running.values():
                entry.stop.set()
        self._pool.shutdown(wait=wait)

    # --- what it is doing -----------------------------------------------------------------------

    def running(self) -> list[uuid.UUID]:
        """The jobs running now, in this process."""
        with self._lock:
            return list(self._running)

    def waiting(self) -> list[uuid.UUID]:
        """The jobs submitted and not started: no free worker, or their tenant at its limit."""
        with self._lock:
            return [e.job_id for e in self._waiting]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing runs or waits (True), or ``timeout`` seconds have passed (False)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                futures = list(self._futures.values())
                idle = not futures and not self._waiting
            if idle:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.01)

    # --- scheduling -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start what may start, in submission order (called with the lock held)."""
        if self._closed:
            return
        per_tenant: dict[int, int] = {}
        for entry in self._running.values():
            per_tenant[entry.tenant_id] = per_tenant.get(entry.tenant_id, 0) + 1
        for entry in list(self._waiting):
            if len(self._running) >= self.workers:
                return
            if per_tenant.get(entry.tenant_id, 0) >= entry.limit:
                continue
            self._waiting.remove(entry)
            self._running[entry.job_id] = entry
            per_tenant[entry.tenant_id] = per_tenant.get(entry.tenant_id, 0) + 1
            self._futures[entry.job_id] = self._pool.submit(self._work, entry)

    def _work(self, entry: _Entry) -> None:
        from portl.service.runner import run_job

        try:
            run_job(self.store, entry.job_id, entry.stop, resume=entry.resume)
        except BaseException:  # run_job records the job's own failures; this is the service failing
            log.exception("job %s: the worker failed outside the job; it stays as the state database shows it",
                          entry.job_id)
        finally:
            with self._lock:
                self._running.pop(entry.job_id, None)
                self._futures.pop(entry.job_id, None)
                again = self._again.pop(entry.job_id, None)
                if again is not None:
                    self._waiting.append(again)
                self._dispatch()


class CeleryExecutor:
    """Jobs sent to Celery workers (``portl worker``) through the broker ``PORTL_BROKER``.

    The workers share the state database with the service: they read each job from it, write its
    progress there, and look there for a request to cancel it. Each worker runs as many jobs at
    once as its ``--concurrency``; the tenants' ``max_running_jobs`` is not applied."""

    kind = "celery"

    def __init__(self, store: Store, app: object | None = None):
        from portl.service.tasks import celery_app, check_broker

        self.store = store
        self.app = app if app is not None else celery_app()
        check_broker(self.app)

    def submit(self, job_id: uuid.UUID, *, resume: bool = False) -> None:
        from portl.service.tasks import send_job

        with self.store.sessions() as session:
            exists = session.scalar(select(Job.id).where(Job.id == job_id))
        if exists is None:
            raise ServiceError(f"no job {job_id} in the state database: insert its row before submitting it")
        send_job(self.app, job_id, resume)

    def cancel(self, job_id: uuid.UUID) -> None:
        # A queued job is cancelled now (its task, when delivered, finds nothing to run); a running
        # one is marked, and the worker running it stops after its batch and ends it cancelled.
        with self.store.sessions() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                            .values(status=JobStatus.CANCELLED, finished_at=now()))
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                            .values(status=JobStatus.CANCELLING))
            session.commit()

    def close(self) -> None:
        """Let go of the broker connections; the workers carry on with the jobs they have."""
        self.app.close()


def executor_for(store: Store, workers: int | None = None) -> InProcessExecutor | CeleryExecutor:
    """The executor the settings ask for.

    ``PORTL_BROKER`` set: the Celery executor (the broker keeps the queued jobs, and delivers a
    job again when its worker died). Unset: the in-process executor, with ``workers`` threads
    (default: ``PORTL_WORKERS``, else 4), with the jobs a previous process left taken back."""
    broker = os.environ.get(BROKER_VARIABLE, "").strip()
    if broker:
        return CeleryExecutor(store)
    if workers is None:
        workers = _workers_from_environment()
    executor = InProcessExecutor(store, workers)
    _take_back(store, executor)
    return executor


def _workers_from_environment() -> int:
    return whole_number(os.environ, WORKERS_VARIABLE, DEFAULT_WORKERS, "workers", "a whole number from 1 up")


def _take_back(store: Store, executor: InProcessExecutor) -> None:
    """Resume the jobs a stopped process left running, end the ones it was cancelling, and submit
    the queued ones again, oldest first."""
    with store.sessions() as session:
        session.execute(update(Job).where(Job.status == JobStatus.CANCELLING, Job.deleted_at.is_(None))
                        .values(status=JobStatus.CANCELLED, finished_at=now()))
        session.commit()
        left = session.execute(select(Job.id, Job.status)
                               .where(Job.status.in_((JobStatus.RUNNING, JobStatus.QUEUED)), Job.deleted_at.is_(None))
                               .order_by(Job.created_at, Job.id)).all()
    for job_id, status in left:
        if status == JobStatus.RUNNING:
            log.info("job %s was running when the service stopped; it is resumed", job_id)
        executor.submit(job_id, resume=status == JobStatus.RUNNING)
