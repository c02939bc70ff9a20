"""voices.language: the language spoken in a profile's reference recording

Declared at upload or detected from the transcript; NULL when neither says (and for profiles
made before this revision).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voices") as batch:
        batch.add_column(sa.Column("language", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("voices") as batch:
        batch.drop_column("language")
