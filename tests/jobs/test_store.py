"""The job store on SQLite and PostgreSQL: every state change, guard and query."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import update

from steadyvoice.errors import IdempotencyKeyReused, JobNotCancelable, JobNotFound
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import (
    TIMEOUT,
    WORKER_LOST,
    Claim,
    JobStore,
    Result,
    output_name_for,
)

LEASE = 30.0
RESULT = Result(
    engine_version="fake-1+sr16000",
    sample_rate=16_000,
    duration_seconds=1.25,
    sha256="ab" * 32,
    size_bytes=40_044,
)


def set_columns(store: JobStore, job_id: str, **values: Any) -> None:
    """Edit a job row directly, as time passing would (deterministic, no waiting)."""
    with store.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def make_jobs(store: JobStore, n: int) -> list[str]:
    """``n`` queued jobs with distinct, increasing created_at (oldest first in the list)."""
    base = utcnow() - timedelta(minutes=10)
    ids = []
    for i in range(n):
        job, _ = store.create(new_job(f"job number {i}"))
        set_columns(store, job.id, created_at=base + timedelta(seconds=i))
        ids.append(job.id)
    return ids


def expire_lease(store: JobStore, job_id: str) -> None:
    set_columns(store, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))


def claim(store: JobStore, worker_id: str = "w1") -> Claim:
    taken = store.claim(worker_id, LEASE)
    assert taken is not None
    return taken


# --- creating and reading -----------------------------------------------------------------


def test_create_then_get(store: JobStore) -> None:
    before = utcnow()
    job, created = store.create(new_job(request_id="req-1", deadline_seconds=60))
    assert created
    assert re.fullmatch(r"[0-9a-f]{32}", job.id)
    got = store.get(job.id)
    assert got.status == JobStatus.QUEUED.value
    assert (got.text, got.voice, got.engine) == ("Hello there.", "alpha", "fake")
    assert got.engine_version == "fake-1+sr16000"
    assert got.params == {"seed": 42, "speed": 1.0, "format": "wav"}
    assert got.requester == "anonymous" and got.request_id == "req-1"
    assert got.attempts == 0 and got.worker_id is None and got.lease_expires_at is None
    assert got.started_at is None and got.finished_at is None and got.sha256 is None
    assert got.created_at.tzinfo is not None
    assert before <= got.created_at <= utcnow()
    assert got.deadline_at - got.created_at == timedelta(seconds=60)
    assert got.output_name == output_name_for(job.id, got.created_at, "wav")
    assert not store.is_terminal(job.id)


def test_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound) as info:
        store.get("0" * 32)
    assert info.value.code == "job_not_found" and info.value.status == 404
    assert info.value.details == {"job_id": "0" * 32}
    with pytest.raises(JobNotFound):
        store.cancel("0" * 32)


def test_same_idempotency_key_and_body_returns_the_first_job(store: JobStore) -> None:
    first, created = store.create(new_job(idempotency_key="k1"))
    again, created_again = store.create(new_job(idempotency_key="k1", request_id="other"))
    assert created and not created_again
    assert again.id == first.id
    assert store.count_by_status() == {"queued": 1}


def test_same_idempotency_key_with_another_body_is_refused(store: JobStore) -> None:
    first, _ = store.create(new_job(idempotency_key="k1"))
    for changed in (
        new_job("Something else.", idempotency_key="k1"),
        new_job(voice="beta", idempotency_key="k1"),
        new_job(params={"seed": 7, "speed": 1.0, "format": "wav"}, idempotency_key="k1"),
    ):
        with pytest.raises(IdempotencyKeyReused) as info:
            store.create(changed)
        assert info.value.status == 409
        assert info.value.details == {"job_id": first.id}


def test_idempotency_keys_are_per_requester(store: JobStore) -> None:
    mine, _ = store.create(new_job(idempotency_key="k1", requester="alice"))
    theirs, created = store.create(new_job(idempotency_key="k1", requester="bob"))
    assert created and theirs.id != mine.id


def test_without_a_key_every_create_is_a_new_job(store: JobStore) -> None:
    a, _ = store.create(new_job())
    b, created = store.create(new_job())
    assert created and a.id != b.id


# --- claiming and holding -----------------------------------------------------------------


def test_claim_takes_the_oldest_job_and_marks_it_running(store: JobStore) -> None:
    ids = make_jobs(store, 3)
    before = utcnow()
    taken = claim(store, "host:1")
    assert taken.job.id == ids[0]
    assert taken.worker_id == "host:1" and taken.attempt == 1
    row = store.get(ids[0])
    assert row.status == JobStatus.RUNNING.value
    assert row.attempts == 1 and row.worker_id == "host:1"
    assert row.started_at is not None and before <= row.started_at
    assert row.lease_expires_at is not None
    assert row.lease_expires_at - row.started_at == timedelta(seconds=LEASE)
    assert [claim(store).job.id, claim(store).job.id] == ids[1:]
    assert store.claim("w1", LEASE) is None


def test_claim_on_an_empty_queue_returns_none(store: JobStore) -> None:
    assert store.claim("w1", LEASE) is None


def test_claim_skips_jobs_past_their_deadline(store: JobStore) -> None:
    overdue, fresh = make_jobs(store, 2)
    set_columns(store, overdue, deadline_at=utcnow() - timedelta(seconds=1))
    assert claim(store).job.id == fresh
    assert store.claim("w1", LEASE) is None
    assert store.get(overdue).status == JobStatus.QUEUED.value


def test_heartbeat_extends_the_lease(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    first = store.get(taken.job.id).lease_expires_at
    assert first is not None
    assert store.heartbeat(taken, 300.0)
    extended = store.get(taken.job.id).lease_expires_at
    assert extended is not None and extended - first > timedelta(seconds=200)


def test_heartbeat_is_refused_once_the_job_was_canceled(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    store.cancel(taken.job.id)
    assert not store.heartbeat(taken, LEASE)


def test_complete_records_the_result(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    assert store.complete(taken, RESULT)
    row = store.get(taken.job.id)
    assert row.status == JobStatus.SUCCEEDED.value
    assert row.sha256 == RESULT.sha256 and row.size_bytes == RESULT.size_bytes
    assert row.sample_rate == 16_000 and row.duration_seconds == pytest.approx(1.25)
    assert row.engine_version == RESULT.engine_version
    assert row.finished_at is not None and row.lease_expires_at is None
    assert row.error_code is None
    assert store.is_terminal(row.id)
    assert [j.id for j in store.succeeded()] == [row.id]
    # A finished claim cannot be written again.
    assert not store.complete(taken, RESULT)
    assert not store.fail(taken, "engine_error", "late")
    assert not store.heartbeat(taken, LEASE)


def test_a_stale_claim_cannot_complete_after_the_job_was_retried(store: JobStore) -> None:
    make_jobs(store, 1)
    stale = claim(store, "w1")
    expire_lease(store, stale.job.id)
    assert store.reap(max_attempts=3).requeued == [stale.job.id]
    fresh = claim(store, "w2")
    assert fresh.job.id == stale.job.id and fresh.attempt == 2
    assert not store.heartbeat(stale, LEASE)
    assert not store.complete(stale, RESULT)
    assert not store.fail(stale, "engine_error", "too late")
    assert store.get(fresh.job.id).status == JobStatus.RUNNING.value
    assert store.complete(fresh, RESULT)
    assert store.get(fresh.job.id).worker_id == "w2"


def test_same_worker_with_an_old_attempt_token_is_refused(store: JobStore) -> None:
    make_jobs(store, 1)
    old = claim(store, "w1")
    expire_lease(store, old.job.id)
    store.reap(max_attempts=3)
    new = claim(store, "w1")
    assert new.attempt == 2
    assert not store.complete(old, RESULT)
    assert store.complete(new, RESULT)


def test_fail_records_the_error(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    assert store.fail(taken, "engine_error", "x" * 5000)
    row = store.get(taken.job.id)
    assert row.status == JobStatus.FAILED.value
    assert row.error_code == "engine_error"
    assert row.error_message == "x" * 2000
    assert row.finished_at is not None and row.sha256 is None
    assert not store.complete(taken, RESULT)


# --- canceling ----------------------------------------------------------------------------


def test_cancel_a_queued_job(store: JobStore) -> None:
    (job_id,) = make_jobs(store, 1)
    canceled = store.cancel(job_id)
    assert canceled.status == JobStatus.CANCELED.value
    assert canceled.finished_at is not None
    assert store.claim("w1", LEASE) is None


def test_cancel_a_running_job_discards_its_result(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    assert store.cancel(taken.job.id).status == JobStatus.CANCELED.value
    assert not store.complete(taken, RESULT)
    row = store.get(taken.job.id)
    assert row.status == JobStatus.CANCELED.value and row.sha256 is None


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_finished_jobs_cannot_be_canceled(store: JobStore, end: str) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    if end == "complete":
        store.complete(taken, RESULT)
    elif end == "fail":
        store.fail(taken, "engine_error", "boom")
    else:
        store.cancel(taken.job.id)
    status = store.get(taken.job.id).status
    with pytest.raises(JobNotCancelable) as info:
        store.cancel(taken.job.id)
    assert info.value.status == 409
    assert info.value.details == {"job_id": taken.job.id, "status": status}
    assert store.get(taken.job.id).status == status


# --- reaping ------------------------------------------------------------------------------


def test_reap_leaves_live_leases_alone(store: JobStore) -> None:
    make_jobs(store, 2)
    taken = claim(store)
    report = store.reap(max_attempts=3)
    assert (report.requeued, report.lost, report.timed_out) == ([], [], [])
    assert store.get(taken.job.id).status == JobStatus.RUNNING.value


def test_reap_requeues_an_expired_lease_keeping_attempts(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    expire_lease(store, taken.job.id)
    report = store.reap(max_attempts=3)
    assert report.requeued == [taken.job.id] and report.lost == [] and report.timed_out == []
    row = store.get(taken.job.id)
    assert row.status == JobStatus.QUEUED.value
    assert row.attempts == 1
    assert row.worker_id is None and row.lease_expires_at is None
    assert store.reap(max_attempts=3).requeued == []


def test_reap_with_a_real_short_lease(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = store.claim("w1", 0.001)
    assert taken is not None
    deadline = utcnow() + timedelta(seconds=10)
    requeued: list[str] = []
    while not requeued and utcnow() < deadline:
        requeued = store.reap(max_attempts=3).requeued
    assert requeued == [taken.job.id]


def test_reap_fails_a_job_that_used_all_its_attempts(store: JobStore) -> None:
    make_jobs(store, 1)
    for attempt in (1, 2):
        taken = claim(store)
        assert taken.attempt == attempt
        expire_lease(store, taken.job.id)
        report = store.reap(max_attempts=2)
    assert report.lost == [taken.job.id] and report.requeued == []
    row = store.get(taken.job.id)
    assert row.status == JobStatus.FAILED.value
    assert row.error_code == WORKER_LOST
    assert row.error_message is not None and "2 of 2" in row.error_message
    assert row.attempts == 2 and row.finished_at is not None
    assert store.claim("w1", LEASE) is None


@pytest.mark.parametrize("running", [False, True], ids=["queued", "running"])
def test_reap_times_out_jobs_past_their_deadline(store: JobStore, running: bool) -> None:
    overdue, on_time = make_jobs(store, 2)
    if running:
        assert claim(store).job.id == overdue
    set_columns(store, overdue, deadline_at=utcnow() - timedelta(seconds=1))
    report = store.reap(max_attempts=3)
    assert report.timed_out == [overdue] and report.requeued == [] and report.lost == []
    row = store.get(overdue)
    assert row.status == JobStatus.FAILED.value
    assert row.error_code == TIMEOUT
    assert row.finished_at is not None and row.lease_expires_at is None
    assert store.get(on_time).status == JobStatus.QUEUED.value


def test_reap_fails_an_overdue_job_with_an_expired_lease_once(store: JobStore) -> None:
    make_jobs(store, 1)
    job_id = claim(store).job.id
    set_columns(
        store,
        job_id,
        deadline_at=utcnow() - timedelta(seconds=1),
        lease_expires_at=utcnow() - timedelta(seconds=1),
    )
    report = store.reap(max_attempts=3)
    assert report.timed_out == [job_id] and report.requeued == [] and report.lost == []
    assert store.get(job_id).error_code == TIMEOUT


def test_reap_does_not_touch_finished_jobs_past_their_deadline(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store)
    store.complete(taken, RESULT)
    set_columns(store, taken.job.id, deadline_at=utcnow() - timedelta(seconds=1))
    assert store.reap(max_attempts=3).timed_out == []
    assert store.get(taken.job.id).status == JobStatus.SUCCEEDED.value


def test_release_worker_requeues_only_that_workers_jobs(store: JobStore) -> None:
    make_jobs(store, 3)
    dead = claim(store, "dead:1")
    alive = claim(store, "alive:2")
    report = store.release_worker("dead:1", max_attempts=3)
    assert report.requeued == [dead.job.id] and report.lost == []
    assert store.get(dead.job.id).status == JobStatus.QUEUED.value
    assert store.get(dead.job.id).attempts == 1
    assert store.get(alive.job.id).status == JobStatus.RUNNING.value
    assert store.release_worker("nobody:3", max_attempts=3).requeued == []


def test_release_worker_at_max_attempts_fails_the_job(store: JobStore) -> None:
    make_jobs(store, 1)
    taken = claim(store, "dead:1")
    report = store.release_worker("dead:1", max_attempts=1)
    assert report.lost == [taken.job.id]
    assert store.get(taken.job.id).error_code == WORKER_LOST


# --- queries ------------------------------------------------------------------------------


def test_list_jobs_filters_by_status(store: JobStore) -> None:
    ids = make_jobs(store, 4)
    claim(store)
    store.cancel(ids[1])
    assert [j.id for j in store.list_jobs(status=JobStatus.QUEUED)] == [ids[3], ids[2]]
    assert [j.id for j in store.list_jobs(status=JobStatus.RUNNING)] == [ids[0]]
    assert [j.id for j in store.list_jobs(status=JobStatus.CANCELED)] == [ids[1]]
    assert store.list_jobs(status=JobStatus.FAILED) == []
    assert [j.id for j in store.list_jobs()] == ids[::-1]


def test_list_jobs_filters_by_creation_time(store: JobStore) -> None:
    ids = make_jobs(store, 5)
    times = [store.get(i).created_at for i in ids]
    after = store.list_jobs(created_after=times[2])
    assert [j.id for j in after] == [ids[4], ids[3], ids[2]]
    before = store.list_jobs(created_before=times[2])
    assert [j.id for j in before] == [ids[1], ids[0]]
    window = store.list_jobs(created_after=times[1], created_before=times[3])
    assert [j.id for j in window] == [ids[2], ids[1]]
    assert store.list_jobs(created_after=utcnow() + timedelta(hours=1)) == []


def test_list_jobs_pages_without_duplicates_or_gaps(store: JobStore) -> None:
    base = utcnow() - timedelta(minutes=5)
    ids = []
    for i in range(7):
        job, _ = store.create(new_job(f"page {i}"))
        # Pairs share a timestamp so the id tie-break is exercised too.
        set_columns(store, job.id, created_at=base + timedelta(seconds=i // 2))
        ids.append(job.id)
    expected = [
        j.id
        for j in sorted(
            (store.get(i) for i in ids), key=lambda j: (j.created_at, j.id), reverse=True
        )
    ]
    seen: list[str] = []
    cursor: tuple[datetime, str] | None = None
    sizes = []
    while True:
        page = store.list_jobs(before=cursor, limit=3)
        sizes.append(len(page))
        seen.extend(j.id for j in page)
        if len(page) < 3:
            break
        cursor = (page[-1].created_at, page[-1].id)
    assert sizes == [3, 3, 1]
    assert seen == expected
    assert len(set(seen)) == 7


def test_output_name_format() -> None:
    created = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)
    name = output_name_for("0123456789abcdef" * 2, created, "wav")
    assert name == "2024/03/05/output_20240305_070809_0123456789ab.wav"


def test_created_jobs_get_a_dated_output_name(store: JobStore) -> None:
    job, _ = store.create(new_job())
    pattern = r"(\d{4})/(\d{2})/(\d{2})/output_(\d{8})_\d{6}_([0-9a-f]{12})\.wav"
    match = re.fullmatch(pattern, job.output_name)
    assert match is not None
    year, month, day, stamp, short = match.groups()
    assert stamp == f"{year}{month}{day}" == f"{job.created_at:%Y%m%d}"
    assert short == job.id[:12]


def test_count_by_status(store: JobStore) -> None:
    assert store.count_by_status() == {}
    ids = make_jobs(store, 4)
    claim(store)
    store.cancel(ids[1])
    assert store.count_by_status() == {"queued": 2, "running": 1, "canceled": 1}


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_claimers_take_every_job_exactly_once(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    seed = store_factory(db_url)
    ids = make_jobs(seed, 20)
    stores = [store_factory(db_url) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def drain(worker: int) -> list[str]:
        start.wait(timeout=30)
        taken = []
        while (got := stores[worker].claim(f"w{worker}", LEASE)) is not None:
            taken.append(got.job.id)
        return taken

    with ThreadPoolExecutor(len(stores)) as pool:
        per_worker = list(pool.map(drain, range(len(stores))))
    claimed = [job_id for taken in per_worker for job_id in taken]
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == len(claimed)
    for worker, taken in enumerate(per_worker):
        for job_id in taken:
            row = seed.get(job_id)
            assert row.attempts == 1
            assert row.worker_id == f"w{worker}"
            assert row.status == JobStatus.RUNNING.value
    assert seed.count_by_status() == {"running": 20}


def test_two_claimers_racing_for_one_job_exactly_one_wins(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    stores = [store_factory(db_url), store_factory(db_url)]
    start = threading.Barrier(2)

    def race(worker: int) -> Claim | None:
        start.wait(timeout=30)
        return stores[worker].claim(f"w{worker}", LEASE)

    with ThreadPoolExecutor(2) as pool:
        for _ in range(20):
            job, _ = stores[0].create(new_job())
            results = list(pool.map(race, range(2)))
            winners = [r for r in results if r is not None]
            assert len(winners) == 1
            assert winners[0].job.id == job.id and winners[0].attempt == 1
            assert stores[1].get(job.id).attempts == 1
    assert stores[0].count_by_status() == {"running": 20}


def test_concurrent_creates_with_one_idempotency_key_make_one_job(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    stores = [store_factory(db_url) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def create(worker: int) -> tuple[str, bool]:
        start.wait(timeout=30)
        job, created = stores[worker].create(new_job(idempotency_key="same"))
        return job.id, created

    with ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(create, range(len(stores))))
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert stores[0].count_by_status() == {"queued": 1}
