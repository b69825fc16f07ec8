"""A submitted job's life, as units of work any worker can take: starting it, its batches, their
retries and the dead-letter queue, cancelling, finishing. Both executors run these same steps: the
in-process one on threads, the Celery one as tasks on ``portl worker`` processes.

A job file holds one job or several, run in order; the job row's ``stage`` says where it is (2k
while the k-th loads, 2k+1 while that one finishes). Each job of the file becomes batches:

- a job whose destination takes several writers and keeps checkpoints is begun once
  (:func:`portl.engine.spread.start_run`) and cut into partitions (``PORTL_JOB_PARTITIONS``, or
  its ``parallel.workers`` when higher), one ``part`` batch each, which any worker loads;
- any other job (SQLite, Parquet, ``transaction: job``, a whole-database copy) is one ``whole``
  batch, run by ``portl.engine.run`` as ``portl run`` would.

Units of work are two messages: *start job J* (:func:`start_job`) and *run batch B*
(:func:`run_batch`). Both are safe to deliver twice. A batch is claimed in the state database
before it runs, and the worker running it writes a heartbeat every :data:`HEARTBEAT_S`; another
delivery of a batch that is running waits for it to end or for its heartbeat to go stale. A
partition loaded again goes on from its checkpoint in the destination, so no row is committed twice.

A batch that fails is tried again under the retry policy (the job's own ``retry:``, else the
tenant's, else :data:`DEFAULT_POLICY`): ``retrying`` with ``next_retry_at``, sent again by the
sweeper (:mod:`portl.service.sweeper`), which the executor runs a few times a second. Retry delays live in the
state database, not in the broker. Out of attempts, or failing in a way the policy does not retry,
the batch is ``dead``: a dead-letter entry holds its error, and the rest of the job goes on. When
no batch of the job is left to run, the job ends: ``succeeded`` (the run finished), ``partial``
(some batches dead, others loaded: replay them after fixing the cause) or ``failed`` (nothing
loaded). The last batch to end runs the job's finish (checks, the destination's last step).

Cancelling is cooperative: ``cancelling`` stops each running batch after the engine batch in flight,
pending ones are cancelled, and once none runs the job is ``cancelled``. A job is admitted to run
only while its tenant runs fewer than ``max_running_jobs``; the others wait ``queued`` and start as
running ones end.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portl.engine.events import Event, Events
from portl.engine.outcome import Counts
from portl.errors import Interrupted, PortlError, ResumeError, ServiceError
from portl.service import workspace
from portl.service.db import WRITE_LOCK
from portl.service.models import Batch, DeadLetter, Job, Tenant, now
from portl.service.retrypolicy import DEFAULT_POLICY, Policy, policy_for
from portl.service.settings import whole_number
from portl.service.status import BatchStatus, JobStatus
from portl.service.store import Store

log = logging.getLogger("portl.service")

HEARTBEAT_S = 2.0
"""How often the worker running a batch says so."""
STALE_S = 15.0
"""A running batch whose heartbeat is older than this lost its worker: it is sent again."""
CANCEL_POLL_S = 0.25
"""How often a running batch looks whether its job is being cancelled."""
PROGRESS_INTERVAL_S = 0.5
"""The least time between two progress writes of one batch to the state database."""
PARTITIONS_VARIABLE = "PORTL_JOB_PARTITIONS"
DEFAULT_PARTITIONS = 4

ACTIVE = (BatchStatus.PENDING, BatchStatus.RUNNING, BatchStatus.RETRYING)
class Dispatch(Protocol):
    """Where units of work go: the executor's threads, or the broker."""

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None: ...

    def send_batch(self, batch_id: int) -> None: ...


def worker_name() -> str:
    """This process, as batches record who runs them: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def partitions_setting(environ: Any = None) -> int:
    return whole_number(os.environ if environ is None else environ, PARTITIONS_VARIABLE, DEFAULT_PARTITIONS,
                        "partitions", "a whole number from 1 up")


# --- the job row, locked ------------------------------------------------------------------------


@contextmanager
def _locked(store: Store, job_id: uuid.UUID) -> Iterator[tuple[Session, Job | None]]:
    """A session holding the job's row for update: its changes of state never interleave."""
    with store.sessions() as session:
        session.connection(execution_options={WRITE_LOCK: True})  # SQLite: the database's write lock
        job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
        yield session, job


def _event(store: Store, job_id: uuid.UUID, event: str, details: dict[str, Any] | None = None) -> None:
    """Tell the tenant's webhooks, when it has any (never fails the caller)."""
    try:
        from portl.service.webhooks import job_event
    except ImportError:  # webhooks not part of this build
        return
    job_event(store, job_id, event, details)


# --- starting a job -----------------------------------------------------------------------------


