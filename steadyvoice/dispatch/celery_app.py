"""The Celery application both sides share: the broker, delivery guarantees, and recycling.

- Delivery: ``acks_late`` with ``reject_on_worker_lost``: a message is acknowledged only after
  its job ran, and one whose worker process died (SIGKILL, OOM) goes back to the queue. One
  message at a time per process (``prefetch_multiplier=1``): a message never waits behind a
  long job in a busy worker while another worker is idle.
- Pool: prefork with one child (``command.run_worker``). The child loads the engine once and
  serves until Celery recycles it, which is what maps ``worker.max_jobs`` and
  ``worker.max_memory_mb`` onto Celery's own ``worker_max_tasks_per_child`` and
  ``worker_max_memory_per_child`` (the solo pool ignores both), and a child that dies is
  replaced by its parent, which also rejects the lost message back to the queue.
- Queues: two per engine, named after it (``queue_for``): ``<engine>`` for the interactive
  lane and ``<engine>.batch`` for batch items; a host consumes the engines it runs, both lanes,
  the interactive queue first (``queue_order_strategy: priority``: Redis's BRPOP takes from the
  first non-empty queue in that order), so a request never waits behind a batch backlog.
  Within the batch lane, a message claims the item next in turn under ``batch.max_running``
  (:mod:`.consumer`).
"""

from __future__ import annotations

from celery import Celery

from steadyvoice.jobs.lanes import BATCH
from steadyvoice.settings import Settings

TASK = "steadyvoice.run_job"
KIB_PER_MB = 1024
# The child loads its engine before it takes a message; Celery's default (4 s) would kill a
# child still loading a large model.
ENGINE_LOAD_SECONDS = 900.0


BATCH_SUFFIX = "." + BATCH


def queue_for(engine: str, lane: str = "interactive") -> str:
    """The queue a job of ``engine`` is sent to: the engine's own name (``cosyvoice``,
    ``piper``), so GPU hosts consume ``cosyvoice`` and CPU hosts ``piper``; batch items go to
    ``<engine>.batch``, taken only while the interactive queue is empty."""
    return engine + BATCH_SUFFIX if lane == BATCH else engine


def consumed(queues: list[str]) -> list[str]:
    """The broker queues a worker named ``--queues`` consumes, in the order taken: every
    interactive queue, then their batch queues."""
    interactive = [q for q in queues if not q.endswith(BATCH_SUFFIX)]
    batch = [q + BATCH_SUFFIX for q in interactive]
    batch += [q for q in queues if q.endswith(BATCH_SUFFIX) and q not in batch]
    return interactive + batch


def celery_app(settings: Settings) -> Celery:
    """The app for ``settings.dispatch`` (its broker must be set: the settings check it)."""
    timeout = settings.dispatch.publish_timeout_seconds
    app = Celery("steadyvoice", broker=settings.dispatch.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # the job row is the result; no result backend
        task_default_queue=queue_for(settings.engine),
        task_serializer="json",
        accept_content=["json"],
        # A send that cannot reach the broker fails fast: the job stays unsent, the reaper
        # sends it later (steadyvoice.dispatch.outbox).
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "queue_order_strategy": "priority",  # interactive before batch (``consumed``)
        },
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        # Flower and ``celery events`` read these.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_proc_alive_timeout=ENGINE_LOAD_SECONDS,
        worker_max_tasks_per_child=settings.worker.max_jobs or None,
        worker_max_memory_per_child=settings.worker.max_memory_mb * KIB_PER_MB or None,
    )
    return app
