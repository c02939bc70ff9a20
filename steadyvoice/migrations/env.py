"""Alembic environment: always run with a connection handed in by steadyvoice.jobs.database."""

from __future__ import annotations

from alembic import context

from steadyvoice.batches import models as _batch_models  # noqa: F401  (registers tables)
from steadyvoice.console import session_models as _console_models  # noqa: F401  (the table)
from steadyvoice.jobs.models import Base
from steadyvoice.observability import models as _slo_models  # noqa: F401  (registers tables)
from steadyvoice.security import models as _security_models  # noqa: F401  (registers tables)
from steadyvoice.voices import models as _voice_models  # noqa: F401  (registers the table)
from steadyvoice.webhooks import models as _webhook_models  # noqa: F401  (registers the table)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