def start_job(store: Store, job_id: uuid.UUID, dispatch: Dispatch, *, resume: bool = False) -> None:
    """Admit a queued job (its tenant under its limit) and start its current job of the file; a
    job already running (``resume``) has what is left of it sent again."""
    with _locked(store, job_id) as (session, job):
        if job is None or job.deleted_at is not None:
            log.warning("job %s is not in the state database (or was deleted); nothing to start", job_id)
            return
        if job.status == JobStatus.CANCELLING:
            _end_cancel(session, job)
            session.commit()
            _event(store, job_id, "job.cancelled")
            return
        if job.status == JobStatus.QUEUED:
            tenant = session.scalars(select(Tenant).where(Tenant.id == job.tenant_id).with_for_update()).one()
            running = session.scalar(select(func.count()).select_from(Job).where(
                Job.tenant_id == job.tenant_id, Job.status.in_((JobStatus.RUNNING, JobStatus.CANCELLING)),
                Job.deleted_at.is_(None)))
            room = max(1, tenant.max_running_jobs) - running
            # In the order they were submitted: the oldest queued jobs of the tenant go first.
            first = session.scalars(select(Job.id).where(
                Job.tenant_id == job.tenant_id, Job.status == JobStatus.QUEUED, Job.deleted_at.is_(None))
                .order_by(Job.created_at, Job.id).limit(max(0, room))).all()
            if job_id not in first:
                job.dispatched_at = None  # started when one of the tenant's jobs ends (or by the sweeper)
                session.commit()
                return
            job.status, job.attempts, job.error, job.dispatched_at = JobStatus.RUNNING, job.attempts + 1, None, None
            job.started_at = job.started_at or now()
            job.worker, job.heartbeat_at = _me(), now()  # until its batches are made
        elif job.status != JobStatus.RUNNING or not resume:
            return
        else:
            job.attempts += 1
        # A job retried, delivered again or taken back after a restart: its pending batches go (again).
        again = session.scalars(select(Batch.id).where(Batch.job_id == job.id, Batch.stage == job.stage // 2,
                                                       Batch.status == BatchStatus.PENDING)).all()
        _sent(session, again)
        session.commit()
    for batch_id in again:
        dispatch.send_batch(batch_id)
    _advance(store, job_id, dispatch)


def _advance(store: Store, job_id: uuid.UUID, dispatch: Dispatch) -> None:
    """Move the job on: begin its current job of the file, finish it, or end the job. Called
    after every change that may let it move; does nothing while batches are still at work, or
    while another process begins or finishes one of its jobs (its ``worker``, heartbeat fresh)."""
    from portl.service.runner import Shown, job_source, tenant_of

    me = _me()
    while True:
        with _locked(store, job_id) as (session, job):
            if job is None or job.status != JobStatus.RUNNING or _held_elsewhere(job, me):
                return
            stage, finishing = divmod(job.stage, 2)
            statuses = session.execute(select(Batch.status, func.count()).where(
                Batch.job_id == job_id, Batch.stage == stage).group_by(Batch.status)).all()
            by_status = dict(statuses)
            if any(by_status.get(s) for s in ACTIVE):
                if job.worker == me:
                    job.worker = None
                    session.commit()
                return
            tenant = tenant_of(session, job.tenant_id)
            source = job_source(store, job, tenant)
            shown = Shown(store, tenant.id, job_id)
            if not by_status and not finishing:
                names = _job_names(source)
                if stage >= len(names):
                    _end(session, job, JobStatus.SUCCEEDED, None)
                    session.commit()
                    _event(store, job_id, "job.succeeded")
                    admit_next(store, job.tenant_id, dispatch)
                    return
                job.worker, job.heartbeat_at = me, now()
                session.commit()
                with _JobBeat(store, job_id, me):
                    _begin(store, job_id, tenant, source, names[stage], stage, dispatch, shown)
                continue  # its batches may all have ended already
            if by_status.get(BatchStatus.DEAD) and not finishing:
                loaded = by_status.get(BatchStatus.SUCCEEDED, 0) or job.stage > 0
                status = JobStatus.PARTIAL if loaded else JobStatus.FAILED
                error = session.scalar(select(Batch.last_error).where(
                    Batch.job_id == job_id, Batch.status == BatchStatus.DEAD).order_by(Batch.id).limit(1))
                dead = by_status[BatchStatus.DEAD]
                _end(session, job, status, f"{dead} batch{'es' if dead != 1 else ''} in the dead-letter queue: "
                     f"{error}")
                session.commit()
                _event(store, job_id, f"job.{status}")
                admit_next(store, job.tenant_id, dispatch)
                return
            if by_status.get(BatchStatus.CANCELLED) and not finishing:
                # Cancelled batches left once the ones run again have ended (a batch retried on its
                # own in a cancelled job): the job is cancelled again; retrying it runs the rest.
                _end_cancel(session, job)
                session.commit()
                _event(store, job_id, "job.cancelled")
                admit_next(store, job.tenant_id, dispatch)
                return
            # Every batch loaded: this process finishes it (or finishes what a process that died did not).
            job.stage, job.worker, job.heartbeat_at = stage * 2 + 1, me, now()
            session.commit()
        with _JobBeat(store, job_id, me):
            error = _finish_stage(store, job_id, tenant, source, stage, shown)
        with _locked(store, job_id) as (session, job):
            if job is None or job.status not in (JobStatus.RUNNING, JobStatus.CANCELLING):
                return
            if job.status == JobStatus.CANCELLING:  # cancelled while it finished: it stops here
                if error is None:
                    job.stage = (stage + 1) * 2
                _end_cancel(session, job)
                session.commit()
                _event(store, job_id, "job.cancelled")
                admit_next(store, job.tenant_id, dispatch)
                return
            if error is not None:
                _end(session, job, JobStatus.FAILED, error)
                session.commit()
                _event(store, job_id, "job.failed")
                admit_next(store, job.tenant_id, dispatch)
                return
            job.stage = (stage + 1) * 2
            session.commit()


