"""output retention: jobs.purged_at and legal holds

The retention purge (steadyvoice.storage.retention) deletes a succeeded job's audio after
``retention.outputs_days`` (claimed first: ``purge_started_at``) and stamps ``purged_at``;
the row and its SHA-256 stay. A legal hold on a job or a tenant (steadyvoice.storage.holds)
exempts its audio.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("purged_at", UTCDateTime()))
        batch.add_column(sa.Column("purge_started_at", UTCDateTime()))
    op.create_index(
        "ix_jobs_status_purged_at_created_at", "jobs", ["status", "purged_at", "created_at"]
    )
    op.create_table(
        "legal_holds",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(128), nullable=False),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("legal_holds")
    op.drop_index("ix_jobs_status_purged_at_created_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("purge_started_at")
        batch.drop_column("purged_at")
