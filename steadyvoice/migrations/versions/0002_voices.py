"""voices table

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("consent", sa.Text(), nullable=False),
        sa.Column("transcript", sa.Text()),
        sa.Column("reference_name", sa.String(256), nullable=False),
        sa.Column("reference_sha256", sa.String(64), nullable=False),
        sa.Column("reference_bytes", sa.Integer(), nullable=False),
        sa.Column("reference_format", sa.String(16), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("file_seconds", sa.Float(), nullable=False),
        sa.Column("speech_seconds", sa.Float(), nullable=False),
        sa.Column("measurements", sa.JSON(), nullable=False),
        sa.Column("analysis", sa.JSON(), nullable=False),
        sa.Column("analysis_version", sa.String(64), nullable=False),
        sa.Column("deleted_at", UTCDateTime()),
        sa.Column("deleted_by", sa.String(128)),
    )
    op.create_index("ix_voices_created_at", "voices", ["created_at"])


def downgrade() -> None:
    op.drop_table("voices")