def _me() -> str:
    """This thread of this process, as a job's ``worker`` names who begins or finishes it."""
    return f"{worker_name()}/{threading.get_ident()}"


def _held_elsewhere(job: Job, me: str) -> bool:
    """Whether another live process (or thread) is beginning or finishing the job now."""
    return job.worker not in (None, me) and not stale(job.heartbeat_at, now()) and not orphaned(job.worker)


class _JobBeat:
    """While a process begins or finishes a job: its heartbeat on the job, every :data:`HEARTBEAT_S`."""

    def __init__(self, store: Store, job_id: uuid.UUID, me: str):
        self.store, self.job_id, self.me = store, job_id, me
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"portl-job-{job_id}")

    def __enter__(self) -> _JobBeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            try:
                with self.store.sessions() as session:
                    session.execute(update(Job).where(Job.id == self.job_id, Job.worker == self.me)
                                    .values(heartbeat_at=now()))
                    session.commit()
            except Exception:  # the state database briefly unreachable: the next beat tries again
                log.warning("could not record the heartbeat of job %s", self.job_id, exc_info=True)


def _job_names(source: Any) -> list[str]:
    """The jobs of the file, in order; a version 2 flow is one, named by the flow."""
    from portl.spec.loader import file_version, job_names

    if file_version(source) == 2:
        return [_flow_name(source)]
    return job_names(source)


def _flow_name(source: Any) -> str:
    import yaml

    try:
        data = yaml.safe_load(source.text)
    except yaml.YAMLError:
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else "flow"


def _begin(store: Store, job_id: uuid.UUID, tenant: Tenant, source: Any, name: str, stage: int, dispatch: Dispatch,
           shown: Any) -> None:
    """Plan the job ``name`` of the file, make its batches and send them (or fail the job)."""
    from portl.engine import spread
    from portl.engine.run import RunOptions
    from portl.service.runner import check_allowed, plan_job
    from portl.spec.loader import file_version

    rows_total = bytes_total = None
    try:
        if file_version(source) == 2:  # a flow of steps runs as one batch
            check_allowed(store, tenant, source)
            _made(store, job_id, tenant, name, stage, [{"kind": "flow", "run_id": None, "partition": 0,
                                                        "source_range": {}}], None, None, dispatch)
            return
        plan = plan_job(store, job_id, tenant, source, name, None)
        try:
            why = spread.refusal(plan)
            estimate = getattr(plan, "estimate", None)
            rows_total, bytes_total = getattr(estimate, "rows", None), getattr(estimate, "bytes", None)
            if why is None:
                started = spread.start_run(plan, RunOptions(events=Events()),
                                           max(partitions_setting(), plan.job.job.parallel.workers))
                rows = [{"kind": "part", "run_id": started.run_id, "partition": i, "source_range": cp.to_json()}
                        for i, cp in enumerate(started.partitions)]
            else:
                rows = [{"kind": "whole", "run_id": None, "partition": 0, "source_range": {}}]
        finally:
            plan.close()
    except PortlError as exc:
        _fail_job(store, job_id, shown(str(exc)), dispatch)
        return
    except Exception as exc:  # a defect, not the job's fault
        log.exception("job %s: starting %r failed unexpectedly", job_id, name)
        _fail_job(store, job_id, shown(f"internal error ({type(exc).__name__}: {exc}); please report it"), dispatch)
        return
    _made(store, job_id, tenant, name, stage, rows, rows_total, bytes_total, dispatch)


