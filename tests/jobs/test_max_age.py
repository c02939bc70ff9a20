"""worker.max_age: serve's workers are recycled in turn (one at a time, between jobs, never while
another slot is down) with no job lost; a standalone worker recycles itself, but not while a peer
is being replaced."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import Process, poll  # type: ignore[import-not-found]

from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.supervisor import Supervisor
from steadyvoice.jobs.worker import Worker
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def supervisor(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
) -> Iterator[tuple[Supervisor, JobStore]]:
    """Two supervised workers (real processes, fake engine, 0.2 s jobs), max_age 2 s."""
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "METRICS_DIR": str(tmp_path / "metrics"),
        "ENGINE": "fake",
        "FAKE__SECONDS_PER_CHAR": "0.01",
        "JOBS__POLL_INTERVAL_SECONDS": "0.1",
        "JOBS__HEARTBEAT_SECONDS": "0.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"STEADYVOICE_{key}", value)
    settings = settings_factory(workers=2, worker={"max_age": 2.0, "spares": 0})
    store = store_factory(settings.resolved_database_url)
    started = Supervisor(settings, store, stop_grace=20)
    started.start()
    yield started, store
    started.stop()


def _down(supervisor: Supervisor) -> int:
    """Serving slots without a ready worker that is staying (none, loading, or retiring)."""
    return sum(
        1
        for slot in list(supervisor._slots)
        if not slot.spare and ((c := slot.child) is None or c.serving_since is None or c.retiring)
    )


def test_workers_recycle_one_at_a_time_and_no_job_is_lost(
    supervisor: tuple[Supervisor, JobStore],
) -> None:
    sup, store = supervisor
    poll(lambda: _down(sup) == 0, 60, "both workers ready")
    jobs, most_down = [], 0
    deadline = time.monotonic() + 60
    # Keep both workers busy (two jobs queued at all times) until each slot was recycled.
    while min(slot.recycles for slot in sup._slots) < 1:
        assert time.monotonic() < deadline, "the workers were not recycled by max_age"
        if store.count_by_status().get("queued", 0) < 2:
            jobs.append(store.create(new_job("Twenty characters."))[0].id)
        most_down = max(most_down, _down(sup))
        time.sleep(0.02)
    assert most_down == 1, "a recycle never overlaps another slot being down"
    ended = [poll(lambda j=j: (job := store.get(j)).finished_at and job, 30, j) for j in jobs]
    assert {job.status for job in ended} == {"succeeded"}
    assert {job.attempts for job in ended} == {1}, "a retiring worker finishes its job first"
    assert len({job.worker_id for job in ended}) >= 3, "replacements took over"
    assert all(slot.restarts == 0 for slot in sup._slots), "recycles are not crashes"


def test_standalone_worker_recycles_itself_unless_a_peer_is_loading(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory(
        worker={"max_age": 0.5}, jobs={"poll_interval_seconds": 0.05, "heartbeat_seconds": 0.05}
    )
    store = store_factory(settings.resolved_database_url)
    peers = WorkerRegistry(store)
    peers.register("otherhost:1:peer", "fake")  # a peer being replaced: still loading
    worker = Worker(settings, store, build_engine(settings), "host:9:abc")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        # Nothing to poll for: the worker must NOT stop. Twice max_age (plus its 10 % spread).
        time.sleep(1.0)
        assert thread.is_alive() and worker.recycled is None, "recycled while a peer loads"
        peers.beat("otherhost:1:peer", "ready", None, 0)
        thread.join(timeout=10)
        assert not thread.is_alive(), "the worker did not recycle by max_age"
        assert worker.recycled == "max_age"
    finally:
        worker.request_stop()
        thread.join(timeout=10)


RESTART_SECONDS = 1.0  # the service manager's RestartSec, shortened


def test_standalone_workers_recycle_in_turn_across_the_restart_gap(
    tmp_path: Path, store_factory: Callable[[str], JobStore]
) -> None:
    """Two real ``steadyvoice worker`` processes, max_age 2 s; the test is their service manager
    (it restarts one that exited after ``RESTART_SECONDS``). In the gap no process of the
    recycled one runs: its row, left stopping, keeps the other from going too."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")} | {
        "STEADYVOICE_DATA_DIR": str(data),
        "STEADYVOICE_METRICS_DIR": str(tmp_path / "metrics"),
        "STEADYVOICE_ENGINE": "fake",
        "STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS": "0.1",
        "STEADYVOICE_JOBS__HEARTBEAT_SECONDS": "0.2",
        "STEADYVOICE_WORKER__MAX_AGE": "2",
    }
    slots = [_Unit(Process(["worker"], env, tmp_path / f"worker{i}.log")) for i in range(2)]
    database = data / "steadyvoice.db"
    store_factory(f"sqlite:///{database}")  # migrated once, not by two workers at once
    try:
        for unit in slots:
            unit.process.start()
        # The test manages restarts from the start: a worker that is ready before its peer has
        # even registered may recycle alone (it has no peer to wait for). What is measured starts
        # once both have served at the same time.
        most_down, saw_marker = 0, False
        baseline: list[int] | None = None
        deadline = time.monotonic() + 75
        while baseline is None or any(
            u.recycles - b < 1 for u, b in zip(slots, baseline, strict=True)
        ):
            assert time.monotonic() < deadline, "the workers did not recycle by max_age"
            rows = _rows(database)
            for unit in slots:
                unit.restart_if_due()
            down = sum(not _up(u, rows) for u in slots)
            if baseline is None:
                if down:
                    time.sleep(0.02)  # sampling, not waiting
                    continue
                baseline = [u.recycles for u in slots]
            most_down = max(most_down, down)
            exited = {u.exited_pid for u in slots if u.exited_pid is not None}
            saw_marker |= any(pid in exited and state == "stopping" for pid, state in rows)
            time.sleep(0.02)  # sampling, not waiting
        assert most_down == 1, "a recycle never overlaps the other worker being down"
        assert saw_marker, "a recycled worker's row stays (stopping) until it is replaced"
        for unit in slots:
            assert '"recycled": "max_age"' in unit.process.log() or "max_age" in unit.process.log()
    finally:
        for unit in slots:
            if unit.process.proc is not None:
                unit.process.stop(timeout=20)


