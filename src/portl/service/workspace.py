"""A tenant's folder under ``PORTL_HOME``: ``tenants/<id>/`` with

- ``files/``: what relative paths in the tenant's jobs are relative to (uploads go there);
- ``ledger/``: the engine's run ledger for the tenant's jobs (``RunOptions.state_dir``);
- ``rejects/``: the reject file of each job that names none, one folder per job, so that two jobs
  of the same name never write into one file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from portl.service.settings import ServiceSettings

FILES = "files"
LEDGER = "ledger"
REJECTS = "rejects"


def tenant_dir(settings: ServiceSettings, tenant_id: int) -> Path:
    """The tenant's folder, with its ``files/``, ``ledger/`` and ``rejects/`` made if missing."""
    root = settings.home / "tenants" / str(int(tenant_id))
    for part in (FILES, LEDGER, REJECTS):
        (root / part).mkdir(parents=True, exist_ok=True)
    return root


def files_location(settings: ServiceSettings, tenant_id: int) -> Path:
    """Where the tenant's files folder is, without making it (for listings)."""
    return settings.home / "tenants" / str(int(tenant_id)) / FILES


def files_dir(settings: ServiceSettings, tenant_id: int) -> Path:
    """Where the tenant's relative paths point."""
    return tenant_dir(settings, tenant_id) / FILES


def ledger_dir(settings: ServiceSettings, tenant_id: int) -> Path:
    """The run ledger of the tenant's jobs."""
    return tenant_dir(settings, tenant_id) / LEDGER


def rejects_dir(settings: ServiceSettings, tenant_id: int, job_id: uuid.UUID) -> Path:
    """Where a job that names no reject file keeps its rejected rows (one file per job name)."""
    folder = tenant_dir(settings, tenant_id) / REJECTS / str(job_id)
    folder.mkdir(exist_ok=True)
    return folder