def _made(store: Store, job_id: uuid.UUID, tenant: Tenant, name: str, stage: int, rows: list[dict[str, Any]],
          rows_total: int | None, bytes_total: int | None, dispatch: Dispatch) -> None:
    """Record the batches of the job of the file at ``stage`` and send them."""
    with _locked(store, job_id) as (session, job):
        if job is None or job.status not in (JobStatus.RUNNING, JobStatus.CANCELLING):
            return
        if session.scalar(select(func.count()).select_from(Batch).where(Batch.job_id == job_id,
                                                                          Batch.stage == stage)):
            return  # begun by another delivery of the start message meanwhile
        made = [Batch(tenant_id=tenant.id, job_id=job_id, stage=stage, job_name=name, status=BatchStatus.PENDING,
                      heartbeat_at=now(), **row) for row in rows]
        session.add_all(made)
        # Of the whole file: what its earlier jobs did, and this one's estimate when the source gives one.
        job.rows_total = None if rows_total is None else (job.rows_done or 0) + rows_total
        job.bytes_total = None if bytes_total is None else (job.bytes_done or 0) + bytes_total
        cancelled = job.status == JobStatus.CANCELLING
        if cancelled:
            for batch in made:
                batch.status = BatchStatus.CANCELLED
            _end_cancel(session, job)
        session.commit()
        ids = [b.id for b in made]
    if cancelled:
        _event(store, job_id, "job.cancelled")
        return
    for batch_id in ids:
        dispatch.send_batch(batch_id)


def _finish_stage(store: Store, job_id: uuid.UUID, tenant: Tenant, source: Any, stage: int, shown: Any) -> str | None:
    """Finish the job of the file at ``stage`` once all its batches loaded; the error, if any."""
    from portl.engine import spread
    from portl.engine.run import RunOptions
    from portl.service.runner import plan_job

    with store.sessions() as session:
        batches = session.execute(select(Batch.kind, Batch.run_id, Batch.job_name).where(
            Batch.job_id == job_id, Batch.stage == stage)).all()
    runs = {run_id for kind, run_id, _ in batches if kind == "part" and run_id}
    if not runs:
        return None  # a whole batch finished its own run
    name = batches[0].job_name
    try:
        plan = plan_job(store, job_id, tenant, source, name, None)
        try:
            for run_id in runs:
                spread.finish_run(plan, run_id, RunOptions(events=Events()))
        finally:
            plan.close()
    except PortlError as exc:
        return shown(str(exc))
    except Exception as exc:
        log.exception("job %s: finishing %r failed unexpectedly", job_id, name)
        return shown(f"internal error ({type(exc).__name__}: {exc}); please report it")
    return None


def _fail_job(store: Store, job_id: uuid.UUID, error: str, dispatch: Dispatch) -> None:
    with _locked(store, job_id) as (session, job):
        if job is None or job.status in JobStatus.FINISHED:
            return
        if job.status == JobStatus.CANCELLING:
            _end_cancel(session, job)
            event = "job.cancelled"
        else:
            _end(session, job, JobStatus.FAILED, error)
            event = "job.failed"
        tenant_id = job.tenant_id
        session.commit()
    _event(store, job_id, event)
    admit_next(store, tenant_id, dispatch)


def _end(session: Session, job: Job, status: str, error: str | None) -> None:
    job.status, job.error, job.finished_at, job.worker = status, error, now(), None
    _roll_up(session, job)


def _end_cancel(session: Session, job: Job) -> None:
    session.execute(update(Batch).where(Batch.job_id == job.id, Batch.status.in_(
        (BatchStatus.PENDING, BatchStatus.RETRYING))).values(status=BatchStatus.CANCELLED, next_retry_at=None))
    _end(session, job, JobStatus.CANCELLED, None)


def _roll_up(session: Session, job: Job) -> None:
    """The job's counts and progress: the sum of its batches'."""
    total = Counts()
    for counts in session.scalars(select(Batch.counts).where(Batch.job_id == job.id)):
        total.add(Counts.from_json(counts or {}))
    job.counts, job.rows_done, job.bytes_done = total.to_json(), total.read, total.bytes


def admit_next(store: Store, tenant_id: int, dispatch: Dispatch) -> None:
    """Start the tenant's oldest queued jobs its limit now has room for."""
    with store.sessions() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return
        running = session.scalar(select(func.count()).select_from(Job).where(
            Job.tenant_id == tenant_id, Job.status.in_((JobStatus.RUNNING, JobStatus.CANCELLING)),
            Job.deleted_at.is_(None)))
        room = max(1, tenant.max_running_jobs) - running
        if room <= 0:
            return
        waiting = session.scalars(select(Job.id).where(
            Job.tenant_id == tenant_id, Job.status == JobStatus.QUEUED, Job.deleted_at.is_(None),
            Job.dispatched_at.is_(None)).order_by(Job.created_at, Job.id).limit(room)).all()
        if not waiting:
            return
        session.execute(update(Job).where(Job.id.in_(waiting)).values(dispatched_at=now()))
        session.commit()
    for job_id in waiting:
        dispatch.send_start(job_id)