class _Unit:
    """One worker unit: its process, restarted ``RESTART_SECONDS`` after a clean exit."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.recycles = 0
        self.exited_pid: int | None = None  # the last process that exited, until replaced
        self._exited_at: float | None = None

    def restart_if_due(self) -> None:
        proc = self.process.proc
        if proc is None:
            return
        if self._exited_at is None and proc.poll() is not None:
            assert proc.returncode == 0, f"a recycle exits 0:\n{self.process.log()}"
            self._exited_at, self.exited_pid = time.monotonic(), proc.pid
        elif self._exited_at is not None and time.monotonic() - self._exited_at > RESTART_SECONDS:
            self._exited_at = None
            self.recycles += 1
            self.process.start()

    @property
    def pid(self) -> int | None:
        proc = self.process.proc
        return None if proc is None or proc.poll() is not None else proc.pid


def _rows(database: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(database, timeout=10)) as db:
        return list(db.execute("SELECT pid, state FROM workers"))


def _up(unit: _Unit, rows: list[tuple[int, str]]) -> bool:
    """Its process runs and its row says it serves."""
    return any(pid == unit.pid and state in ("ready", "busy") for pid, state in rows)


def test_only_one_of_two_peers_due_together_takes_the_recycle_turn(store: JobStore) -> None:
    """Peers due at the same moment, racing from threads: the check and the stopping mark are
    one transaction (serialized per engine), so exactly one of them may go."""
    registry = WorkerRegistry(store)
    ids = [f"otherhost:{n}:peer" for n in (1, 2)]
    for worker_id in ids:
        registry.register(worker_id, "fake")
        registry.beat(worker_id, "ready", None, 0)
    start = threading.Barrier(len(ids))
    turns: dict[str, bool] = {}

    def take(worker_id: str) -> None:
        start.wait()
        turns[worker_id] = registry.take_recycle_turn(worker_id, "fake", 10, 120)

    threads = [threading.Thread(target=take, args=(w,)) for w in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(turns.values()) == [False, True]
    # Another engine's workers are not its peers: theirs is a turn of their own.
    registry.register("otherhost:3:peer", "piper")
    registry.beat("otherhost:3:peer", "ready", None, 0)
    assert registry.take_recycle_turn("otherhost:3:peer", "piper", 10, 120)
