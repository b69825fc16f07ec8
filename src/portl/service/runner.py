"""Running one submitted job through the engine, with what the service adds: the tenant's
folder as the base of relative paths, its allowances checked again before each plan, its own
reject files, and the record log made from them.

:func:`run_job` runs a whole job in the calling thread: its start and each of its batches in turn
(:mod:`portl.service.work`), waiting for batches' retries when they are due. The executors run the
same steps as separate units of work instead. The helpers here are what those steps share:
:func:`plan_job` (the job of the file, planned as ``portl run`` would, refused what the tenant may
not do), :func:`log_batch` (a batch's record-log entries) and :class:`Shown` (a message as the
tenant may see it).

A job's ``${env:NAME}`` is never filled from the service's environment. A version 2 flow of steps
runs as one batch, through the same steps engine as ``portl run``.
"""

from __future__ import annotations

import csv
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from portl.errors import ConfigError
from portl.secrets import mask_url
from portl.service import workspace
from portl.service.models import Batch, Job, RecordLogEntry, Tenant, now
from portl.service.status import BatchStatus, Outcome
from portl.service.store import Store

RECORD_LOG_CHUNK = 1000
"""Rejected rows inserted into the record log per statement."""
SHOWN_JOB_FILE = "job.yaml"


def run_job(store: Store, job_id: uuid.UUID, cancel: threading.Event, *, resume: bool = False) -> None:
    """Run the job ``job_id`` here, to its end, and record how it went. ``cancel`` set: stop after
    the engine batch in flight (a job being cancelled ends ``cancelled``; any other stays
    ``running``, for an executor to go on with). ``resume``: go on with a job left running."""
    from portl.service import work
    from portl.service.sweeper import sweep

    inline = _Inline(job_id)
    work.start_job(store, job_id, inline, resume=resume)
    while not cancel.is_set():
        while inline.work and not cancel.is_set():
            kind, the_id, again = inline.work.popleft()
            if kind == "batch":
                work.run_batch(store, the_id, inline, cancel)
            else:
                work.start_job(store, the_id, inline, resume=again)
        due = _next_retry(store, job_id)
        if due is None:
            return
        time.sleep(max(0.0, min(1.0, (due - now()).total_seconds())))
        sweep(store, inline)


class _Inline:
    """Units of work of one job, kept to run in this thread (other jobs' are left to executors)."""

    def __init__(self, job_id: uuid.UUID):
        self.job_id = job_id
        self.work: deque[tuple[str, Any, bool]] = deque()

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None:
        if job_id == self.job_id:
            self.work.append(("start", job_id, resume))

    def send_batch(self, batch_id: int) -> None:
        self.work.append(("batch", batch_id, False))


def _next_retry(store: Store, job_id: uuid.UUID) -> Any:
    with store.sessions() as session:
        return session.scalar(select(func.min(Batch.next_retry_at)).where(
            Batch.job_id == job_id, Batch.status == BatchStatus.RETRYING))


# --- what the units of work share ---------------------------------------------------------------


def tenant_of(session: Session, tenant_id: int) -> Tenant:
    """The tenant, detached from the session (readable after it closes)."""
    tenant = session.get(Tenant, tenant_id)
    session.expunge(tenant)
    return tenant


def job_source(store: Store, job: Job, tenant: Tenant) -> Any:
    """The job's text as the loader reads it: a file of its own in the tenant's folder (the ledger
    tells a job's runs from another's by that name)."""
    from portl.spec.loader import JobText

    files = workspace.files_dir(store.settings, tenant.id)
    return JobText(str(files / f"job-{job.id}.yaml"), job.job_text)


def check_allowed(store: Store, tenant: Tenant, source: Any) -> None:
    """Refuse the job when it does what the tenant may not (its allowances are read again at each
    run: what was allowed when it was submitted may have been withdrawn since)."""
    from portl.service.policy import job_problems

    problems = job_problems(source.text, tenant, str(workspace.files_dir(store.settings, tenant.id)))
    if problems:
        raise ConfigError(problems=problems)


def plan_job(store: Store, job_id: uuid.UUID, tenant: Tenant, source: Any, name: str | None, part: str | None) -> Any:
    """Plan the job ``name`` of the file, after checking it against the tenant's allowances. Its
    reject file: the one it names, else one in the service's folder for the job; ``part`` (a
    partition loaded on its own) gets a file of its own beside it."""
    from portl.engine.plan import plan as make_plan
    from portl.spec.loader import load_job

    check_allowed(store, tenant, source)
    loaded = load_job(source, name, environ={})
    path = loaded.job.rejects.path or str(workspace.rejects_dir(store.settings, tenant.id, job_id)
                                          / f"{loaded.name}.rejects.csv")
    if part is not None:
        stem, suffix = os.path.splitext(path)
        path = f"{stem}.part-{part}{suffix or '.csv'}"
    if path != loaded.job.rejects.path:
        loaded = replace(loaded, job=loaded.job.model_copy(
            update={"rejects": loaded.job.rejects.model_copy(update={"path": path})}))
    return make_plan(loaded, preview_rows=0)