def hand_over(store: Store, job_id: uuid.UUID, dispatch: Dispatch, resume: bool = False) -> None:
    """Send a submitted job's start, recording that it was handed over (the sweeper leaves it
    alone); a ServiceError when its row is not in the state database."""
    with store.sessions() as session:
        found = session.execute(update(Job).where(Job.id == job_id).values(dispatched_at=now())).rowcount
        session.commit()
    if not found:
        raise ServiceError(f"no job {job_id} in the state database: insert its row before submitting it")
    dispatch.send_start(job_id, resume)


# --- cancelling ---------------------------------------------------------------------------------


def cancel_job(store: Store, job_id: uuid.UUID) -> None:
    """A queued job is cancelled now; a running one is ``cancelling`` until its running batches
    stop after the engine batch in flight, then ``cancelled``."""
    with _locked(store, job_id) as (session, job):
        if job is None:
            return
        if job.status == JobStatus.QUEUED:
            _end(session, job, JobStatus.CANCELLED, None)
        elif job.status == JobStatus.RUNNING:
            job.status = JobStatus.CANCELLING
            session.execute(update(Batch).where(Batch.job_id == job_id, Batch.status.in_(
                (BatchStatus.PENDING, BatchStatus.RETRYING))).values(status=BatchStatus.CANCELLED,
                                                                      next_retry_at=None))
            running = session.scalar(select(func.count()).select_from(Batch).where(
                Batch.job_id == job_id, Batch.status == BatchStatus.RUNNING))
            if not running and job.stage % 2 == 0:
                _end_cancel(session, job)
        else:
            return
        status, tenant_id = job.status, job.tenant_id
        session.commit()
    if status == JobStatus.CANCELLED:
        _event(store, job_id, "job.cancelled")


def _settle_cancel(store: Store, job_id: uuid.UUID, dispatch: Dispatch) -> None:
    """A cancelling job none of whose batches runs any more is cancelled."""
    with _locked(store, job_id) as (session, job):
        if job is None or job.status != JobStatus.CANCELLING:
            return
        running = session.scalar(select(func.count()).select_from(Batch).where(
            Batch.job_id == job_id, Batch.status == BatchStatus.RUNNING))
        if running:
            return
        _end_cancel(session, job)
        tenant_id = job.tenant_id
        session.commit()
    _event(store, job_id, "job.cancelled")
    admit_next(store, tenant_id, dispatch)


# --- one batch ----------------------------------------------------------------------------------


@dataclass
class _Claimed:
    batch_id: int
    job_id: uuid.UUID
    tenant_id: int
    stage: int
    name: str
    kind: str
    run_id: str | None
    partition: str
    attempts: int


def run_batch(store: Store, batch_id: int, dispatch: Dispatch, stop: threading.Event) -> None:
    """Run one batch: claim it, load it, record how it went, and move its job on. ``stop`` set (the
    executor closing): stop after the engine batch in flight, the batch left for the next one."""
    claimed = _claim(store, batch_id)
    if claimed is None:
        return
    cancelled = threading.Event()
    halt = threading.Event()  # this batch's own: set on cancel, or when ``stop`` is
    watch = _Watch(store, claimed, stop, halt, cancelled)
    watch.start()
    progress = _Progress(store, claimed.batch_id, claimed.job_id, claimed.tenant_id)
    try:
        rejects = _load(store, claimed, halt, progress)
    except Interrupted as exc:
        watch.close()
        progress.flush()
        _interrupted(store, claimed, cancelled.is_set(), str(exc))
        _settle_cancel(store, claimed.job_id, dispatch)
        return
    except Exception as exc:
        watch.close()
        progress.flush()
        _failed(store, claimed, exc)
    except BaseException as exc:  # the process is going (a worker's cold shutdown): not the batch's failure
        watch.close()
        progress.flush()
        _interrupted(store, claimed, False, f"its worker stopped ({type(exc).__name__})")
        raise
    else:
        watch.close()
        progress.flush()
        _succeeded(store, claimed, progress, rejects)
    _settle_cancel(store, claimed.job_id, dispatch)
    _advance(store, claimed.job_id, dispatch)


