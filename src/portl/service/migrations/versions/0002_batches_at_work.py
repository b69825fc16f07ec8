"""Batches as units of work spread over workers: which job of the file a batch belongs to, the
engine run it loads into, whether it loads one partition or the whole job, and the heartbeat of
the worker running it; jobs record which job of their file they are at, when they were last
handed to the executor, and which process is beginning or finishing one (with its heartbeat).

Revision ID: 0002
Revises: 0001
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("stage", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("worker", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("stage", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("batches", sa.Column("job_name", sa.String(200), nullable=True))
    op.add_column("batches", sa.Column("run_id", sa.String(64), nullable=True))
    op.add_column("batches", sa.Column("kind", sa.String(10), nullable=False, server_default="part"))
    op.add_column("batches", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("worker", sa.String(200), nullable=True))


def downgrade() -> None:
    for column in ("worker", "heartbeat_at", "kind", "run_id", "job_name", "stage"):
        op.drop_column("batches", column)
    for column in ("heartbeat_at", "worker", "dispatched_at"):
        op.drop_column("jobs", column)
    op.drop_column("jobs", "stage")