def log_batch(session: Session, batch: Batch, rejects: str, reject_keys: dict[int, str] | None = None) -> None:
    """The batch's record-log entries, made again from what it did: one ``loaded`` entry for its
    range with its counts, and one ``rejected`` entry per row of its reject file (a batch tried
    again keeps the rejects of earlier attempts in its file, each once), with the record's key
    when the job names one (``reject_keys``, by record number; earlier attempts' entries keep theirs).
    Entries of single records written (``record_log: full``) were logged as they committed, and stay."""
    mine = (RecordLogEntry.batch_id == batch.id) & (
        (RecordLogEntry.outcome == Outcome.REJECTED)
        | ((RecordLogEntry.outcome == Outcome.LOADED) & RecordLogEntry.record_key.is_(None)))
    known = dict(session.execute(select(RecordLogEntry.source_location, RecordLogEntry.record_key).where(
        mine, RecordLogEntry.outcome == Outcome.REJECTED, RecordLogEntry.record_key.is_not(None))).all())
    session.execute(delete(RecordLogEntry).where(mine))
    counts = batch.counts or {}
    session.execute(insert(RecordLogEntry), [{
        "tenant_id": batch.tenant_id, "job_id": batch.job_id, "batch_id": batch.id, "outcome": Outcome.LOADED,
        "source_location": _batch_range(batch), "retry_count": max(0, batch.attempts - 1),
        "value": ", ".join(f"{k} {counts.get(k, 0):,}" for k in ("read", "inserted", "updated", "rejected")),
        "created_at": now(), "updated_at": now()}])
    if not rejects or not os.path.exists(rejects):
        return
    reject_keys = reject_keys or {}
    chunk: list[dict[str, Any]] = []
    for record, row in _reject_rows(rejects):
        key = reject_keys.get(record) if record is not None else None
        chunk.append({"tenant_id": batch.tenant_id, "job_id": batch.job_id, "batch_id": batch.id,
                      "outcome": Outcome.REJECTED, "retry_count": max(0, batch.attempts - 1), **row,
                      "record_key": key if key is not None else known.get(row["source_location"]),
                      "created_at": now(), "updated_at": now()})
        if len(chunk) >= RECORD_LOG_CHUNK:
            session.execute(insert(RecordLogEntry), chunk)
            chunk = []
    if chunk:
        session.execute(insert(RecordLogEntry), chunk)


def log_written(session: Session, tenant_id: int, job_id: uuid.UUID, batch_id: int,
                written: list[tuple[str, str, str]]) -> None:
    """Entries of single records written and committed: (key, outcome, where)."""
    for start in range(0, len(written), RECORD_LOG_CHUNK):
        session.execute(insert(RecordLogEntry), [
            {"tenant_id": tenant_id, "job_id": job_id, "batch_id": batch_id, "outcome": outcome, "record_key": key,
             "source_location": where, "created_at": now(), "updated_at": now()}
            for key, outcome, where in written[start:start + RECORD_LOG_CHUNK]])


def _batch_range(batch: Batch) -> str:
    """Which part of the source a batch read, in words."""
    name = f"job {batch.job_name}" if batch.job_name else "the job"
    if batch.kind != "part":
        return f"{name}: the whole source"
    position = (batch.source_range or {}).get("position") or {}
    where = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in sorted(position.items()))
    return f"{name}, partition {batch.partition}" + (f" (from {where})" if where else "")


def _reject_rows(path: str) -> Any:
    """(record number or None, the entry's fields) for each row of a reject file."""
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            record = row.get("record") or ""
            yield (int(record) if record.isdigit() else None,
                   {"source_location": _location(row), "column_name": row.get("column") or None,
                    "value": mask_url(row["value"]) if row.get("value") else None,
                    "error": mask_url(row.get("error") or "")})


def _location(row: dict[str, str]) -> str:
    parts = [row.get("source") or ""]
    if row.get("line"):
        parts.append(f"line {row['line']}")
    if row.get("record"):
        parts.append(f"record {row['record']}")
    return ", ".join(p for p in parts if p)


class Shown:
    """A message as the tenant sees it: passwords masked, the service's folders left out."""

    def __init__(self, store: Store, tenant_id: int, job_id: uuid.UUID):
        files = workspace.files_dir(store.settings, tenant_id)
        tenant_root = workspace.tenant_dir(store.settings, tenant_id)
        self._replacements = [(str(files / f"job-{job_id}.yaml"), SHOWN_JOB_FILE), (str(files) + os.sep, ""),
                              (str(tenant_root) + os.sep, "")]

    def __call__(self, message: str) -> str:
        for old, new in self._replacements:
            message = message.replace(old, new)
        return mask_url(message)
