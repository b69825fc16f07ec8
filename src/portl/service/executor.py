"""Where submitted jobs run: the :class:`Executor` seam, and the in-process executor on a pool
of threads that the service uses unless a broker is configured.

The API inserts a job row (``queued``) and calls :meth:`Executor.submit`; the executor runs its
units of work (:mod:`portl.service.work`: the job's start, then each of its batches) on its
threads. A job starts while its tenant runs fewer jobs than its ``max_running_jobs`` (a tenant at
its limit waits, other tenants' jobs start). Cancelling is cooperative: a running job's batches
stop after the engine batch in flight. With ``PORTL_BROKER`` set, :class:`CeleryExecutor` sends the
units of work to ``portl worker`` processes instead (:mod:`portl.service.tasks`), so several
workers, on one machine or several, load the batches of one job.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sqlalchemy import func, select, update

from portl.errors import ServiceError
from portl.service import work
from portl.service.sweeper import Sweeper
from portl.service.models import Batch, Job, now
from portl.service.status import BatchStatus, JobStatus
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

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None:
        """Hand over a job's start (:func:`portl.service.work.start_job`) to be run somewhere."""

    def send_batch(self, batch_id: int) -> None:
        """Hand over one batch (:func:`portl.service.work.run_batch`) to be run somewhere."""


class InProcessExecutor:
    """Jobs run as units of work (:mod:`portl.service.work`) on ``workers`` threads of this
    process, with a sweeper thread for due retries and jobs waiting for their tenant's turn."""

    kind = "in-process"

    def __init__(self, store: Store, workers: int = DEFAULT_WORKERS, sweep_s: float = 0.2):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.store = store
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="portl-job")
        self._lock = threading.Lock()
        self._queued = 0
        self._busy: dict[int, tuple[str, object]] = {}
        """Units of work being done now: their thread's id -> (kind, job or batch id)."""
        self._stop = threading.Event()
        self._closed = False
        self._sweeper = Sweeper(store, self, sweep_s)
        self._sweeper.start()

    # --- the seam -------------------------------------------------------------------------------

    def submit(self, job_id: uuid.UUID, *, resume: bool = False) -> None:
        if self._closed:
            raise ServiceError("this executor is closed and takes no more jobs; the job stays queued and runs "
                               "when the service starts again")
        work.hand_over(self.store, job_id, self, resume)

    def cancel(self, job_id: uuid.UUID) -> None:
        work.cancel_job(self.store, job_id)

    def close(self, wait: bool = True) -> None:
        """Stop taking work. Jobs not started stay ``queued``; running batches stop after the
        engine batch in flight and wait, ``pending``, for the next executor. ``wait``: until they have."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._sweeper.stop()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # --- where units of work go -----------------------------------------------------------------

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None:
        self._queue("start", job_id, resume)

    def send_batch(self, batch_id: int) -> None:
        self._queue("batch", batch_id, False)

    def _queue(self, kind: str, the_id: object, resume: bool) -> None:
        with self._lock:
            if self._closed:
                return  # left as the state database has it, for the next executor
            self._queued += 1
            try:
                self._pool.submit(self._work, kind, the_id, resume)
            except RuntimeError:  # shut down meanwhile
                self._queued -= 1

    def _work(self, kind: str, the_id: object, resume: bool) -> None:
        me = threading.get_ident()
        with self._lock:
            self._queued -= 1
            self._busy[me] = (kind, the_id)
        try:
            if self._stop.is_set():
                return
            if kind == "batch":
                work.run_batch(self.store, the_id, self, self._stop)  # type: ignore[arg-type]
            else:
                work.start_job(self.store, the_id, self, resume=resume)  # type: ignore[arg-type]
        except BaseException:  # the job's own failures are recorded; this is the service failing
            log.exception("%s %s: the worker failed outside the job; it stays as the state database shows it",
                          kind, the_id)
        finally:
            with self._lock:
                self._busy.pop(me, None)

    # --- what it is doing -----------------------------------------------------------------------

    def running(self) -> list[uuid.UUID]:
        """The jobs with a unit of work running now, in this process."""
        with self._lock:
            busy = list(self._busy.values())
        starts = [the_id for kind, the_id in busy if kind == "start"]
        batches = [the_id for kind, the_id in busy if kind == "batch"]
        jobs: set[object] = set()
        with self.store.sessions() as session:
            if batches:
                jobs.update(session.scalars(select(Batch.job_id).where(Batch.id.in_(batches))).all())
            if starts:  # a start that only found its tenant at its limit leaves the job queued: not running
                jobs.update(session.scalars(select(Job.id).where(Job.id.in_(starts),
                                                                 Job.status == JobStatus.RUNNING)).all())
        return list(jobs)  # type: ignore[arg-type]

    def waiting(self) -> list[uuid.UUID]:
        """The jobs submitted and not started: no free worker, or their tenant at its limit."""
        with self.store.sessions() as session:
            return list(session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED, Job.deleted_at.is_(None))
                                        .order_by(Job.created_at, Job.id)).all())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running and no unit of work is left (True), or
        ``timeout`` seconds have passed (False)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                idle = not self._busy and not self._queued
            if idle:
                with self.store.sessions() as session:
                    idle = not session.scalar(select(func.count()).select_from(Job).where(
                        Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)),
                        Job.deleted_at.is_(None)))
            if idle:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.02)


class CeleryExecutor:
    """Jobs sent to Celery workers (``portl worker``) through the broker ``PORTL_BROKER``: each
    start and each batch is a task. The workers share the state database with the service: they
    read each job from it, write their batches' progress there, and look there for a request to
    cancel. This process sweeps for due retries and for jobs waiting for their tenant's turn."""

    kind = "celery"

    def __init__(self, store: Store, app: object | None = None, sweep_s: float = 0.2):
        from portl.service.tasks import celery_app, check_broker

        self.store = store
        self.app = app if app is not None else celery_app()
        check_broker(self.app)
        self._sweeper = Sweeper(store, self, sweep_s)
        self._sweeper.start()

    def submit(self, job_id: uuid.UUID, *, resume: bool = False) -> None:
        work.hand_over(self.store, job_id, self, resume)

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None:
        from portl.service.tasks import send_start

        send_start(self.app, job_id, resume)

    def send_batch(self, batch_id: int) -> None:
        from portl.service.tasks import send_batch

        send_batch(self.app, batch_id)

    def cancel(self, job_id: uuid.UUID) -> None:
        # A queued job is cancelled now (its task, when delivered, finds nothing to run); a running
        # one is marked, and the workers running its batches stop after the batch in flight.
        work.cancel_job(self.store, job_id)

    def close(self) -> None:
        """Let go of the broker connections; the workers carry on with the work they have."""
        self._sweeper.stop()
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
        cancelling = select(Job.id).where(Job.status == JobStatus.CANCELLING)
        session.execute(update(Batch).where(Batch.job_id.in_(cancelling), Batch.status.in_(work.ACTIVE))
                        .values(status=BatchStatus.CANCELLED, heartbeat_at=None, worker=None))
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
