"""api_keys, audit_events (append-only), rate_windows; tenant on jobs and voices

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PG_GUARD = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rate_per_minute", sa.Integer()),
        sa.Column("max_in_flight", sa.Integer()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("revoked_by", sa.String(128)),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_index("ix_api_keys_created_at", "api_keys", ["created_at"])
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("tenant", sa.String(64)),
        sa.Column("role", sa.String(16)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128)),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("client", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
    )
    for column in ("at", "key_id", "tenant", "action", "object_id"):
        op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    op.create_table(
        "rate_windows",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("minute", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("tenant", sa.String(64), nullable=False, server_default="default")
        )
        batch.create_index("ix_jobs_tenant_created_at", ["tenant", "created_at"])
        batch.create_index("ix_jobs_requester_status", ["requester", "status"])
    with op.batch_alter_table("voices") as batch:
        batch.add_column(
            sa.Column("tenant", sa.String(64), nullable=False, server_default="default")
        )
        batch.create_index("ix_voices_tenant", ["tenant"])
    _guard_audit_log()


def _guard_audit_log() -> None:
    """Refuse UPDATE and DELETE on the audit log in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        for verb, each in (("UPDATE", "ROW"), ("DELETE", "ROW"), ("TRUNCATE", "STATEMENT")):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"FOR EACH {each} EXECUTE FUNCTION audit_events_append_only()"
            )
        return
    refuse = "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events {refuse}"
        )
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse it too.
    op.execute(
        "CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events "
        "WHEN EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id) "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for verb in ("update", "delete", "truncate" if postgres else "replace"):
        on = " ON audit_events" if postgres else ""
        op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{verb}{on}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    with op.batch_alter_table("voices") as batch:
        batch.drop_index("ix_voices_tenant")
        batch.drop_column("tenant")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_requester_status")
        batch.drop_index("ix_jobs_tenant_created_at")
        batch.drop_column("tenant")
    op.drop_table("rate_windows")
    op.drop_table("audit_events")
    op.drop_table("api_keys")
