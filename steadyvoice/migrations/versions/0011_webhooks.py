"""webhook callbacks and their delivery attempts; fair-share indexes for the batch lane

Jobs and batches get ``callback_url`` with the delivery state (``webhook_state``,
``webhook_next_at``); ``webhook_deliveries`` records every attempt. The claim's fair share
between tenants and batches reads three new indexes (steadyvoice.jobs.claims).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CALLBACK_COLUMNS = ("callback_url", "webhook_state", "webhook_next_at")


def _callback_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("callback_url", sa.String(2048)),
        sa.Column("webhook_state", sa.String(16)),
        sa.Column("webhook_next_at", UTCDateTime()),
    ]


def upgrade() -> None:
    for table in ("jobs", "batches"):
        with op.batch_alter_table(table) as batch:
            for column in _callback_columns():
                batch.add_column(column)
            batch.create_index(
                f"ix_{table}_webhook_state_next_at", ["webhook_state", "webhook_next_at"]
            )
    with op.batch_alter_table("jobs") as batch:
        batch.create_index(
            "ix_jobs_lane_fair", ["status", "lane", "tenant", "batch_id", "batch_row"]
        )
        batch.create_index("ix_jobs_tenant_lane_started", ["tenant", "lane", "started_at"])
        batch.create_index("ix_jobs_batch_started", ["batch_id", "started_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer()),
    )
    op.create_index(
        "ix_webhook_deliveries_subject", "webhook_deliveries", ["subject_id", "attempt"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_subject", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_batch_started")
        batch.drop_index("ix_jobs_tenant_lane_started")
        batch.drop_index("ix_jobs_lane_fair")
    for table in ("batches", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_webhook_state_next_at")
            for name in reversed(CALLBACK_COLUMNS):
                batch.drop_column(name)
