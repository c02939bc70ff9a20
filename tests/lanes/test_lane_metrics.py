"""Metrics by lane: queue depth and running jobs per lane, finished jobs and queue wait by lane."""

from __future__ import annotations

from collections.abc import Callable

from factories import RESULT, new_job  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from lane_jobs import queue_batch  # type: ignore[import-not-found]
from prometheus_client.parser import text_string_to_metric_families

from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_lane_gauges_counters_and_queue_wait(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    queue_batch(store, "default", "a" * 32, 5)
    store.create(new_job("Interactive."))
    claim = store.claim("w:1", 30)
    assert claim is not None and claim.job.lane == "interactive"
    metrics.observe_claimed(claim.job, claim.attempt)
    batch_claim = store.claim("w:2", 30)
    assert batch_claim is not None and batch_claim.job.lane == "batch"
    metrics.observe_claimed(batch_claim.job, batch_claim.attempt)
    before = _samples(client)
    assert store.complete(batch_claim, RESULT)
    metrics.observe_finished(store.get(batch_claim.job.id))

    after = _samples(client)
    depth = "steadyvoice_lane_queue_depth"
    assert after[(depth, (("lane", "batch"),))] == 4
    assert after[(depth, (("lane", "interactive"),))] == 0
    assert after[("steadyvoice_lane_running_jobs", (("lane", "interactive"),))] == 1
    finished = (
        "steadyvoice_lane_jobs_finished_total",
        (("lane", "batch"), ("status", "succeeded")),
    )
    assert after[finished] == before[finished] + 1
    wait = "steadyvoice_job_lane_queue_wait_seconds_count"
    assert after[(wait, (("lane", "interactive"),))] >= 1
    assert after[(wait, (("lane", "batch"),))] >= 1
