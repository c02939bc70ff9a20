"""Celery + Redis dispatch against real processes: two API processes and three Celery workers,
each with its own data dir, sharing only PostgreSQL, Redis (a server of the module's own) and
the S3 test server. The job row is the record of truth: a repeated, lost or orphaned message
delays a job, never loses it or runs it twice.

The processes are shared by the module; the tests run in file order, the disruptive ones last.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from celery_topology import RedisServer, Topology, pg_database, submit_many
from factories import new_job  # type: ignore[import-not-found]
from processes import poll, run_cli  # type: ignore[import-not-found]
from s3_server import S3Server  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]
from sqlalchemy import select, update

from steadyvoice.dispatch.celery_app import TASK, celery_app
from steadyvoice.dispatch.outbox import Outbox
from steadyvoice.jobs.models import Job as JobRow
from steadyvoice.jobs.models import Worker
from steadyvoice.settings import Settings

# The figure. Against 60 jobs it adds about 16 s to the module (2-core machine,
# lightly loaded: 59 s -> 75 s); the API processes take the submits side by side.
FLEET_JOBS = int(os.environ.get("STEADYVOICE_TEST_FLEET_JOBS", "300"))
FLEET_SECONDS = max(120.0, FLEET_JOBS * 0.6)  # a heavily loaded one ran 300 in 98 s
SLOW = {"fake__seconds_per_char": "0.02"}  # about 2 s for the 100-character jobs below
CONSENT = "Recorded and consented to by the speaker for steadyvoice tests, 2026-12-07."
LONG_TEXT = "A sentence long enough to be killed in. " * 2 + "The end."

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("celery")
    broker = RedisServer(root / "redis.log")
    broker.start()
    with pg_database() as db_url:
        topo = Topology(root, db_url, broker, s3_server)
        try:
            topo.start_api()  # first and alone: it migrates the database
            topo.start_api(wait=False)  # the rest start side by side
            for _ in range(3):
                topo.start_worker("fake")
            # Consumes `piper` only: the routing test's, slow enough to be killed mid-job, and
            # recycled by Celery every 2 messages (worker.max_jobs).
            topo.start_worker("piper", worker__max_jobs="2", **SLOW)
            topo.wait_apis()
            topo.wait_workers_ready(4)
            yield topo
        finally:
            topo.stop()
            broker.kill()


def _publish(fleet: Topology, engine: str, text: str, lane: str = "interactive") -> str:
    """A job for ``engine`` recorded and sent as an API would (its queue is the engine's)."""
    job, _ = fleet.store.create(new_job(text, engine=engine))
    if lane != "interactive":  # as the batch store records its items
        with fleet.store.session() as s:
            s.execute(update(JobRow).where(JobRow.id == job.id).values(lane=lane))
    settings = Settings(
        database_url=fleet.db_url,
        dispatch={"backend": "celery", "broker_url": fleet.broker.url},
    )
    Outbox(fleet.store, celery_app(settings), 2.0).notify(job.id)  # or the APIs' reaper first
    return job.id


def _piper_recycles(fleet: Topology) -> int:
    with fleet.store.reading() as s:
        rows = list(s.scalars(select(Worker).where(Worker.queues == "piper")))
    return max((w.recycles for w in rows), default=0)


@pytest.mark.timeout(FLEET_SECONDS + 120)  # with the fleet's start (1.5 min, loaded)
def test_jobs_succeed_exactly_once_with_hashes_and_verify_clean(fleet: Topology) -> None:
    ids = submit_many(fleet.apis, FLEET_JOBS)
    jobs = fleet.wait_finished(ids, timeout=FLEET_SECONDS)
    assert {j.status for j in jobs} == {"succeeded"}
    assert {j.attempts for j in jobs} == {1}  # one claim each: no job ran twice
    assert all(j.sha256 and j.published_at for j in jobs)
    assert len({j.worker_id for j in jobs}) > 1  # spread over the workers
    outputs = {f"sv/outputs/{j.output_name}" for j in jobs}
    assert outputs <= fleet.output_keys()
    # Any host can verify: another data dir, the shared database and bucket.
    result = run_cli(["verify"], fleet.root / "verify", **fleet.env("verify"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{FLEET_JOBS} ok" in result.stdout or "0 missing, 0 corrupt" in result.stdout


def test_a_duplicate_message_for_a_finished_job_is_dropped(fleet: Topology) -> None:
    [job_id] = submit_many(fleet.apis[:1], 1)
    [done] = fleet.wait_finished([job_id], timeout=30)
    keys = fleet.output_keys()
    settings = Settings(
        database_url=fleet.db_url,
        dispatch={"backend": "celery", "broker_url": fleet.broker.url},
    )
    celery_app(settings).send_task(TASK, args=[job_id], queue="fake")
    poll(
        lambda: f'"job_id": "{job_id}"' in fleet.logs() and "job.message_dropped" in fleet.logs(),
        30,
        "the duplicate to be dropped",
        every=0.2,
    )
    [again] = fleet.jobs([job_id])
    assert (again.attempts, again.sha256, again.finished_at) == (1, done.sha256, done.finished_at)
    assert fleet.output_keys() == keys  # no second file


def test_a_voice_profile_reaches_remote_workers_through_s3_alone(fleet: Topology) -> None:
    created = fleet.apis[1].http.post(
        "/v1/voices",
        data={"name": "Remote", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
    )
    assert created.status_code == 201, created.text
    sha = created.json()["reference"]["sha256"]
    [job_id] = submit_many(fleet.apis[:1], 1, voice=created.json()["id"])
    [job] = fleet.wait_finished([job_id], timeout=30)
    assert job.status == "succeeded", job.error_message
    # The worker fetched the reference from the bucket into its own data dir, by SHA-256.
    cached = list(fleet.root.glob(f"worker-*/cache/references/{sha}*"))
    assert len(cached) >= 1
    assert not list(fleet.root.glob("*/outputs/*/*/*/*.wav"))  # outputs only in the bucket


def test_routing_a_cosyvoice_job_is_never_taken_by_a_piper_worker(fleet: Topology) -> None:
    cosy = _publish(fleet, "cosyvoice", "For the GPU hosts only.")
    piper = _publish(fleet, "piper", "For the CPU hosts.")
    [ran] = fleet.wait_finished([piper], timeout=30)
    assert ran.status == "succeeded"
    [waiting] = fleet.jobs([cosy])
    assert (waiting.status, waiting.attempts) == ("queued", 0)
    assert fleet.broker.client().llen("cosyvoice") >= 1  # still there, for a cosyvoice host
    fleet.store.cancel(cosy)  # a canceled job's message is dropped at claim


def test_a_worker_killed_mid_job_the_job_succeeds_once(fleet: Topology) -> None:
    job_id = _publish(fleet, "piper", LONG_TEXT)
    running = poll(
        lambda: next((j for j in fleet.jobs([job_id]) if j.status == "running"), None),
        30,
        "the job to start",
    )
    os.kill(fleet.worker_pid(running.worker_id), signal.SIGKILL)  # the pool child, mid-job
    [done] = fleet.wait_finished([job_id], timeout=60)
    assert done.status == "succeeded"
    assert done.attempts == 2  # the killed claim, then one that finished
    assert done.worker_id != running.worker_id
    assert f"sv/outputs/{done.output_name}" in fleet.output_keys()


def test_the_fleet_view_and_celery_recycling(fleet: Topology) -> None:
    before = _piper_recycles(fleet)
    ids = [_publish(fleet, "piper", f"Short job {i}.") for i in range(3)]  # max_jobs is 2
    assert {j.status for j in fleet.wait_finished(ids, timeout=60)} == {"succeeded"}
    poll(lambda: _piper_recycles(fleet) > before, 30, "the recycled child's row", every=0.2)
    with fleet.store.reading() as s:
        rows = list(s.scalars(select(Worker)))
    assert [w.queues for w in rows].count("fake") == 3
    assert '"reason": "max_jobs"' in fleet.workers[3].log()
    # Idle Celery workers wait for messages far past the stall limit (4 s here): no alarm.
    assert not any("worker.stalled" in w.log() for w in fleet.workers)


def test_redis_restarted_while_a_job_runs(fleet: Topology) -> None:
    job_id = _publish(fleet, "piper", LONG_TEXT)
    poll(lambda: fleet.jobs([job_id])[0].status == "running", 30, "the job to start", every=0.1)
    fleet.broker.kill()  # its message (delivered, unacknowledged) goes with it
    fleet.broker.start()
    [done] = fleet.wait_finished([job_id], timeout=60)
    assert (done.status, done.attempts) == ("succeeded", 1)
    # The workers reconnected: the next job goes through the restarted broker.
    [after] = fleet.wait_finished([_publish(fleet, "piper", "After the restart.")], timeout=60)
    assert after.status == "succeeded"


def test_an_interactive_job_goes_before_waiting_batch_items(fleet: Topology) -> None:
    fleet.signal_workers(signal.SIGSTOP)
    try:
        batch = [_publish(fleet, "piper", f"Batch item {i}.", lane="batch") for i in range(3)]
        interactive = _publish(fleet, "piper", "Someone is waiting for this.")
    finally:
        fleet.signal_workers(signal.SIGCONT)
    jobs = {j.id: j for j in fleet.wait_finished([*batch, interactive], timeout=60)}
    assert {j.status for j in jobs.values()} == {"succeeded"}
    # The stopped worker may have been handed the first batch item already; no other.
    starts = sorted(jobs[b].started_at for b in batch)
    assert jobs[interactive].started_at < starts[1]


def test_a_job_canceled_while_its_message_waits_is_dropped_at_claim(fleet: Topology) -> None:
    fleet.signal_workers(signal.SIGSTOP)
    try:
        [job_id] = submit_many(fleet.apis[:1], 1)
        canceled = fleet.apis[0].http.post(f"/v1/jobs/{job_id}/cancel")
        assert canceled.status_code == 200, canceled.text
    finally:
        fleet.signal_workers(signal.SIGCONT)
    poll(
        lambda: f'"job_id": "{job_id}", "status": "canceled"' in fleet.logs(),
        30,
        "the canceled job's message to be dropped",
        every=0.2,
    )
    [job] = fleet.jobs([job_id])
    assert (job.status, job.attempts) == ("canceled", 0)


def test_redis_restarted_and_messages_lost_every_job_finishes(fleet: Topology) -> None:
    fleet.signal_workers(signal.SIGSTOP)  # messages pile up in Redis, unconsumed
    try:
        sent = submit_many(fleet.apis, 10)
        assert fleet.broker.client().llen("fake") >= 5
        fleet.broker.kill()  # no persistence: every waiting message is gone
        unsent = submit_many(fleet.apis, 4)  # the broker is down: recorded, sent later
        fleet.broker.start()  # a fresh, empty Redis on the same port
    finally:
        fleet.signal_workers(signal.SIGCONT)
    jobs = fleet.wait_finished(sent + unsent, timeout=90)
    assert {j.status for j in jobs} == {"succeeded"}
    assert {j.attempts for j in jobs} == {1}
    assert "job.republished" in "".join(api.log() for api in fleet.apis)


def test_a_flushed_redis_loses_messages_and_republishing_recovers(fleet: Topology) -> None:
    fleet.signal_workers(signal.SIGSTOP)
    try:
        ids = submit_many(fleet.apis, 6)
        fleet.broker.client().flushall()
    finally:
        fleet.signal_workers(signal.SIGCONT)
    jobs = fleet.wait_finished(ids, timeout=60)
    assert {j.status for j in jobs} == {"succeeded"}
    assert {j.attempts for j in jobs} == {1}