def _claim(store: Store, batch_id: int) -> _Claimed | None:
    """Take the batch to run it; None when it is not to run here: done, cancelled, waiting for
    its retry, or running elsewhere with a fresh heartbeat (a message delivered twice). A running
    batch whose heartbeat is stale, or whose process on this machine is gone, is taken over."""
    with store.sessions() as session:
        session.connection(execution_options={WRITE_LOCK: True})
        batch = session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
        if batch is None:
            log.warning("batch %s is not in the state database; nothing to run", batch_id)
            return None
        job = session.scalars(select(Job).where(Job.id == batch.job_id).with_for_update()).one()
        if job.status != JobStatus.RUNNING or job.deleted_at is not None:
            if batch.status in (BatchStatus.PENDING, BatchStatus.RETRYING):
                batch.status = BatchStatus.CANCELLED
                session.commit()
            return None
        if batch.status == BatchStatus.RUNNING:
            if not (stale(batch.heartbeat_at, now()) or orphaned(batch.worker)):
                return None
            log.info("batch %s of job %s lost its worker %s; it is taken over", batch_id, job.id, batch.worker)
        elif batch.status != BatchStatus.PENDING:
            return None
        batch.status, batch.attempts, batch.worker = BatchStatus.RUNNING, batch.attempts + 1, worker_name()
        batch.started_at, batch.heartbeat_at, batch.next_retry_at = now(), now(), None
        claimed = _Claimed(batch.id, job.id, job.tenant_id, batch.stage, batch.job_name or "", batch.kind,
                           batch.run_id, str((batch.source_range or {}).get("partition", batch.partition)),
                           batch.attempts)
        session.commit()
        return claimed


def stale(beat: Any, moment: Any) -> bool:
    return beat is None or beat < moment - timedelta(seconds=STALE_S)


def _sent(session: Session, batch_ids: list[int]) -> None:
    """Record that pending batches were just sent (their ``heartbeat_at`` while they wait): the
    sweeper sends again one whose message was lost, and only then."""
    if batch_ids:
        session.execute(update(Batch).where(Batch.id.in_(batch_ids)).values(heartbeat_at=now()))


def orphaned(worker: str | None) -> bool:
    """Whether the process named ``worker`` (``host:pid``) ran on this machine and is gone."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.split("/", 1)[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Watch:
    """While a batch runs: its heartbeat, and a look at its job's status to stop it on cancel."""

    def __init__(self, store: Store, claimed: _Claimed, stop: threading.Event, halt: threading.Event,
                 cancelled: threading.Event):
        self.store, self.claimed, self.stop, self.halt, self.cancelled = store, claimed, stop, halt, cancelled
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"portl-batch-{claimed.batch_id}")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(CANCEL_POLL_S):
            if self.stop.is_set():
                self.halt.set()
            try:
                with self.store.sessions() as session:
                    status = session.scalar(select(Job.status).where(Job.id == self.claimed.job_id))
                    if status != JobStatus.RUNNING:
                        self.cancelled.set()
                        self.halt.set()
                    if time.monotonic() - last_beat >= HEARTBEAT_S:
                        session.execute(update(Batch).where(Batch.id == self.claimed.batch_id)
                                        .values(heartbeat_at=now()))
                        session.commit()
                        last_beat = time.monotonic()
            except Exception:  # the state database briefly unreachable: look again
                log.warning("could not look at job %s", self.claimed.job_id, exc_info=True)


def _load(store: Store, claimed: _Claimed, stop: threading.Event, progress: _Progress) -> str:
    """Load the batch through the engine: its partition of a run in parts, or the whole job.
    Returns the batch's reject file."""
    from portl.engine import spread
    from portl.engine.run import RunOptions, run
    from portl.service.runner import job_source, plan_job, tenant_of

    with store.sessions() as session:
        job = session.get(Job, claimed.job_id)
        tenant = tenant_of(session, claimed.tenant_id)
        source = job_source(store, job, tenant)
    if claimed.kind == "flow":
        return _run_flow(store, claimed, tenant, source, stop, progress)
    plan = plan_job(store, claimed.job_id, tenant, source, claimed.name,
                    claimed.partition if claimed.kind == "part" else None)
    try:
        events = Events([progress])
        key, full = record_keys(plan)
        if claimed.kind == "part":
            spread.load_partition(plan, claimed.run_id or "", claimed.partition,
                                  RunOptions(events=events, stop=stop, record_key=key, record_outcomes=full))
            return plan.reject_path
        ledger = str(workspace.ledger_dir(store.settings, tenant.id))
        resume = claimed.attempts > 1

        def options(resume: bool) -> RunOptions:
            return RunOptions(state_dir=ledger, resume=resume, events=events, stop=stop, record_key=key,
                              record_outcomes=full)

        try:
            run(plan, options(resume))
        except ResumeError:
            if not resume or _ran_before(ledger, plan):
                raise
            run(plan, options(False))  # its first attempt never began
        return plan.reject_path
    finally:
        plan.close()


