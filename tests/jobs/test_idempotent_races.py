"""A repeated request (same ``Idempotency-Key``, same body) racing its original is answered with
the original's job: never refused by admission control or the in-flight quota for the place that
very job holds, and never a second row. Each race is forced: the first request is paused at a
chosen point, the second runs to completion, then the first goes on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steadyvoice.engines.registry import build_engine
from steadyvoice.errors import IdempotencyKeyReused
from steadyvoice.jobs.dispatch import NullDispatcher
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore, NewJob
from steadyvoice.jobs.submit import JobRequest, JobService
from steadyvoice.security.principal import DEFAULT_TENANT, Principal, Role
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(120)

WAIT = 30  # seconds any step of a race may take, however loaded the machine
KEY = "race-1"
ASKED = JobRequest(text="Hello there.")


def caller(max_in_flight: int) -> Principal:
    return Principal("key-1", DEFAULT_TENANT, Role.OPERATOR, 600, max_in_flight)


def service(store: JobStore, settings: Settings) -> JobService:
    return JobService(settings, store, build_engine(settings), NullDispatcher())


def rows(store: JobStore) -> int:
    with store.reading() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


class Pause:
    """Holds the first call of ``target`` made by the paused thread until ``resume``."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._resume = threading.Event()
        self._thread: int | None = None

    def held(self) -> None:
        """Called where the pause is: blocks once, in the paused thread only."""
        if threading.get_ident() == self._thread and not self.reached.is_set():
            self.reached.set()
            assert self._resume.wait(WAIT), "the race was never resumed"

    def run(self, pool: ThreadPoolExecutor, act: Callable[[], Any]) -> Future[Any]:
        """Start ``act`` in ``pool``, paused at the first ``held``; returns once it is."""

        def paused() -> Any:
            self._thread = threading.get_ident()
            return act()

        started = pool.submit(paused)
        if not self.reached.wait(WAIT):
            started.result(timeout=WAIT)  # it ended (or failed) without reaching the pause
            raise AssertionError("the paused request never reached its pause")
        return started

    def resume(self) -> None:
        self._resume.set()


def pause_admission(monkeypatch: pytest.MonkeyPatch, jobs: JobService, pause: Pause) -> None:
    """Pause after the request's key was looked up (a new key), before admission counts."""
    admission = jobs._admission
    admit = admission.admit

    def paused(chars: int) -> None:
        pause.held()
        admit(chars)

    monkeypatch.setattr(admission, "admit", paused)


def pause_insert(monkeypatch: pytest.MonkeyPatch, store: JobStore, pause: Pause) -> None:
    """Pause after admission, as the request's insert transaction is about to begin."""
    session = store.session

    @contextmanager
    def paused() -> Iterator[Session]:
        pause.held()
        with session() as s:
            yield s

    monkeypatch.setattr(store, "session", paused)


@pytest.mark.parametrize("where", ["admission", "quota"])
def test_a_repeat_racing_its_original_gets_the_original_job(
    store: JobStore,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """admission: the queue holds one job at most (the original's), so counting it refused the
    repeat (503 ``overloaded``). quota: one job in flight per key (the original), so counting
    it refused the repeat (429 ``too_many_jobs_in_flight``)."""
    if where == "admission":
        settings = settings_factory(admission={"max_queue": 1})
        limit = 50
    else:
        settings = settings_factory(admission={"enabled": False})
        limit = 1
    jobs = service(store, settings)
    pause = Pause()
    if where == "admission":
        pause_admission(monkeypatch, jobs, pause)
    else:
        pause_insert(monkeypatch, store, pause)
    with ThreadPoolExecutor(1) as pool:
        first = pause.run(pool, lambda: jobs.submit(ASKED, caller(limit), "rq-1", KEY))
        second, second_created = jobs.submit(ASKED, caller(limit), "rq-2", KEY)
        pause.resume()
        first_job, first_created = first.result(timeout=WAIT)
    assert second_created and not first_created
    assert first_job.id == second.id
    assert rows(store) == 1


def test_a_racing_request_with_the_key_and_another_body_is_refused(
    store: JobStore,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same key for a different request stays ``idempotency_key_reused`` (409), raced or
    not, and records nothing."""
    jobs = service(store, settings_factory(admission={"enabled": False}))
    pause = Pause()
    pause_insert(monkeypatch, store, pause)
    other = JobRequest(text="Something else.")
    with ThreadPoolExecutor(1) as pool:
        first = pause.run(pool, lambda: jobs.submit(other, caller(1), "rq-1", KEY))
        second, _ = jobs.submit(ASKED, caller(1), "rq-2", KEY)
        pause.resume()
        with pytest.raises(IdempotencyKeyReused) as refused:
            first.result(timeout=WAIT)
    assert refused.value.details["job_id"] == second.id
    assert rows(store) == 1


def test_the_loser_of_an_insert_race_returns_the_winners_job(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key lookup in the insert's transaction misses a twin committed after it (forced
    here): the unique key refuses the second row, and the loser answers with the winner's."""
    winner, created = store.create(new_job(idempotency_key=KEY))
    assert created
    lookup = JobStore._repeat_of
    missed: list[bool] = []

    def blind_once(s: Session, new: NewJob) -> Job | None:
        if not missed:
            missed.append(True)
            return None
        return lookup(s, new)

    monkeypatch.setattr(JobStore, "_repeat_of", staticmethod(blind_once))
    loser, created = store.create(new_job(idempotency_key=KEY), max_in_flight=50)
    assert missed and not created
    assert loser.id == winner.id
    assert rows(store) == 1
    with pytest.raises(IdempotencyKeyReused):  # and a different body still is refused
        store.create(new_job("Something else.", idempotency_key=KEY))
