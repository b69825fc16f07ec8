"""The service's state as SQLAlchemy 2 models: tenants and their API keys, jobs, their batches,
the record log, the dead-letter queue, retry policies and webhooks.

Every table a tenant owns carries ``tenant_id`` (indexed), even where a parent row would give it:
each query filters on it directly, and PostgreSQL's row-level security checks it (see the
initial migration). The migration in ``migrations/versions`` creates exactly these tables; a
test compares the two.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text, TypeDecorator,
                        UniqueConstraint, Uuid)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portl.service.status import BatchStatus, DeliveryStatus, JobStatus

# SQLite numbers rows only for a column declared INTEGER, so big ids are BIGINT elsewhere only.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

TENANT_OWNED = ("api_keys", "jobs", "batches", "record_log", "dead_letters", "retry_policies", "webhooks",
                "webhook_deliveries")
"""The tables holding rows of one tenant each: row-level security applies to these."""


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always read back as an aware UTC datetime (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the service stores aware UTC times only")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def now() -> datetime:
    """The current time, as the models store it."""
    return datetime.now(timezone.utc)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names, the same on every database, so later migrations can name them."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tenant(Base):
    """An organisation using the service, with what an admin allowed it and its limits."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    # A job from the network may not read local files, run code hooks or call private addresses
    # unless an admin allowed it for the tenant.
    allow_local_files: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_code_hooks: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_private_network: Mapped[bool] = mapped_column(Boolean, default=False)
    max_running_jobs: Mapped[int] = mapped_column(Integer, default=4)
    requests_per_minute: Mapped[int] = mapped_column(Integer, default=600)


class ApiKey(Base):
    """A tenant's API key, kept as its prefix (shown to people) and the SHA-256 of the whole key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class Job(Base):
    """A job submitted to the service: its text as submitted, where it is, and its counts."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[Optional[str]] = mapped_column(String(200))
    labels: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    job_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED, index=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(200))
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_total: Mapped[Optional[int]] = mapped_column(BigInteger)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[Optional[int]] = mapped_column(BigInteger)
    error: Mapped[Optional[str]] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    started_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)  # soft delete: the audit trail stays
    stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Where the job is in its file: 2k while its k-th job loads, 2k+1 while that one finishes."""
    dispatched_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    """When the job was last handed to the executor to start; null while it waits for a turn."""
    worker: Mapped[Optional[str]] = mapped_column(String(200))
    """The process (and thread) beginning or finishing one of the job's jobs of the file, while it does."""
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    """That process's last sign of life (or when the job was admitted)."""


class Batch(Base):
    """One unit of work of a job: a partition's source range, with its attempts and counts."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_job_status", "job_id", "status"),
        Index("ix_batches_status_next_retry", "status", "next_retry_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Which job of the job's file (0 for the first)."""
    job_name: Mapped[Optional[str]] = mapped_column(String(200))
    run_id: Mapped[Optional[str]] = mapped_column(String(64))
    """The engine run the batch loads into (its checkpoints in the destination name it)."""
    kind: Mapped[str] = mapped_column(String(10), default="part", server_default="part")
    """``part``: one partition of a run spread over workers; ``whole``: the whole job in one task."""
    partition: Mapped[int] = mapped_column(Integer, default=0)
    source_range: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    next_retry_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    started_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    """Its last sign of life: written every few seconds by the worker running it (a stale one
    means that worker died), or, while it is pending, when it was last sent to the workers."""
    worker: Mapped[Optional[str]] = mapped_column(String(200))


class RecordLogEntry(Base):
    """What happened to one record (or, for loaded records by default, one batch's range)."""

    __tablename__ = "record_log"
    __table_args__ = (
        Index("ix_record_log_job_outcome", "job_id", "outcome"),
        Index("ix_record_log_job_key", "job_id", "record_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    batch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    record_key: Mapped[Optional[str]] = mapped_column(Text)
    source_location: Mapped[Optional[str]] = mapped_column(Text)
    column_name: Mapped[Optional[str]] = mapped_column(String(200))
    value: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class DeadLetter(Base):
    """A batch that exhausted its attempts, with the error; replayed once its cause is fixed."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    replayed_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class RetryPolicy(Base):
    """A tenant's default retry policy; a job's own ``retry:`` wins over it."""

    __tablename__ = "retry_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), unique=True, index=True)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    backoff_s: Mapped[float] = mapped_column(Float, default=1.0)
    max_backoff_s: Mapped[float] = mapped_column(Float, default=300.0)
    retry_on: Mapped[list[str]] = mapped_column(Json, default=list)  # error class names; empty: transient errors
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class Webhook(Base):
    """A URL a tenant wants told of job state changes. The signing secret is kept as is (it must
    sign each request) and no listing ever returns it."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(Json, default=list)
    signing_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    disabled_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """One event sent (or to be sent) to a webhook, with its attempts and the last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next_retry", "status", "next_retry_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    next_retry_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
