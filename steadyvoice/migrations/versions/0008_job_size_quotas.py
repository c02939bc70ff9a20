"""jobs.estimated_seconds and tenant_usage (stored bytes per tenant), for tenant quotas

A tenant's audio seconds today count a job's estimate until it has its real duration; its
stored bytes are a running total that each recorded success adds to (steadyvoice.jobs.quotas,
steadyvoice.jobs.usage), filled here from the jobs that succeeded before.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("estimated_seconds", sa.Float()))
    op.create_table(
        "tenant_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO tenant_usage (tenant, stored_bytes) "
        "SELECT tenant, SUM(size_bytes) FROM jobs "
        "WHERE status = 'succeeded' AND size_bytes IS NOT NULL GROUP BY tenant"
    )


def downgrade() -> None:
    op.drop_table("tenant_usage")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("estimated_seconds")
