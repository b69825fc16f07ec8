"""The service's state: tenants, API keys, jobs, batches, record log, dead letters, retry
policies, webhooks and their deliveries; on PostgreSQL, row-level security by tenant.

Written by hand, frozen: later changes are later revisions, never edits of this one.

Revision ID: 0001
Revises:
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TENANT_OWNED = ("api_keys", "jobs", "batches", "record_log", "dead_letters", "retry_policies", "webhooks",
                "webhook_deliveries")
# The tenant a connection acts for: the service sets it per request (SET LOCAL portl.tenant_id).
# Unset, or reset to '', it is NULL, and a NULL tenant sees no row.
CURRENT_TENANT = "NULLIF(current_setting('portl.tenant_id', true), '')::integer"


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant(table: str) -> list:
    """The tenant_id column and its foreign key, for a tenant-owned table."""
    return [
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id", ondelete="CASCADE"),
    ]


def _index(table: str, *columns: str, name: str | None = None, unique: bool = False) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns), unique=unique)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        _when("created_at"),
        sa.Column("allow_local_files", sa.Boolean(), nullable=False),
        sa.Column("allow_code_hooks", sa.Boolean(), nullable=False),
        sa.Column("allow_private_network", sa.Boolean(), nullable=False),
        sa.Column("max_running_jobs", sa.Integer(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        *_tenant("api_keys"),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        _when("created_at"),
        _when("last_used_at", nullable=True),
        _when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    _index("api_keys", "tenant_id")
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        *_tenant("jobs"),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("job_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        _when("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
    )
    _index("jobs", "tenant_id")
    _index("jobs", "status")
    _index("jobs", "tenant_id", "created_at", name="ix_jobs_tenant_created")
    op.create_table(
        "batches",
        sa.Column("id", BIG_ID, nullable=False),
        *_tenant("batches"),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("source_range", JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("next_retry_at", nullable=True),
        sa.Column("counts", JSON, nullable=False),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_batches_job_id", ondelete="CASCADE"),
    )
    _index("batches", "tenant_id")
    _index("batches", "job_id", "status", name="ix_batches_job_status")
    _index("batches", "status", "next_retry_at", name="ix_batches_status_next_retry")
    op.create_table(
        "record_log",
        sa.Column("id", BIG_ID, nullable=False),
        *_tenant("record_log"),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", BIG_ID, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=True),
        sa.Column("source_location", sa.Text(), nullable=True),
        sa.Column("column_name", sa.String(200), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_record_log"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_record_log_job_id", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_record_log_batch_id", ondelete="CASCADE"),
    )
    _index("record_log", "tenant_id")
    _index("record_log", "batch_id")
    _index("record_log", "job_id", "outcome", name="ix_record_log_job_outcome")
    _index("record_log", "job_id", "record_key", name="ix_record_log_job_key")
    op.create_table(
        "dead_letters",
        sa.Column("id", BIG_ID, nullable=False),
        *_tenant("dead_letters"),
        sa.Column("batch_id", BIG_ID, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        _when("created_at"),
        _when("replayed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_dead_letters_batch_id", ondelete="CASCADE"),
    )
    _index("dead_letters", "tenant_id")
    _index("dead_letters", "batch_id")
    op.create_table(
        "retry_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        *_tenant("retry_policies"),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("backoff_s", sa.Float(), nullable=False),
        sa.Column("max_backoff_s", sa.Float(), nullable=False),
        sa.Column("retry_on", JSON, nullable=False),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_retry_policies"),
    )
    _index("retry_policies", "tenant_id", unique=True)
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        *_tenant("webhooks"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("signing_secret", sa.String(100), nullable=False),
        _when("created_at"),
        _when("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    _index("webhooks", "tenant_id")
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BIG_ID, nullable=False),
        *_tenant("webhook_deliveries"),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("next_retry_at", nullable=True),
        _when("created_at"),
        _when("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], name="fk_webhook_deliveries_webhook_id", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_webhook_deliveries_job_id", ondelete="SET NULL"),
    )
    _index("webhook_deliveries", "tenant_id")
    _index("webhook_deliveries", "webhook_id")
    _index("webhook_deliveries", "status", "next_retry_at", name="ix_webhook_deliveries_status_next_retry")
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


def _row_level_security() -> None:
    """A second wall behind the service's own tenant filter: a role that is neither the tables'
    owner nor a superuser sees and writes only the rows of the tenant in ``portl.tenant_id``."""
    for table in TENANT_OWNED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (tenant_id = {CURRENT_TENANT}) "
                   f"WITH CHECK (tenant_id = {CURRENT_TENANT})")


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhooks", "retry_policies", "dead_letters", "record_log", "batches", "jobs",
                  "api_keys", "tenants"):
        op.drop_table(table)
