"""Running one submitted job: :func:`run_job` takes a job row from ``queued`` to ``succeeded``,
``failed`` or ``cancelled``, through the same engine as ``portl run --all``.

The job's text is checked again against the tenant's allowances (:func:`portl.service.policy.job_problems`:
what was allowed when it was submitted may have been withdrawn since), then each job of the file
is loaded, planned and run in order, with the tenant's ``files/`` folder as the base of relative
paths and its ``ledger/`` as the run ledger. A job's ``${env:NAME}`` is never filled from the
service's environment. Version 2 flows are refused in this version of the service.

Progress comes from the engine's events: counts, rows and bytes are written to the job row at
most :data:`PROGRESS_INTERVAL_S` apart, not for every batch. After each run, the rows of its
reject file go to the record log. The engine's own checkpoints, in the destination, are the
record of which batches committed: no ``batches`` row is written per engine batch.

The stop flag means two things, told apart by the job's status: a job the user cancelled is
``cancelling`` (:meth:`Executor.cancel` says so before it sets the flag) and ends ``cancelled``; a
job still ``running`` was stopped because its executor closed, and stays ``running`` so that the
next executor resumes it (``resume=True``), exactly once thanks to the destination checkpoints.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from portl.engine.events import Event, Events
from portl.engine.outcome import Counts
from portl.errors import ConfigError, Interrupted, PortlError, ResumeError
from portl.secrets import mask_url
from portl.service import workspace
from portl.service.db import WRITE_LOCK
from portl.service.models import Job, RecordLogEntry, Tenant, now
from portl.service.status import JobStatus, Outcome
from portl.service.store import Store

log = logging.getLogger("portl.service")

PROGRESS_INTERVAL_S = 0.5
"""The least time between two progress writes of one job to the state database."""
RECORD_LOG_CHUNK = 1000
"""Rejected rows inserted into the record log per statement."""
SHOWN_JOB_FILE = "job.yaml"


def run_job(store: Store, job_id: uuid.UUID, cancel: threading.Event, *, resume: bool = False) -> None:
    """Run the job ``job_id`` and record how it went. ``cancel`` set: stop after the batch in
    flight. ``resume``: continue the job's unfinished run (a job a stopped process left running).
    Never raises for a failure of the job itself: that is recorded as its status and error."""
    started = _start(store, job_id, resume)
    if started is None:
        return
    job_text, tenant = started
    files = workspace.files_dir(store.settings, tenant.id)
    shown = _Shown(files, job_id, workspace.tenant_dir(store.settings, tenant.id))
    progress = _Progress(store, job_id)
    try:
        _run_file(store, job_id, job_text, tenant, files, cancel, resume, progress)
    except Interrupted as exc:
        progress.flush()
        if _status(store, job_id) == JobStatus.CANCELLING:
            _finish(store, job_id, JobStatus.CANCELLED, progress, None)
        elif cancel.is_set():  # the executor closed: left running for the next one to resume
            log.info("job %s stopped as its executor closed; it resumes when the service starts again", job_id)
        else:  # stopped by nothing the service asked for
            _finish(store, job_id, JobStatus.FAILED, progress, shown(str(exc)))
        return
    except PortlError as exc:
        _finish(store, job_id, JobStatus.FAILED, progress, shown(str(exc)))
        return
    except Exception as exc:  # a defect, not the job's fault: recorded all the same, with its traceback logged
        log.exception("job %s failed unexpectedly", job_id)
        _finish(store, job_id, JobStatus.FAILED, progress,
                shown(f"internal error ({type(exc).__name__}: {exc}); please report it"))
        return
    _finish(store, job_id, JobStatus.SUCCEEDED, progress, None)


# --- one attempt --------------------------------------------------------------------------------


def _run_file(store: Store, job_id: uuid.UUID, job_text: str, tenant: Tenant, files: Path, cancel: threading.Event,
              resume: bool, progress: _Progress) -> None:
    from portl.engine.plan import plan as make_plan
    from portl.engine.run import RunOptions, run
    from portl.service.policy import job_problems
    from portl.spec.loader import JobText, file_version, job_names, load_job

    problems = job_problems(job_text, tenant, str(files))
    if problems:
        raise ConfigError(problems=problems)
    # Each job has its own file name: the ledger tells a job's runs from another's by it.
    source = JobText(str(files / f"job-{job_id}.yaml"), job_text)
    if file_version(source) == 2:
        raise ConfigError("this job is a version 2 flow of steps; the service runs migration jobs (version 1) only "
                          "in this version: run the flow with `portl run` instead")
    ledger = str(workspace.ledger_dir(store.settings, tenant.id))
    rejects = workspace.rejects_dir(store.settings, tenant.id, job_id)
    reject_files: list[tuple[str, str]] = []
    try:
        for name in job_names(source):
            if cancel.is_set():  # between two jobs of the file
                raise Interrupted(f"stopped before the job {name!r}")
            loaded = load_job(source, name, environ={})
            if not loaded.job.rejects.path:
                own = str(rejects / f"{loaded.name}.rejects.csv")
                loaded = replace(loaded, job=loaded.job.model_copy(
                    update={"rejects": loaded.job.rejects.model_copy(update={"path": own})}))
            the_plan = make_plan(loaded, preview_rows=0)
            try:
                reject_files.append((loaded.name, getattr(the_plan, "reject_path", "")))
                progress.planned(getattr(the_plan, "estimate", None))
                options = RunOptions(state_dir=ledger, resume=resume, events=Events([progress]), stop=cancel)
                try:
                    report = run(the_plan, options)
                except ResumeError:
                    if not resume or _ran_before(ledger, loaded):
                        raise
                    # A job of the file that had not started when its process stopped: it starts now.
                    options = RunOptions(state_dir=ledger, events=Events([progress]), stop=cancel)
                    report = run(the_plan, options)
            finally:
                the_plan.close()
            progress.job_done(report.counts)
    finally:
        _log_rejects(store, job_id, tenant.id, reject_files)


def _ran_before(ledger: str, loaded: Any) -> bool:
    from portl.state import ledger as L

    if not L.ledger_exists(ledger):
        return False
    with_ledger = L.Ledger(ledger)
    try:
        return with_ledger.latest(loaded.name, loaded.path) is not None
    finally:
        with_ledger.close()


# --- the job row --------------------------------------------------------------------------------


def _start(store: Store, job_id: uuid.UUID, resume: bool) -> tuple[str, Tenant] | None:
    """Mark the job running (one more attempt); None when it is not to run (cancelled meanwhile)."""
    with store.sessions() as session:
        # Read, then written: on SQLite the write lock is taken first, or a concurrent writer
        # would make the update fail at once ("database is locked") rather than wait.
        session.connection(execution_options={WRITE_LOCK: True})
        job = session.get(Job, job_id)
        if job is None or job.deleted_at is not None:
            log.warning("job %s is not in the state database (or was deleted); nothing to run", job_id)
            return None
        if job.status == JobStatus.CANCELLING:
            job.status, job.finished_at = JobStatus.CANCELLED, now()
            session.commit()
            return None
        runnable = (JobStatus.QUEUED, JobStatus.RUNNING) if resume else (JobStatus.QUEUED,)
        if job.status not in runnable:
            return None
        changed = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(runnable))
            .values(status=JobStatus.RUNNING, started_at=job.started_at if resume and job.started_at else now(),
                    attempts=Job.attempts + 1, error=None)).rowcount
        session.commit()
        if not changed:  # cancelled between the read and the update
            return None
        tenant = session.get(Tenant, job.tenant_id)
        session.expunge(tenant)
        return job.job_text, tenant


def _status(store: Store, job_id: uuid.UUID) -> str | None:
    with store.sessions() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id))


def _finish(store: Store, job_id: uuid.UUID, status: str, progress: _Progress, error: str | None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now(), "error": error, **progress.values()}
    with store.sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.commit()


@dataclass
class _Progress:
    """The engine's events of a job's runs, turned into its counts and written at most every
    :data:`PROGRESS_INTERVAL_S`. Called from the engine's worker threads."""

    store: Store
    job_id: uuid.UUID
    done: Counts = field(default_factory=Counts)
    """What the earlier jobs of the file did."""
    current: Counts = field(default_factory=Counts)
    rows_total: int | None = None
    bytes_total: int | None = None
    _last_write: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def planned(self, estimate: Any) -> None:
        rows, size = getattr(estimate, "rows", None), getattr(estimate, "bytes", None)
        with self._lock:
            self.rows_total = None if rows is None else self.done.read + rows
            self.bytes_total = None if size is None else self.done.bytes + size
        self.flush()

    def job_done(self, counts: Counts) -> None:
        with self._lock:
            self.done.add(counts)
            self.current = Counts()

    def __call__(self, event: Event) -> None:
        if event.event != "batch_committed":
            return
        totals = event.details.get("totals")
        if totals is None:
            return
        with self._lock:
            self.current = Counts.from_json(totals)
            due = time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S
        if due:
            self.flush()

    def values(self) -> dict[str, Any]:
        with self._lock:
            total = Counts()
            total.add(self.done)
            total.add(self.current)
            counts = total.to_json()
            return {"counts": counts, "rows_done": total.read, "bytes_done": total.bytes,
                    "rows_total": self.rows_total, "bytes_total": self.bytes_total}

    def flush(self) -> None:
        values = self.values()
        with self._lock:
            self._last_write = time.monotonic()
        try:
            with self.store.sessions() as session:
                session.execute(update(Job).where(Job.id == self.job_id).values(**values))
                session.commit()
        except Exception:  # progress is a courtesy: a failed write must not stop the job
            log.warning("could not record the progress of job %s", self.job_id, exc_info=True)


