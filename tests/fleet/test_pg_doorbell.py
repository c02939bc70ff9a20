"""The PostgreSQL doorbell's own behaviour: a NOTIFY wakes a waiting worker at once, a stop
request ends a wait without one, and a database it cannot reach leaves polling in charge."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from steadyvoice.jobs.doorbell_pg import (
    ListeningBell,
    NotifyDispatcher,
    job_dispatcher,
    uses_notify,
)
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import DatabaseSettings, Settings

pytestmark = pytest.mark.timeout(60)


def test_a_notify_wakes_the_wait_and_a_stop_ends_it(
    pg_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    stop = threading.Event()
    bell = ListeningBell(pg_url, DatabaseSettings(), stop)
    try:
        assert bell.wait(0.2) is False  # nothing rang
        timer = threading.Timer(0.2, NotifyDispatcher(store_factory(pg_url)).notify, ["job1"])
        timer.start()
        started = time.monotonic()
        assert bell.wait(30) is True
        assert time.monotonic() - started < 5
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        assert bell.wait(30) is False
        assert time.monotonic() - started < 5, "a stop request must end the wait"
    finally:
        bell.close()


def test_an_unreachable_database_falls_back_to_polling() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:9/none"  # nothing listens on port 9
    bell = ListeningBell(url, DatabaseSettings(), threading.Event())
    started = time.monotonic()
    assert bell.wait(0.3) is False
    assert 0.25 < time.monotonic() - started < 5
    bell.close()


def test_notify_is_chosen_for_postgresql_only(
    settings_factory: Callable[..., Settings], pg_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    sqlite = settings_factory()
    postgres = settings_factory(database_url=pg_url)
    assert not uses_notify(sqlite) and uses_notify(postgres)
    celery = settings_factory(
        database_url=pg_url, dispatch={"backend": "celery", "broker_url": "redis://127.0.0.1/15"}
    )
    assert not uses_notify(celery), "Celery carries the messages: no NOTIFY"
    store = store_factory(pg_url)
    assert isinstance(job_dispatcher(postgres, store), NotifyDispatcher)
