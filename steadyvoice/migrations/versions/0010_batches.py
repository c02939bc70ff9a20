"""batches and their items, and each job's batch, row and scheduling lane

Every job so far was submitted on its own: the interactive lane.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("canceled_at", UTCDateTime()),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("metadata_columns", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(256)),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("requester", "idempotency_key", name="uq_batches_idem"),
    )
    op.create_index("ix_batches_tenant_created_at", "batches", ["tenant", "created_at"])
    op.create_table(
        "batch_items",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("row", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("metadata", sa.JSON(), nullable=False),
    )
    op.create_index("ix_batch_items_job_id", "batch_items", ["job_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("lane", sa.String(16), nullable=False, server_default="interactive")
        )
        batch.add_column(sa.Column("batch_id", sa.String(32)))
        batch.add_column(sa.Column("batch_row", sa.Integer()))
        batch.create_index("ix_jobs_status_lane_created_at", ["status", "lane", "created_at"])
        batch.create_index("ix_jobs_batch_id_row", ["batch_id", "batch_row"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_batch_id_row")
        batch.drop_index("ix_jobs_status_lane_created_at")
        batch.drop_column("batch_row")
        batch.drop_column("batch_id")
        batch.drop_column("lane")
    op.drop_index("ix_batch_items_job_id", "batch_items")
    op.drop_table("batch_items")
    op.drop_index("ix_batches_tenant_created_at", "batches")
    op.drop_table("batches")
