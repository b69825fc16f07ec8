"""How a failed batch of a submitted job is tried again: the job's own ``retry:`` when it sets
one, else its tenant's policy (``PUT /api/v1/retry-policies``), else :data:`DEFAULT_POLICY`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portl.errors import ChecksFailed, ConflictError, ConnectorError, DataError, RejectLimitExceeded, TransientError
from portl.service.models import RetryPolicy

RETRY_CLASSES = {
    "transient": (TransientError,),  # a connection dropped, a timeout, a deadlock: likely to pass
    "connector": (ConnectorError,),  # any error of a source or destination, refusals included
    "data": (DataError, ConflictError, RejectLimitExceeded),
    "any": (Exception,),
}
"""What a retry policy's ``retry_on`` may name, and the errors each covers."""


@dataclass(frozen=True)
class Policy:
    """How a failed batch is tried again."""

    max_attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    retry_on: tuple[str, ...] = ("transient",)
    source: str = "service default"

    def delay(self, attempts: int) -> float:
        """The wait before the attempt after ``attempts`` failed ones."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempts - 1))

    def retries(self, exc: BaseException) -> bool:
        if isinstance(exc, ChecksFailed):  # the same data fails the same checks; a resume would find
            return False                   # the run finished and report it succeeded
        return any(isinstance(exc, RETRY_CLASSES[name]) for name in self.retry_on if name in RETRY_CLASSES)


DEFAULT_POLICY = Policy()


def policy_for(session: Session, tenant_id: int, job_text: str, name: str | None) -> Policy:
    """The job's own ``retry:`` when it sets one, else the tenant's policy, else the default."""
    own = _own_retry(job_text, name)
    if own is not None:
        return Policy(own.attempts, own.backoff_ms / 1000, max(own.backoff_ms, own.max_backoff_ms) / 1000,
                      ("transient",), "the job's retry:")
    row = session.scalars(select(RetryPolicy).where(RetryPolicy.tenant_id == tenant_id)).first()
    if row is None:
        return DEFAULT_POLICY
    return Policy(row.max_attempts, row.backoff_s, row.max_backoff_s, tuple(row.retry_on or ("transient",)),
                  "the tenant's policy")


def _own_retry(job_text: str, name: str | None) -> Any:
    """The ``retry:`` the job ``name`` of the file sets itself, or None."""
    import yaml

    try:
        data = yaml.safe_load(job_text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    entries = data.get("jobs") if isinstance(data.get("jobs"), list) else [data]
    for entry in entries:
        if isinstance(entry, dict) and (name is None or entry.get("name", name) == name or len(entries) == 1):
            retry = entry.get("retry", data.get("retry") if entry is not data else None)
            if isinstance(retry, dict):
                from portl.spec.models import Retry

                try:
                    return Retry.model_validate(retry)
                except Exception:  # invalid: validation reported it when the job was submitted
                    return None
    return None
