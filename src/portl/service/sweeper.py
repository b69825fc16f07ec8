"""The sweeper: what sends work again when nothing else would. A few times a second it sends the
batches whose retry time has come, the batches whose worker died, the pending batches and queued
jobs whose message was lost (a broker restarted without its queues), and the jobs that nothing
moves on (the process beginning or finishing one died). Every send is claimed in the state
database first, so several sweepers (one per ``portl serve``) never send one thing twice."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from portl.service.models import Batch, Job, now
from portl.service.settings import whole_number
from portl.service.status import BatchStatus, JobStatus
from portl.service.store import Store
from portl.service.work import ACTIVE, Dispatch, admit_next, orphaned, stale

log = logging.getLogger("portl.service")

RESEND_VARIABLE = "PORTL_RESEND_AFTER"
REDISPATCH_S = 60
"""Seconds after which a queued job handed to the executor, or a pending batch sent to it, and
not taken since, is sent again (``PORTL_RESEND_AFTER``): its message was lost."""


def resend_after(environ: Any = None) -> int:
    return whole_number(os.environ if environ is None else environ, RESEND_VARIABLE, REDISPATCH_S, "seconds",
                        "a whole number of seconds, above how long work may wait in the broker's queue")


def sweep(store: Store, dispatch: Dispatch, resend_s: float = REDISPATCH_S) -> int:
    """Send again what is due: batches whose retry time has come, running batches whose worker
    died, pending batches whose message was lost (sent ``resend_s`` ago and still not
    taken: a broker restarted without keeping its queues), and queued jobs whose tenant has room.
    Returns how many batches it sent."""
    moment = now()
    with store.sessions() as session:
        due = session.scalars(select(Batch.id).where(Batch.status == BatchStatus.RETRYING,
                                                     Batch.next_retry_at <= moment)).all()
        running = session.execute(select(Batch.id, Batch.worker, Batch.heartbeat_at).where(
            Batch.status == BatchStatus.RUNNING)).all()
        lost = session.scalars(select(Batch.id).join(Job, Job.id == Batch.job_id).where(
            Batch.status == BatchStatus.PENDING, Job.status == JobStatus.RUNNING,
            (Batch.heartbeat_at.is_(None)) | (Batch.heartbeat_at < moment - timedelta(seconds=resend_s)))).all()
    send: list[int] = []
    with store.sessions() as session:
        for batch_id in due:
            if session.execute(update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.RETRYING)
                               .values(status=BatchStatus.PENDING, heartbeat_at=now())).rowcount:
                send.append(batch_id)
        for batch_id in lost:
            if session.execute(update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.PENDING)
                               .values(heartbeat_at=now())).rowcount:
                send.append(batch_id)
        session.commit()
    # A running batch whose worker died is sent, not reset: the delivery takes it over only while
    # its heartbeat is still stale, so a worker that was only slow keeps it.
    send += [b for b, worker, beat in running if stale(beat, moment) or orphaned(worker)]
    for batch_id in send:
        dispatch.send_batch(batch_id)
    sent_jobs = _stuck_jobs(store, moment)
    for job_id in sent_jobs:
        dispatch.send_start(job_id, resume=True)
    with store.sessions() as session:
        tenants = session.scalars(select(Job.tenant_id).where(
            Job.status == JobStatus.QUEUED, Job.deleted_at.is_(None),
            (Job.dispatched_at.is_(None)) | (Job.dispatched_at < moment - timedelta(seconds=resend_s)))
            .distinct()).all()
    for tenant_id in tenants:
        with store.sessions() as session:  # a hand-over that was lost is done again
            session.execute(update(Job).where(Job.tenant_id == tenant_id, Job.status == JobStatus.QUEUED,
                                              Job.dispatched_at < moment - timedelta(seconds=resend_s))
                            .values(dispatched_at=None))
            session.commit()
        admit_next(store, tenant_id, dispatch)
    return len(send)


def _stuck_jobs(store: Store, moment: Any) -> list[uuid.UUID]:
    """Running (or cancelling) jobs that nothing moves on: no batch of theirs is at work, and the
    process that was beginning or finishing one of their jobs of the file died (or none was, and
    their last sign of life is old: a process died between a batch's end and the job's next step).
    Each is claimed (its heartbeat renewed) so that one sweep sends it."""
    active = select(Batch.id).where(Batch.job_id == Job.id, Batch.status.in_(ACTIVE)).exists()
    with store.sessions() as session:
        candidates = session.execute(select(Job.id, Job.worker, Job.heartbeat_at).where(
            Job.status.in_((JobStatus.RUNNING, JobStatus.CANCELLING)), Job.deleted_at.is_(None), ~active)).all()
        stuck = [(job_id, beat) for job_id, worker, beat in candidates
                 if stale(beat, moment) or (worker is not None and orphaned(worker))]
        claimed = []
        for job_id, beat in stuck:
            if session.execute(update(Job).where(Job.id == job_id, Job.heartbeat_at.is_(beat) if beat is None
                                                 else Job.heartbeat_at == beat)
                               .values(heartbeat_at=now(), worker=None)).rowcount:
                claimed.append(job_id)
        session.commit()
    for job_id in claimed:
        log.info("job %s was left with nothing moving it on; it is taken up again", job_id)
    return claimed


class Sweeper:
    """:func:`sweep` on a thread, every ``interval_s``, until :meth:`stop`."""

    def __init__(self, store: Store, dispatch: Dispatch, interval_s: float = 0.2):
        self.store, self.dispatch, self.interval_s = store, dispatch, interval_s
        self.resend_s = resend_after()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="portl-sweeper")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                sweep(self.store, self.dispatch, self.resend_s)
            except Exception:  # the state database or the broker briefly away: the next sweep tries again
                log.warning("the sweep for due retries failed; trying again", exc_info=True)
