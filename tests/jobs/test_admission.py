"""Admission control: refuse work the queue cannot finish in time, and say when to come back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from processes import ServiceFactory, poll  # type: ignore[import-not-found]
from sqlalchemy import select, update

from steadyvoice.jobs.admission import RefusalLog, trimmed_mean
from steadyvoice.jobs.liveness import READY, WorkerRegistry
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.observability.models import Refusal

RESULT = Result("fake-1", 16_000, 1.0, "0" * 64, 100)


def _store(client: TestClient) -> JobStore:
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def _history(store: JobStore, seconds: float, count: int = 3) -> None:
    """Succeeded jobs whose synthesis took ``seconds`` each."""
    for i in range(count):
        store.create(new_job(f"History job {i}."))
        claim = store.claim("w:1", 30)
        assert claim is not None and store.complete(claim, RESULT)
        with store.session() as s:
            job = s.get(Job, claim.job.id)
            assert job is not None and job.finished_at is not None
            s.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(started_at=job.finished_at - timedelta(seconds=seconds))
            )


def _refusals(store: JobStore) -> list[tuple[str, int, int]]:
    """(reason, count, chars) of each refusal row."""
    with store.reading() as s:
        rows = s.scalars(select(Refusal).order_by(Refusal.id))
        return [(r.reason, r.count, r.chars) for r in rows]


def test_deadline_refusal_says_why_and_when_to_retry(
    client_factory: Callable[..., TestClient],
) -> None:
    # The latency bound (0.65 of the objective) later than the deadline: the deadline decides.
    client = client_factory(jobs={"deadline_seconds": 5}, slo={"latency_target_seconds": 20})
    store = _store(client)
    _history(store, seconds=2.0)
    first = client.post("/v1/jobs", json={"text": "One."}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202  # nothing ahead: 2 s
    assert client.post("/v1/jobs", json={"text": "Two."}).status_code == 202  # 1 ahead: 4 s
    r = client.post("/v1/jobs", json={"text": "Three."})  # 2 ahead: 6 s > 5 s
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "overloaded" and err["reason"] == "deadline"
    assert err["estimated_seconds"] == pytest.approx(6.0, abs=0.01)
    assert err["deadline_seconds"] == 5
    assert r.headers["Retry-After"] == str(err["retry_after"]) == "10"
    assert _refusals(store) == [("deadline", 1, len("Three."))]
    # A repeat of an accepted job is answered, not refused.
    again = client.post("/v1/jobs", json={"text": "One."}, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    # Invalid requests stay 422: validation comes first.
    assert client.post("/v1/jobs", json={"text": " "}).status_code == 422
    assert len(_refusals(store)) == 1


def test_a_short_job_must_fit_the_latency_objective_not_only_its_deadline(
    client_factory: Callable[..., TestClient],
) -> None:
    """Under overload the queue must not grow to the 600 s deadline for short jobs: it is held
    to 0.65 of the objective by default (the margin for the estimate's lag)."""
    client = client_factory(slo={"latency_target_seconds": 8, "latency_max_chars": 20})
    store = _store(client)
    _history(store, seconds=2.0)
    assert client.post("/v1/jobs", json={"text": "One."}).status_code == 202  # 2 s
    assert client.post("/v1/jobs", json={"text": "Two."}).status_code == 202  # 1 ahead: 4 s
    r = client.post("/v1/jobs", json={"text": "Three."})  # 2 ahead: 6 s > 5.2 s (0.65 x 8)
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "overloaded" and err["reason"] == "latency"
    assert err["estimated_seconds"] == pytest.approx(6.0, abs=0.01)
    assert err["latency_target_seconds"] == 8 and err["deadline_seconds"] == 600
    assert err["admission_bound_seconds"] == pytest.approx(5.2)
    assert "within 5.2 s, the admission bound for the 8 s latency objective" in err["message"]
    assert r.headers["Retry-After"] == "10"
    # A long job (over latency_max_chars) is held to its deadline only: 6 s is fine.
    long = client.post("/v1/jobs", json={"text": "A long job of many more characters."})
    assert long.status_code == 202, long.text
    assert _refusals(store) == [("latency", 1, len("Three."))]


@pytest.mark.parametrize(("fraction", "accepted"), [(1.0, 3), (0.65, 2), (0.25, 1)])
def test_the_latency_fraction_sets_how_much_of_the_objective_admission_fills(
    client_factory: Callable[..., TestClient], fraction: float, accepted: int
) -> None:
    """Syntheses of 2 s on one worker, objective 6.5 s: the n-th job is estimated at 2n s.
    The whole objective admits 3 (6 s), 0.65 of it (4.2 s) 2, a quarter only the first, which
    nothing is ahead of (a free worker is never refused)."""
    client = client_factory(
        slo={"latency_target_seconds": 6.5, "latency_max_chars": 20},
        admission={"latency_fraction": fraction},
    )
    _history(_store(client), seconds=2.0)
    codes = [client.post("/v1/jobs", json={"text": f"Job {i}."}).status_code for i in range(4)]
    assert codes == [202] * accepted + [503] * (4 - accepted)


def test_retry_after_grows_with_the_backlog(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(
        jobs={"deadline_seconds": 5},
        admission={"retry_after_seconds": 1},
        slo={"latency_target_seconds": 20},  # 0.65 of it is later than the deadline
    )
    store = _store(client)
    _history(store, seconds=2.0)
    for i in range(4):
        store.create(new_job(f"Backlog {i}."))
    r = client.post("/v1/jobs", json={"text": "Late."})  # 4 ahead: 10 s, 5 s over
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"


def test_full_queue_is_refused_even_without_history(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(admission={"max_queue": 2, "retry_after_seconds": 7})
    for i in range(2):
        assert client.post("/v1/jobs", json={"text": f"Job {i}."}).status_code == 202
    r = client.post("/v1/jobs", json={"text": "One too many."})
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert r.json()["error"]["reason"] == "queue_full"
    assert _refusals(_store(client)) == [("queue_full", 1, len("One too many."))]


def test_a_free_worker_is_never_refused_on_the_deadline(
    client_factory: Callable[..., TestClient],
) -> None:
    """A mean above the deadline must not lock admission out: nothing ahead means no wait."""
    client = client_factory(jobs={"deadline_seconds": 5}, slo={"latency_target_seconds": 20})
    store = _store(client)
    _history(store, seconds=8.0)  # slower than the deadline on its own
    assert client.post("/v1/jobs", json={"text": "Alone."}).status_code == 202
    r = client.post("/v1/jobs", json={"text": "Behind one."})  # 1 ahead, 1 worker: 16 s
    assert r.status_code == 503 and r.json()["error"]["reason"] == "deadline"
    # A second live worker is free for it: accepted, then the third waits again.
    workers = WorkerRegistry(store)
    for worker_id in ("host:1", "host:2"):
        workers.register(worker_id, "fake")
        workers.beat(worker_id, READY, None, 0)
    assert client.post("/v1/jobs", json={"text": "Behind one."}).status_code == 202
    assert client.post("/v1/jobs", json={"text": "Behind two."}).status_code == 503


def test_refusals_are_written_at_most_once_a_second_per_reason(store: JobStore) -> None:
    now = [100.0]
    log = RefusalLog(store, flush_seconds=60, clock=lambda: now[0])
    log.add("deadline", 3)  # the first refusal is written at once
    assert _refusals(store) == [("deadline", 1, 3)]
    now[0] += 1
    for reason, chars in [("deadline", 4), ("queue_full", 5), ("deadline", 6)]:
        log.add(reason, chars)  # within the period: counted in memory only
    assert _refusals(store) == [("deadline", 1, 3)]
    log.close()  # shutdown (or the timer) writes one row per reason
    assert sorted(_refusals(store)[1:]) == [("deadline", 2, 10), ("queue_full", 1, 5)]
    log.close()  # nothing left: no empty rows
    assert len(_refusals(store)) == 3
    now[0] += 61
    log.add("queue_full", 7)  # a quiet period later: at once again
    assert _refusals(store)[-1] == ("queue_full", 1, 7)


def test_disabled_admission_never_refuses(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(
        jobs={"deadline_seconds": 1}, admission={"enabled": False, "max_queue": 1}
    )
    _history(_store(client), seconds=5.0)
    for i in range(3):
        assert client.post("/v1/jobs", json={"text": f"Job {i}."}).status_code == 202
    assert _refusals(_store(client)) == []


# --- a real service under load -------------------------------------------------------------


def test_slow_engine_refuses_new_jobs_and_finishes_the_accepted_ones(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = service_env(
        engine="fake",
        workers="1",
        fake__seconds_per_char="0.02",
        jobs__deadline_seconds="6.5",
        slo__latency_target_seconds="60",  # later than the deadline: the deadline decides
    )
    svc = start_service(env)
    history = svc.submit("H" * 99 + ".")  # 100 characters: about 2 s of synthesis
    assert svc.wait_job(history["id"], timeout=60)["status"] == "succeeded"
    accepted: list[str] = []
    refused: list[Any] = []
    for i in range(8):
        r = svc.http.post("/v1/jobs", json={"text": f"Job {i}: " + "x" * 40 + "."})
        if r.status_code == 202:
            accepted.append(r.json()["id"])
        else:
            refused.append(r)
    # History says ~2 s per job, deadline 6.5 s: two queued ahead is the most that fits. How
    # many get in depends on how fast these requests are against the jobs (about 1 s each).
    assert accepted, [r.text for r in refused]
    assert refused, "the queue cannot finish all of these in time"
    for r in refused:
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 10
        err = r.json()["error"]
        assert err["code"] == "overloaded" and err["reason"] == "deadline"
        assert err["estimated_seconds"] > err["deadline_seconds"] == 6.5
    for job_id in accepted:
        assert svc.wait_job(job_id, timeout=60)["status"] == "succeeded"
    store = JobStore.from_url(f"sqlite:///{(tmp_path / 'data').resolve() / 'steadyvoice.db'}")

    def recorded() -> int:
        return sum(count for _, count, _ in _refusals(store))

    try:
        # Counts are aggregated in memory and written within a second.
        poll(lambda: recorded() == len(refused), 10, "every refusal counted")
        rows = _refusals(store)
    finally:
        store.engine.dispose()
    assert {reason for reason, _, _ in rows} == {"deadline"}
    assert len(rows) <= len(refused)


def test_the_synthesis_estimate_leaves_out_the_slowest_tenth() -> None:
    """Jobs held up by a fault (finished after a 3 s database cut) must not make the queue
    look slow: 50 recent jobs of 0.3 s and 4 that waited out the cut give 0.3 s."""
    assert trimmed_mean([0.3] * 46 + [3.3] * 4) == pytest.approx(0.3)
    # Overload slows every job: the estimate follows it.
    assert trimmed_mean([0.6] * 50) == pytest.approx(0.6)
    # Fewer than 10 spans: none left out.
    assert trimmed_mean([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert trimmed_mean([]) is None
