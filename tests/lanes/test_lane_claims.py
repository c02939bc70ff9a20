"""The claim order: interactive jobs before batch items, batch items fairly by tenant and batch
(steadyvoice.jobs.claims), on SQLite and PostgreSQL."""

from __future__ import annotations

from factories import RESULT, new_job  # type: ignore[import-not-found]
from lane_jobs import queue_batch  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore


def claim_ids(store: JobStore, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        claim = store.claim("w1", 30)
        assert claim is not None
        ids.append(claim.job.id)
    return ids


def started_order(store: JobStore) -> list[str]:
    with store.reading() as s:
        q = select(Job.id).where(Job.started_at.is_not(None)).order_by(Job.started_at)
        return list(s.scalars(q))


def test_interactive_jobs_go_before_a_queued_300_item_batch(store: JobStore) -> None:
    batch = queue_batch(store, "school", "b" * 32, 300)
    assert claim_ids(store, 2) == batch[:2]  # the batch runs while nothing else waits
    interactive = [store.create(new_job(f"Reply {i}."))[0].id for i in range(3)]
    assert claim_ids(store, 3) == interactive
    assert claim_ids(store, 1) == [batch[2]]  # then the batch goes on, in row order
    # The records say the same: each interactive job started before every later batch item.
    assert started_order(store) == [*batch[:2], *interactive, batch[2]]
    with store.reading() as s:
        lanes = dict(s.execute(select(Job.id, Job.lane).where(Job.id.in_(interactive))).all())
    assert set(lanes.values()) == {"interactive"}


def test_two_tenants_batches_interleave_and_a_tenants_batches_take_turns(
    store: JobStore,
) -> None:
    big_a = queue_batch(store, "bank", "a" * 32, 40)  # queued first, and 4x the size
    big_b = queue_batch(store, "bank", "b" * 32, 40)
    small = queue_batch(store, "school", "c" * 32, 3)
    taken = claim_ids(store, 10)
    owner = {**dict.fromkeys(big_a, "A"), **dict.fromkeys(big_b, "B"), **dict.fromkeys(small, "S")}
    tenants = ["S" if owner[i] == "S" else "bank" for i in taken]
    # The small tenant gets every other turn until its 3 items are done.
    assert tenants[:6] in (["bank", "S"] * 3, ["S", "bank"] * 3)
    # The bank's own two batches alternate, each in row order.
    bank = [owner[i] for i in taken if owner[i] != "S"]
    assert bank in (["A", "B", "A", "B", "A", "B", "A"], ["B", "A", "B", "A", "B", "A", "B"])
    assert [i for i in taken if owner[i] == "A"] == big_a[: bank.count("A")]
    assert store.claim("w1", 30) is not None  # and the rest still runs


def test_a_batch_of_expired_items_does_not_block_the_others(store: JobStore) -> None:
    stale = queue_batch(store, "bank", "d" * 32, 3)
    fresh = queue_batch(store, "school", "e" * 32, 2)
    with store.session() as s:
        for job in s.scalars(select(Job).where(Job.id.in_(stale))):
            job.deadline_at = job.created_at
    assert sorted(claim_ids(store, 2)) == sorted(fresh)  # (until the reaper fails the stale)
    assert store.claim("w1", 30) is None


def test_batch_max_running_keeps_workers_free_for_interactive_jobs(store: JobStore) -> None:
    batch = queue_batch(store, "bank", "a" * 32, 5)
    first = store.claim("w1", 30, batch_max_running=1)
    assert first is not None and first.job.id == batch[0]
    assert store.claim("w2", 30, batch_max_running=1) is None  # the cap: w2 stays free
    reply = store.create(new_job("Reply."))[0]
    second = store.claim("w2", 30, batch_max_running=1)
    assert second is not None and second.job.id == reply.id  # ... for this
    assert store.complete(first, RESULT)
    third = store.claim("w1", 30, batch_max_running=1)
    assert third is not None and third.job.id == batch[1]
