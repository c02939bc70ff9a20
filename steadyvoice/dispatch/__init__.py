"""How queued jobs reach workers, by ``dispatch.backend``.

``embedded`` (the default): workers poll the store and are rung through a doorbell (a Unix
socket on one host, :mod:`steadyvoice.jobs.dispatch`; NOTIFY on PostgreSQL,
:mod:`steadyvoice.jobs.doorbell_pg`). ``celery``: the API sends each job's id to a Celery broker
after the row commits (:mod:`.outbox`), and ``steadyvoice worker --queues ...`` processes on
any host claim that job through the same fenced store claim (:mod:`.consumer`, :mod:`.tasks`,
:mod:`.command`). The job row stays the record of truth either way: a lost or repeated message
delays a job, never loses it or runs it twice. docs/scale-out.md.
"""

from __future__ import annotations

from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.doorbell_pg import job_dispatcher
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings


def make_dispatcher(settings: Settings, store: JobStore) -> Dispatcher:
    """The API's dispatcher for ``settings.dispatch.backend``: the outbox for celery; else
    NOTIFY on PostgreSQL or this host's socket doorbell (``jobs.doorbell_pg``)."""
    if settings.dispatch.backend == "celery":
        from steadyvoice.dispatch.celery_app import celery_app
        from steadyvoice.dispatch.outbox import Outbox

        return Outbox(store, celery_app(settings), settings.dispatch.republish_seconds)
    return job_dispatcher(settings, store)


__all__ = ["make_dispatcher"]
