"""audit_events.count (folded refusals) and audit_rotations (the only way rows leave the log)

The DELETE trigger on audit_events now lets a row go only if an audit_rotations row covers its
id (``through_id``); audit_rotations is itself append-only. UPDATE, TRUNCATE and INSERT OR
REPLACE stay refused. A rotation row must come right after its ``audit.rotate`` event, name
only rows that exist and never go back. ``steadyvoice audit rotate`` inserts the rotation row
and deletes the rows it covers in one transaction (steadyvoice.security.retention).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steadyvoice.jobs.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COVERED = "(SELECT coalesce(max(through_id), 0) FROM audit_rotations)"
_PG_ROTATION_ONLY = f"""
CREATE FUNCTION audit_events_rotation_only() RETURNS trigger AS $$
BEGIN
    IF OLD.id <= {_COVERED} THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (rows leave only by steadyvoice audit rotate)';
END;
$$ LANGUAGE plpgsql
"""
_PG_ROTATIONS_GUARD = """
CREATE FUNCTION audit_rotations_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_rotations is append-only';
END;
$$ LANGUAGE plpgsql
"""
_SQLITE_REFUSE = "BEGIN SELECT RAISE(ABORT, '{} is append-only'); END"
# A rotation row unlocks the DELETE of every audit row up to its through_id: it may only name
# rows that exist, never go back, and come right after the audit.rotate event that records it,
# so a stray or hand-made row can't unlock the log's future rows.
_ROTATION_BAD = (  # constants only
    "NEW.through_id >= (SELECT coalesce(max(id), 0) FROM audit_events)"  # noqa: S608
    f" OR NEW.through_id < {_COVERED}"
    " OR coalesce((SELECT action FROM audit_events ORDER BY id DESC LIMIT 1), '')"
    " <> 'audit.rotate'"
)
_PG_ROTATION_CHECK = f"""
CREATE FUNCTION audit_rotations_checked() RETURNS trigger AS $$
BEGIN
    IF {_ROTATION_BAD} THEN
        RAISE EXCEPTION 'an audit rotation must follow its audit.rotate event and cover only '
            'rows that exist, after the last rotation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would copy the table and lose its triggers.
    op.add_column(
        "audit_events", sa.Column("count", sa.Integer(), nullable=False, server_default="1")
    )
    op.create_table(
        "audit_rotations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column(
            "through_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("before", UTCDateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_ROTATIONS_GUARD)
        for verb, each in (("UPDATE", "ROW"), ("DELETE", "ROW"), ("TRUNCATE", "STATEMENT")):
            op.execute(
                f"CREATE TRIGGER audit_rotations_no_{verb.lower()} BEFORE {verb} "
                f"ON audit_rotations FOR EACH {each} "
                "EXECUTE FUNCTION audit_rotations_append_only()"
            )
        op.execute(_PG_ROTATION_CHECK)
        op.execute(
            "CREATE TRIGGER audit_rotations_checked BEFORE INSERT ON audit_rotations "
            "FOR EACH ROW EXECUTE FUNCTION audit_rotations_checked()"
        )
        op.execute(_PG_ROTATION_ONLY)
        op.execute("DROP TRIGGER audit_events_no_delete ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_rotation_only()"
        )
        return
    refuse = _SQLITE_REFUSE.format("audit_rotations")
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_rotations_no_{verb.lower()} BEFORE {verb} "
            f"ON audit_rotations {refuse}"
        )
    op.execute(
        "CREATE TRIGGER audit_rotations_no_replace BEFORE INSERT ON audit_rotations "
        "WHEN EXISTS (SELECT 1 FROM audit_rotations WHERE id = NEW.id) "
        "BEGIN SELECT RAISE(ABORT, 'audit_rotations is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_rotations_checked BEFORE INSERT ON audit_rotations "
        f"WHEN {_ROTATION_BAD} "
        "BEGIN SELECT RAISE(ABORT, 'an audit rotation must follow its audit.rotate event and "
        "cover only rows that exist, after the last rotation'); END"
    )
    op.execute("DROP TRIGGER audit_events_no_delete")
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        f"WHEN OLD.id > {_COVERED} "
        "BEGIN SELECT RAISE(ABORT, "
        "'audit_events is append-only (rows leave only by steadyvoice audit rotate)'); END"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER audit_events_no_delete ON audit_events")
        op.execute("DROP FUNCTION audit_events_rotation_only()")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        for verb in ("update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER audit_rotations_no_{verb} ON audit_rotations")
        op.execute("DROP TRIGGER audit_rotations_checked ON audit_rotations")
        op.execute("DROP FUNCTION audit_rotations_append_only()")
        op.execute("DROP FUNCTION audit_rotations_checked()")
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            + _SQLITE_REFUSE.format("audit_events")
        )
        for verb in ("update", "delete", "replace"):
            op.execute(f"DROP TRIGGER audit_rotations_no_{verb}")
        op.execute("DROP TRIGGER audit_rotations_checked")
    op.drop_table("audit_rotations")
    op.drop_column("audit_events", "count")
