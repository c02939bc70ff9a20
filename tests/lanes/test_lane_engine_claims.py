"""The claim for one engine (a Celery worker's queue: steadyvoice.dispatch.consumer) takes only
that engine's jobs and counts ``batch.max_running`` per engine; on PostgreSQL the cap is exact
when claims race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import new_job  # type: ignore[import-not-found]
from lane_jobs import queue_batch  # type: ignore[import-not-found]
from sqlalchemy import func, select, update

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import Claim, JobStore


def _as_engine(store: JobStore, ids: list[str], engine: str) -> None:
    with store.session() as s:
        s.execute(update(Job).where(Job.id.in_(ids)).values(engine=engine))


def test_a_claim_for_one_engine_takes_its_jobs_under_its_own_cap(store: JobStore) -> None:
    piper = queue_batch(store, "school", "p" * 32, 3)
    _as_engine(store, piper, "piper")
    fake = queue_batch(store, "bank", "f" * 32, 3)
    gpu, _ = store.create(new_job("For a GPU host only.", engine="cosyvoice"))

    first = store.claim("w1", 30, batch_max_running=1, engine="piper")
    assert first is not None and first.job.id == piper[0]
    assert store.claim("w2", 30, batch_max_running=1, engine="piper") is None  # piper's cap
    other = store.claim("w3", 30, batch_max_running=1, engine="fake")  # a cap of its own
    assert other is not None and other.job.id == fake[0]

    assert store.batch_waiting("piper") and not store.batch_waiting("cosyvoice")
    assert store.get(gpu.id).status == "queued"  # never taken for piper or fake
    taken = store.claim("w4", 30, engine="cosyvoice")
    assert taken is not None and taken.job.id == gpu.id


@pytest.mark.parametrize("engine", [None, "fake"])
def test_the_cap_is_exact_when_batch_claims_race(
    pg_url: str, store_factory: Callable[[str], JobStore], engine: str | None
) -> None:
    store = store_factory(pg_url)
    queue_batch(store, "school", "r" * 32, 8)
    claimers = 6
    start = threading.Barrier(claimers)

    def claim(n: int) -> Claim | None:
        start.wait(10)
        return store.claim(f"w{n}", 30, batch_max_running=1, engine=engine)

    with ThreadPoolExecutor(claimers) as pool:
        claims = [c for c in pool.map(claim, range(claimers)) if c is not None]
    assert len(claims) == 1
    with store.reading() as s:
        assert s.scalar(select(func.count()).where(Job.status == "running")) == 1
