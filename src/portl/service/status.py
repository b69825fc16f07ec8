"""The states the service's records go through, in one place: the models, the migration and
(later) the API and the workers use these names, never string literals of their own."""

from __future__ import annotations


class JobStatus:
    """Where a submitted job is."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # finished, but some batches are in the dead-letter queue
    ALL = (QUEUED, RUNNING, CANCELLING, CANCELLED, SUCCEEDED, FAILED, PARTIAL)
    FINISHED = (CANCELLED, SUCCEEDED, FAILED, PARTIAL)


class BatchStatus:
    """Where one batch (a partition's source range) of a job is."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"  # failed, another attempt is due at next_retry_at
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # out of attempts: in the dead-letter queue
    CANCELLED = "cancelled"
    ALL = (PENDING, RUNNING, RETRYING, SUCCEEDED, DEAD, CANCELLED)


class Outcome:
    """What happened to a record, in the record log."""

    LOADED = "loaded"
    INSERTED = "inserted"
    UPDATED = "updated"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    ALL = (LOADED, INSERTED, UPDATED, SKIPPED, REJECTED)


class DeliveryStatus:
    """Where a webhook delivery is."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts
    ALL = (PENDING, DELIVERED, FAILED)
