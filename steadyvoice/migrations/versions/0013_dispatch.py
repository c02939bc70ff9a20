"""celery dispatch: jobs.published_at (the outbox), and the fleet view's worker columns

With ``dispatch.backend=celery`` a queued job is sent to the broker after its row commits, and
``published_at`` records when (steadyvoice.dispatch.outbox). The reaper sends again a queued job
that was never sent, or was sent and still waits ``dispatch.republish_seconds`` later.

``workers`` gains what ``GET /v1/workers`` lists: the Celery queues a worker consumes, its
slot's recycles, and the port of its own /metrics.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("published_at", UTCDateTime()))
    op.create_index("ix_jobs_status_published_at", "jobs", ["status", "published_at"])
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("queues", sa.String(255)))
        batch.add_column(sa.Column("recycles", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("metrics_port", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("metrics_port")
        batch.drop_column("recycles")
        batch.drop_column("queues")
    op.drop_index("ix_jobs_status_published_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("published_at")
