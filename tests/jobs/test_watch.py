"""Is the running job still ours? The check between sentences, and a plain (not streamed) job
that stops at the next sentence once it is canceled, writing nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from steadyvoice.engines.base import Audio, SynthesisRequest
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.engines.interrupt import Abandoned, checkpoint, current, watching
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.settings import FakeSettings
from steadyvoice.storage.local import LocalStorage

pytestmark = pytest.mark.timeout(60)

TEXT = " ".join(f"Sentence number {n} is here." for n in range(1, 9))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _claimed(store: JobStore, text: str = TEXT) -> Claim:
    job, _ = store.create(new_job(text))
    claim = store.claim("host:1", 30)
    assert claim is not None and claim.job.id == job.id
    return claim


def _abandoned(watch: ClaimWatch) -> Abandoned:
    with pytest.raises(Abandoned) as caught:
        watch.check()
    return caught.value


def test_a_cancel_is_seen_at_the_first_check_after_the_poll_interval(store: JobStore) -> None:
    claim = _claimed(store)
    clock = Clock()
    watch = ClaimWatch(store, claim, poll_seconds=0.5, clock=clock)
    watch.check()
    store.cancel(claim.job.id)
    clock.now += 0.4
    watch.check()  # not due yet: no read of the store on every sentence
    assert not watch.gone
    clock.now += 0.1
    stop = _abandoned(watch)
    assert (stop.reason, stop.status) == ("canceled", "canceled")
    assert watch.gone
    clock.now += 3600  # once gone, always gone, whatever the store says later
    assert _abandoned(watch).reason == "canceled"


def test_a_refused_lease_renewal_stops_the_next_check_at_once(store: JobStore) -> None:
    claim = _claimed(store)
    clock = Clock()
    watch = ClaimWatch(store, claim, poll_seconds=60, clock=clock)
    assert store.release_worker("host:1", max_attempts=3).requeued == [claim.job.id]
    assert not store.heartbeat(claim, 30)  # what the worker's heartbeat thread sees
    assert watch.lost().reason == "lease_lost"
    stop = _abandoned(watch)  # no poll due: the heartbeat's word is enough
    assert (stop.reason, stop.status) == ("lease_lost", "queued")


def test_a_job_past_its_deadline_is_abandoned_as_timeout(store: JobStore) -> None:
    claim = _claimed(store)
    with store.session() as s:
        past = utcnow() - timedelta(seconds=1)
        s.execute(update(Job).where(Job.id == claim.job.id).values(deadline_at=past))
    assert store.reap(max_attempts=3).timed_out == [claim.job.id]
    stop = _abandoned(ClaimWatch(store, claim, poll_seconds=0))
    assert (stop.reason, stop.status) == ("timeout", "failed")


def test_a_held_claim_passes_every_check(store: JobStore) -> None:
    claim = _claimed(store)
    watch = ClaimWatch(store, claim, poll_seconds=0)
    for _ in range(3):
        watch.check()
    assert not watch.gone


class _StoreDown:
    """A job store whose database does not answer."""

    def reading(self, *_: object) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    get = reading


def test_a_database_blip_does_not_stop_the_job(store: JobStore) -> None:
    claim = _claimed(store)
    watch = ClaimWatch(cast(JobStore, _StoreDown()), claim, poll_seconds=0)
    watch.check()  # cannot tell: carry on, the heartbeat and the final write still guard it
    assert not watch.gone
    stop = watch.lost()  # a fenced write was refused, but why cannot be read
    assert (stop.reason, stop.status) == ("lease_lost", "unknown")


def test_checkpoint_calls_the_current_jobs_check_only_inside_it() -> None:
    calls: list[str] = []
    checkpoint()  # outside a job (warm-up, the CLI): nothing to ask
    assert current() is None
    with watching(lambda: calls.append("checked")):
        checkpoint()
        assert current() is not None
    checkpoint()
    assert calls == ["checked"]


# --- the runner: a plain job stops at the next sentence ------------------------------------


class _CanceledWhileMaking(FakeEngine):
    """The fake engine; the job is canceled (as by an API call) while sentence 2 is made."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        super().__init__(FakeSettings())
        self._store = store
        self._job_id = job_id
        self.made = 0

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        for piece in super().stream(request):
            self.made += 1
            if self.made == 2:
                self._store.cancel(self._job_id)
            yield piece


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_a_canceled_plain_job_stops_at_the_next_sentence(
    store: JobStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claimed(store)
    engine = _CanceledWhileMaking(store, claim.job.id)
    caplog.set_level(logging.INFO, logger="steadyvoice")
    watch = ClaimWatch(store, claim, poll_seconds=0)
    assert run_claimed(claim, engine, store, storage, watch=watch) == "canceled"
    assert engine.made == 2, "of 8 sentences: the one in progress at the cancel is the last"
    job = store.get(claim.job.id)
    assert job.status == "canceled" and job.sha256 is None
    assert not storage.path(job.output_name).exists()
    assert not any(p.is_file() for p in tmp_path.rglob("*") if "out" in p.parts), "no temp files"
    [stop] = _events(caplog, "job.abandoned")
    assert (stop.__dict__["reason"], stop.__dict__["status"]) == ("canceled", "canceled")
    assert not _events(caplog, "job.succeeded") and not _events(caplog, "job.failed")


def test_a_job_canceled_after_its_last_sentence_is_not_encoded_or_stored(
    store: JobStore, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claimed(store, "One. Two.")
    engine = _CanceledWhileMaking(store, claim.job.id)  # canceled at the last sentence
    watch = ClaimWatch(store, claim, poll_seconds=0)
    assert run_claimed(claim, engine, store, storage, watch=watch) == "canceled"
    assert engine.made == 2
    assert not storage.path(store.get(claim.job.id).output_name).exists()
