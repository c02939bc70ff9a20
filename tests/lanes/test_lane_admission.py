"""Admission counts the lanes apart: a huge queued batch never gets interactive work refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from factories import RESULT, new_job  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from lane_jobs import queue_batch  # type: ignore[import-not-found]

from steadyvoice.jobs.admission import Admission
from steadyvoice.jobs.lanes import BATCH, INTERACTIVE, deadline_seconds
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings


def _store(client: TestClient) -> JobStore:
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def test_a_big_batch_neither_fills_the_queue_nor_delays_interactive_jobs(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(
        admission={"max_queue": 3, "latency_fraction": 1.0}, slo={"latency_target_seconds": 3}
    )
    store = _store(client)
    # History: syntheses of 1 s; with one worker, 200 items ahead would be 200 s.
    store.create(new_job("History."))
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    with store.session() as s:
        job = s.get(Job, claim.job.id)
        assert job is not None and job.finished_at is not None
        job.started_at = job.finished_at - timedelta(seconds=1)
    queue_batch(store, "default", "f" * 32, 200)

    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    estimate = Admission(settings, store).estimate()
    assert (estimate.queued, estimate.batch_queued) == (0, 200)
    for i in range(3):  # 3 interactive jobs fit, whatever the batch
        assert client.post("/v1/jobs", json={"text": f"Reply {i}."}).status_code == 202
    refused = client.post("/v1/jobs", json={"text": "One too many."})
    assert refused.status_code == 503  # the interactive queue's own limit still holds
    assert refused.json()["error"]["code"] == "overloaded"


def test_batch_items_get_their_own_deadline(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(batch={"deadline_seconds": 7200}, jobs={"deadline_seconds": 60})
    assert deadline_seconds(settings, BATCH) == 7200
    assert deadline_seconds(settings, INTERACTIVE) == 60