# --- rejected records ---------------------------------------------------------------------------


def _log_rejects(store: Store, job_id: uuid.UUID, tenant_id: int, reject_files: list[tuple[str, str]]) -> None:
    """The record log's rejected entries of the job, made again from its reject files (a resumed
    run's file holds the rejects of its earlier attempts too, each once)."""
    with store.sessions() as session:
        session.execute(delete(RecordLogEntry).where(RecordLogEntry.job_id == job_id,
                                                     RecordLogEntry.outcome == Outcome.REJECTED))
        for _, path in reject_files:
            if not path or not os.path.exists(path):
                continue
            chunk: list[dict[str, Any]] = []
            for row in _reject_rows(path):
                chunk.append({"tenant_id": tenant_id, "job_id": job_id, "outcome": Outcome.REJECTED, **row,
                              "created_at": now(), "updated_at": now()})
                if len(chunk) >= RECORD_LOG_CHUNK:
                    session.execute(insert(RecordLogEntry), chunk)
                    chunk = []
            if chunk:
                session.execute(insert(RecordLogEntry), chunk)
        session.commit()


def _reject_rows(path: str) -> Any:
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {"source_location": _location(row), "column_name": row.get("column") or None,
                   "value": mask_url(row["value"]) if row.get("value") else None,
                   "error": mask_url(row.get("error") or "")}


def _location(row: dict[str, str]) -> str:
    parts = [row.get("source") or ""]
    if row.get("line"):
        parts.append(f"line {row['line']}")
    if row.get("record"):
        parts.append(f"record {row['record']}")
    return ", ".join(p for p in parts if p)


class _Shown:
    """A message as the tenant sees it: passwords masked, the service's folders left out."""

    def __init__(self, files: Path, job_id: uuid.UUID, tenant_root: Path):
        self._replacements = [(str(files / f"job-{job_id}.yaml"), SHOWN_JOB_FILE), (str(files) + os.sep, ""),
                              (str(tenant_root) + os.sep, "")]

    def __call__(self, message: str) -> str:
        for old, new in self._replacements:
            message = message.replace(old, new)
        return mask_url(message)
