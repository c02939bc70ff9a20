"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from steadyvoice.batches import models as _batch_models  # noqa: F401
from steadyvoice.console import session_models as _console_models  # noqa: F401
from steadyvoice.jobs.models import Base
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import models as _slo_models  # noqa: F401
from steadyvoice.voices import models as _voice_models  # noqa: F401
from steadyvoice.webhooks import models as _webhook_models  # noqa: F401


def test_migrated_schema_matches_the_models(store: JobStore) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store: JobStore) -> None:
    store.migrate()
    store.migrate()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0014"
