"""Helpers for tests of jobs run by the service: a state database, tenants, job rows, and waiting
for a job to reach a status (polling with a deadline)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from sqlalchemy import select, update

from portl.service import workspace
from portl.service.models import Batch, Job, RecordLogEntry, Tenant
from portl.service.settings import ServiceSettings, normalise_url
from portl.service.status import JobStatus, Outcome
from portl.service.store import Store, open_store

SLOW_HOOK = '''
import time


def pause(payload):
    time.sleep(0.02)
'''


def sqlite_store(tmp_path: Path) -> Store:
    home = tmp_path / "home"
    return open_store(ServiceSettings(home, f"sqlite:///{home / 'service.db'}"))


def postgres_store(tmp_path: Path, pg_url: str) -> Store:
    return open_store(ServiceSettings(tmp_path / "home", normalise_url(pg_url)))


def add_tenant(store: Store, name: str, *, max_running_jobs: int = 4, code_hooks: bool = False,
               private_network: bool = False) -> int:
    """A tenant, its limit and allowances set; returns its id."""
    store.tenants.create(name)
    with store.sessions() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one()
        tenant.max_running_jobs = max_running_jobs
        tenant.allow_code_hooks = code_hooks
        tenant.allow_private_network = private_network
        session.commit()
        return tenant.id


def files(store: Store, tenant_id: int) -> Path:
    return workspace.files_dir(store.settings, tenant_id)


def write_people(folder: Path, rows: int, *, bad_every: int = 0, name: str = "people.csv") -> Path:
    """A CSV of ``rows`` people (id, name, age); every ``bad_every``-th age is not a number."""
    lines = ["id,name,age"]
    for i in range(1, rows + 1):
        age = "old" if bad_every and i % bad_every == 0 else str(20 + i % 50)
        lines.append(f"{i},person {i},{age}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def people_job(*, name: str = "people", csv: str = "people.csv", db: str = "out.db", batch: int = 25_000,
               slow: bool = False, extra: str = "", pg_url: str | None = None, mode: str = "append",
               table: str = "people", hook: str = "slowhook:pause") -> str:
    """A CSV -> SQLite job text loading people into ``table`` (into PostgreSQL at ``pg_url`` when
    given); ``slow``: each batch held by the python hook ``hook``."""
    destination = (f'{{type: postgres, url: "{pg_url}", table: {table}}}' if pg_url
                   else f"{{type: sqlite, path: {db}, table: {table}}}")
    text = f"""\
name: {name}
source: {{type: csv, path: {csv}}}
destination: {destination}
mode: {mode}
mapping:
  columns:
    id: {{type: bigint, required: true}}
    name: {{type: text}}
    age: {{type: int}}
batch: {{size: {batch}}}
"""
    if slow:
        text += f"hooks:\n  before_batch: {{type: python, function: '{hook}'}}\n"
    return text + extra


def write_slow_hook(folder: Path) -> None:
    (folder / "slowhook.py").write_text(SLOW_HOOK, encoding="utf-8")


def add_job(store: Store, tenant_id: int, text: str, *, name: str | None = None) -> uuid.UUID:
    with store.sessions() as session:
        job = Job(tenant_id=tenant_id, name=name, job_text=text, status=JobStatus.QUEUED, labels={}, counts={})
        session.add(job)
        session.commit()
        return job.id


def job(store: Store, job_id: uuid.UUID) -> Job:
    with store.sessions() as session:
        return session.get(Job, job_id)


def wait_for(store: Store, job_id: uuid.UUID, statuses: tuple[str, ...] = JobStatus.FINISHED, timeout: float = 30) -> Job:
    """The job once its status is one of ``statuses``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        row = job(store, job_id)
        if row.status in statuses:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is still {row.status!r} after {timeout}s (waited for {statuses})")
        time.sleep(0.01)


def wait_rows_done(store: Store, job_id: uuid.UUID, rows: int, timeout: float = 30) -> Job:
    """The job once it has recorded at least ``rows`` rows done."""
    deadline = time.monotonic() + timeout
    while True:
        row = job(store, job_id)
        if row.rows_done >= rows:
            return row
        if row.status in JobStatus.FINISHED or time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {row.status!r} with {row.rows_done} rows done; waited for {rows}")
        time.sleep(0.01)


def rejected(store: Store, job_id: uuid.UUID) -> list[RecordLogEntry]:
    """The job's rejected records in the record log, in the order they were written."""
    return log_entries(store, job_id, Outcome.REJECTED)


def batches(store: Store, job_id: uuid.UUID) -> list[Batch]:
    """The job's batches, in the order of the jobs of its file and their partitions."""
    with store.sessions() as session:
        return list(session.scalars(select(Batch).where(Batch.job_id == job_id)
                                    .order_by(Batch.stage, Batch.partition, Batch.id)))


def log_entries(store: Store, job_id: uuid.UUID, outcome: str | None = None) -> list[RecordLogEntry]:
    with store.sessions() as session:
        query = select(RecordLogEntry).where(RecordLogEntry.job_id == job_id)
        if outcome is not None:
            query = query.where(RecordLogEntry.outcome == outcome)
        return list(session.scalars(query.order_by(RecordLogEntry.id)))


def set_status(store: Store, job_id: uuid.UUID, status: str) -> None:
    with store.sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status))
        session.commit()


def ids_in(db: Path, table: str = "people") -> list[int]:
    with sqlite3.connect(db) as connection:
        return sorted(int(r[0]) for r in connection.execute(f'SELECT id FROM "{table}"'))
