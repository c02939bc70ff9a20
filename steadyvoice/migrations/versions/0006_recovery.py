"""workers.process (proof a dead worker is gone) and worker_recoveries

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("process", sa.String(128)))
    op.create_table(
        "worker_recoveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("replacement_id", sa.String(128), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=False),
        sa.Column("died_at", UTCDateTime(), nullable=False),
        sa.Column("ready_at", UTCDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("restart", sa.String(16), nullable=False),
        sa.Column("crashes", sa.Integer(), nullable=False),
    )
    op.create_index("ix_worker_recoveries_died_at", "worker_recoveries", ["died_at"])


def downgrade() -> None:
    op.drop_table("worker_recoveries")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("process")