def _run_flow(store: Store, claimed: _Claimed, tenant: Tenant, source: Any, stop: threading.Event,
              progress: _Progress) -> str:
    """Run a flow of steps (the whole of it: its items' idempotency keys and outbox make a run
    again skip what an earlier attempt committed). Its counts are the batch's."""
    from portl.service.runner import check_allowed
    from portl.spec.flow import load_flow
    from portl.steps.runner import FlowOptions, run_flow

    check_allowed(store, tenant, source)
    loaded = load_flow(source, environ={})
    ledger = str(workspace.ledger_dir(store.settings, tenant.id))
    report = run_flow(loaded, FlowOptions(state_dir=ledger, stop=stop))
    counts = report.counts  # items of its batch steps, rows its database steps inserted and updated
    progress.counts = Counts(read=int(counts.get("items", 0)), inserted=int(counts.get("inserted", 0)),
                             updated=int(counts.get("updated", 0))).to_json()
    return ""


def record_keys(plan: Any) -> tuple[tuple[str, ...], bool]:
    """The columns naming the job's records in the record log (``service.record_key``, else its
    conflict key), and whether every record written is logged (``service: {record_log: full}``)."""
    job = getattr(getattr(plan, "job", None), "job", None)
    service = getattr(job, "service", None)
    if service is None:
        return (), False
    key = service.record_key or (job.conflict.key if job.conflict is not None else None) or []
    return tuple(key), bool(key) and service.record_log == "full"


def _ran_before(ledger: str, plan: Any) -> bool:
    from portl.state import ledger as L

    if not L.ledger_exists(ledger):
        return False
    with_ledger = L.Ledger(ledger)
    try:
        return with_ledger.latest(plan.name, plan.job.path) is not None
    finally:
        with_ledger.close()


def _interrupted(store: Store, claimed: _Claimed, cancelled: bool, message: str) -> None:
    """Stopped after a committed batch: cancelled, or left for the next executor to go on with."""
    with store.sessions() as session:
        session.execute(update(Batch).where(Batch.id == claimed.batch_id, Batch.status == BatchStatus.RUNNING)
                        .values(status=BatchStatus.CANCELLED if cancelled else BatchStatus.PENDING,
                                heartbeat_at=None, worker=None, last_error=None if cancelled else message,
                                finished_at=now() if cancelled else None))
        job = session.get(Job, claimed.job_id)
        _roll_up(session, job)
        session.commit()
    if not cancelled:
        log.info("batch %s of job %s stopped as its executor closed; it goes on when the service starts again",
                 claimed.batch_id, claimed.job_id)


def _failed(store: Store, claimed: _Claimed, exc: BaseException) -> None:
    """The batch failed: tried again later under the retry policy, or dead-lettered."""
    from portl.service.runner import Shown

    shown = Shown(store, claimed.tenant_id, claimed.job_id)
    if isinstance(exc, PortlError):
        error = shown(str(exc))
    else:
        log.error("batch %s of job %s failed unexpectedly", claimed.batch_id, claimed.job_id,
                  exc_info=(type(exc), exc, exc.__traceback__))
        error = shown(f"internal error ({type(exc).__name__}: {exc}); please report it")
    dead = False
    with store.sessions() as session:
        session.connection(execution_options={WRITE_LOCK: True})
        job = session.get(Job, claimed.job_id)
        policy = policy_for(session, claimed.tenant_id, job.job_text if job else "", claimed.name)
        batch = session.get(Batch, claimed.batch_id)
        if batch is None or batch.status != BatchStatus.RUNNING:
            return
        batch.last_error, batch.heartbeat_at, batch.worker, batch.finished_at = error, None, None, now()
        if isinstance(exc, Exception) and policy.retries(exc) and batch.attempts < policy.max_attempts:
            batch.status = BatchStatus.RETRYING
            batch.next_retry_at = now() + timedelta(seconds=policy.delay(batch.attempts))
        else:
            batch.status, dead = BatchStatus.DEAD, True
            session.add(DeadLetter(tenant_id=claimed.tenant_id, batch_id=claimed.batch_id, error=error))
        _roll_up(session, job)
        session.commit()
    if dead:
        _event(store, claimed.job_id, "batch.dead_lettered", {"batch_id": claimed.batch_id, "error": error})


