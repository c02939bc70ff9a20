"""Batch lanes under Celery dispatch, against real processes: an API process and two Celery
workers with ``batch.max_running=1``, sharing PostgreSQL, a Redis of the module's own and the
S3 test server. The cap holds fleet-wide, an interactive job goes before waiting batch items,
tenants' batches take turns, and every item runs exactly once with no message lost.

The processes are shared by the module; a sampler watches the store for the whole module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise

import pytest
from celery_topology import RedisServer, Topology, pg_database
from processes import Service, poll  # type: ignore[import-not-found]
from s3_server import S3Server  # type: ignore[import-not-found]
from sqlalchemy import func, select

from steadyvoice.jobs.models import Job

CAP = 1
SECONDS_PER_CHAR = 0.01  # a 30-character item runs about 0.3 s
HOLD_SECONDS = 1.0  # shorter than the long items below: a held message goes back to its queue

pytestmark = pytest.mark.timeout(180)


class RunningSampler:
    """Counts the running batch items in the store, over and over, in a thread."""

    def __init__(self, topo: Topology) -> None:
        self._topo = topo
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        query = select(func.count()).where(Job.status == "running", Job.lane == "batch")
        while not self._stop.wait(0.01):
            with self._topo.store.reading() as s:
                self.samples.append(int(s.scalar(query) or 0))

    def __enter__(self) -> RunningSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def lanes(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[tuple[Topology, RunningSampler]]:
    root = tmp_path_factory.mktemp("celery-lanes")
    broker = RedisServer(root / "redis.log")
    broker.start()
    with pg_database() as db_url:
        topo = Topology(root, db_url, broker, s3_server)
        try:
            topo.start_api()
            for _ in range(2):
                topo.start_worker(
                    "fake",
                    batch__max_running=str(CAP),
                    dispatch__batch_hold_seconds=str(HOLD_SECONDS),
                    fake__seconds_per_char=str(SECONDS_PER_CHAR),
                )
            topo.wait_workers_ready(2)
            with RunningSampler(topo) as sampler:
                yield topo, sampler
        finally:
            topo.stop()
            broker.kill()


def _tenant_key(api: Service, tenant: str) -> dict[str, str]:
    made = api.http.post("/v1/keys", json={"role": "operator", "tenant": tenant, "name": tenant})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def _submit_batch(topo: Topology, tenant: str, texts: list[str]) -> list[str]:
    """A batch of ``texts`` for ``tenant`` through the API; its items' job ids, by row."""
    api = topo.apis[0]
    items = [{"text": text} for text in texts]
    made = api.http.post("/v1/batches", json={"items": items}, headers=_tenant_key(api, tenant))
    assert made.status_code == 202, made.text
    with topo.store.reading() as s:
        rows = s.execute(
            select(Job.id).where(Job.batch_id == made.json()["id"]).order_by(Job.batch_row)
        )
        return list(rows.scalars())


def _started_at(job: Job) -> datetime:
    assert job.started_at is not None, job.id
    return job.started_at


def test_an_interactive_job_starts_before_waiting_batch_items(
    lanes: tuple[Topology, RunningSampler],
) -> None:
    topo, _ = lanes
    # About 1.5 s each: longer than a held message's hold, so holds run out and go back.
    long = "A batch item long enough to keep the single batch slot busy for a while. " * 2
    batch = _submit_batch(topo, "lanes-i", [f"{i}. {long}" for i in range(4)])
    poll(lambda: topo.jobs(batch[:1])[0].status == "running", 30, "the first item to run")

    interactive = topo.apis[0].submit("Someone is waiting for this one.")["id"]
    waiting = [j.id for j in topo.jobs(batch) if j.status == "queued"]
    assert len(waiting) >= 2

    jobs = {j.id: j for j in topo.wait_finished([*batch, interactive], timeout=60)}
    assert {j.status for j in jobs.values()} == {"succeeded"}
    # A free worker held a batch message at the cap; it ran the interactive job meanwhile.
    assert _started_at(jobs[interactive]) < min(_started_at(jobs[j]) for j in waiting)
    assert jobs[interactive].lane == "interactive"


def test_two_tenants_batches_take_turns(lanes: tuple[Topology, RunningSampler]) -> None:
    topo, _ = lanes
    first = _submit_batch(topo, "lanes-a", [f"Tenant A, lesson line {i}." for i in range(6)])
    poll(lambda: any(j.status != "queued" for j in topo.jobs(first)), 30, "tenant A to start")
    second = _submit_batch(topo, "lanes-b", [f"Tenant B, lesson line {i}." for i in range(6)])
    jobs = topo.wait_finished([*first, *second], timeout=60)
    assert {j.status for j in jobs} == {"succeeded"}

    b_began = min(j.created_at for j in jobs if j.tenant == "lanes-b")
    turns = [j.tenant for j in sorted(jobs, key=_started_at) if _started_at(j) > b_began]
    while len(set(turns[-2:])) == 1 and len(turns) > 1:  # one tenant's items left alone
        turns.pop()
    # The claims alternate while both tenants have items queued (A's 6 came first).
    assert len(turns) >= 6, turns
    assert all(a != b for a, b in pairwise(turns)), turns


def test_the_cap_held_fleet_wide_and_every_item_ran_once(
    lanes: tuple[Topology, RunningSampler],
) -> None:
    topo, sampler = lanes
    with topo.store.reading() as s:
        items = list(s.scalars(select(Job).where(Job.lane == "batch")))
    assert len(items) == 16
    assert {(j.status, j.attempts) for j in items} == {("succeeded", 1)}
    assert len({j.output_name for j in items}) == len(items)
    assert {f"sv/outputs/{j.output_name}" for j in items} <= topo.output_keys()

    assert max(sampler.samples) <= CAP, "more batch items ran at once than batch.max_running"
    assert max(sampler.samples) == CAP, "the sampler saw no batch item run"
    # Every batch message was accounted for: it claimed one item, went back, or was dropped
    # once no item was left; none is left over.
    client = topo.broker.client()
    poll(lambda: client.llen("fake.batch") == 0, 30, "the batch queue to drain", every=0.2)
    assert "job.message_requeued" in "".join(w.log() for w in topo.workers)  # holds ran out
