"""jobs.spoken_text and job_chunks (streamed audio on its way to the client)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("spoken_text", sa.Text()))
    op.create_table(
        "job_chunks",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("pcm", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_job_chunks_created_at", "job_chunks", ["created_at"])


def downgrade() -> None:
    op.drop_table("job_chunks")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("spoken_text")