def _succeeded(store: Store, claimed: _Claimed, progress: _Progress, rejects: str) -> None:
    from portl.service.runner import log_batch

    with store.sessions() as session:
        session.connection(execution_options={WRITE_LOCK: True})
        batch = session.get(Batch, claimed.batch_id)
        batch.status, batch.finished_at, batch.heartbeat_at, batch.worker = BatchStatus.SUCCEEDED, now(), None, None
        batch.last_error = None
        if progress.counts is not None:
            batch.counts = progress.counts
        log_batch(session, batch, rejects, progress.reject_keys)
        _roll_up(session, session.get(Job, claimed.job_id))
        session.commit()


class _Progress:
    """The engine's events of one batch, turned into its counts and written at most every
    :data:`PROGRESS_INTERVAL_S` (with the job's sum of them). Called from the engine's threads."""

    def __init__(self, store: Store, batch_id: int, job_id: uuid.UUID, tenant_id: int = 0):
        self.store, self.batch_id, self.job_id, self.tenant_id = store, batch_id, job_id, tenant_id
        self.counts: dict[str, Any] | None = None
        self.reject_keys: dict[int, str] = {}
        """The key of each rejected record, by record number (``records`` events)."""
        self._written: list[tuple[str, str, str]] = []
        self._last_write = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.event == "records":
            with self._lock:
                self.reject_keys.update((int(r), k) for r, k in event.details.get("rejected", []))
                where = f"partition {event.details.get('partition')}, batch {event.batch}"
                self._written += [(key, event.details["outcome"], where) for key in event.details.get("written", [])]
            return
        if event.event != "batch_committed" or event.details.get("totals") is None:
            return
        with self._lock:
            self.counts = dict(event.details["totals"])
            due = time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._last_write = self.counts, time.monotonic()
            written, self._written = self._written, []
        if counts is None:
            return
        try:
            with self.store.sessions() as session:
                if written:  # committed already: logged once, whatever happens to the batch later
                    from portl.service.runner import log_written

                    log_written(session, self.tenant_id, self.job_id, self.batch_id, written)
                session.execute(update(Batch).where(Batch.id == self.batch_id).values(counts=counts))
                job = session.get(Job, self.job_id)
                _roll_up(session, job)
                session.commit()
        except Exception:  # progress is a courtesy: a failed write must not stop the batch
            log.warning("could not record the progress of batch %s", self.batch_id, exc_info=True)


# --- what a tenant may ask again ----------------------------------------------------------------


def retry_job(store: Store, job_id: uuid.UUID, dispatch: Dispatch) -> bool:
    """Run again what did not succeed of a failed, partial or cancelled job: False when it is not one."""
    with _locked(store, job_id) as (session, job):
        if job is None or job.status not in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PARTIAL):
            return False
        again = session.scalars(select(Batch.id).where(
            Batch.job_id == job_id, Batch.stage == job.stage // 2,
            Batch.status.in_((BatchStatus.CANCELLED, BatchStatus.DEAD, BatchStatus.RETRYING)))).all()
        if again:
            session.execute(update(Batch).where(Batch.id.in_(again)).values(status=BatchStatus.PENDING,
                                                                           next_retry_at=None, heartbeat_at=now()))
            session.execute(update(DeadLetter).where(DeadLetter.batch_id.in_(again),
                                                     DeadLetter.replayed_at.is_(None)).values(replayed_at=now()))
        job.status, job.finished_at, job.error, job.dispatched_at = JobStatus.QUEUED, None, None, now()
        session.commit()
    dispatch.send_start(job_id, resume=True)
    return True


def retry_batch(store: Store, batch_id: int, dispatch: Dispatch, tenant_id: int) -> str | None:
    """Run one dead, cancelled or failed batch again; None when done, else why it cannot be."""
    with store.sessions() as session:
        session.connection(execution_options={WRITE_LOCK: True})
        batch = session.scalars(select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id)
                                .with_for_update()).first()
        if batch is None:
            return "not_found"
        job = session.scalars(select(Job).where(Job.id == batch.job_id).with_for_update()).one()
        if batch.status not in (BatchStatus.DEAD, BatchStatus.CANCELLED, BatchStatus.RETRYING):
            return f"batch {batch_id} is {batch.status}: only a dead, cancelled or retrying batch can be retried"
        if batch.stage != job.stage // 2:
            return f"batch {batch_id} belongs to an earlier job of the file, which finished"
        if job.status in (JobStatus.CANCELLING,):
            return f"job {job.id} is cancelling: retry the batch once it is cancelled"
        batch.status, batch.next_retry_at, batch.heartbeat_at = BatchStatus.PENDING, None, now()
        session.execute(update(DeadLetter).where(DeadLetter.batch_id == batch_id, DeadLetter.replayed_at.is_(None))
                        .values(replayed_at=now()))
        if job.status != JobStatus.RUNNING:
            job.status, job.finished_at, job.error = JobStatus.RUNNING, None, None
            job.attempts += 1
        session.commit()
    dispatch.send_batch(batch_id)
    return None
