"""Incidents: the monitor records not-ready stretches from real outages, exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from processes import ServiceFactory, free_port, poll  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.engine import make_url

from steadyvoice.api import health
from steadyvoice.api.app import build_services
from steadyvoice.jobs.liveness import READY, WorkerRegistry
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.incidents import SERVICE_DOWN, IncidentMonitor
from steadyvoice.observability.models import Incident, MonitorBeat
from steadyvoice.observability.slo import build_report
from steadyvoice.settings import Settings, SloSettings

INTERVAL = 0.2
NOT_READY = ["no_live_worker: no worker has its engine loaded"]


def _incidents(store: JobStore) -> list[Incident]:
    with store.reading() as s:
        return list(s.scalars(select(Incident).order_by(Incident.started_at)))


class Clock:
    """A settable clock for the monitor."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = INTERVAL) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _monitor(store: JobStore, state: list[list[str]], clock: Clock, name: str) -> IncidentMonitor:
    return IncidentMonitor(store, INTERVAL, lambda: list(state[0]), name=name, clock=clock)


def _deployed(store: JobStore, clock: Clock) -> None:
    """A deployment that has run before: another monitor beat one interval ago."""
    with store.session() as s:
        s.add(MonitorBeat(monitor="earlier:1", beat_at=clock.now - timedelta(seconds=INTERVAL)))


# --- rules, on SQLite and PostgreSQL ------------------------------------------------------------


def test_one_incident_from_not_ready_until_ready(store: JobStore) -> None:
    clock, state = Clock(), [NOT_READY]
    _deployed(store, clock)
    monitor = _monitor(store, state, clock, "a:1")
    first = clock.now
    monitor.run_once()
    clock.tick()
    monitor.run_once()
    state[0] = []
    end = clock.tick()
    monitor.run_once()
    clock.tick()
    monitor.run_once()
    [inc] = _incidents(store)
    assert (inc.reason, inc.started_at, inc.ended_at) == ("no_live_worker", first, end)
    assert inc.detected_by == "a:1" and inc.detail == NOT_READY[0]


def test_two_api_processes_record_one_incident_and_stale_views_do_not_reopen(
    store: JobStore,
) -> None:
    clock, state = Clock(), [NOT_READY]
    _deployed(store, clock)
    a = _monitor(store, state, clock, "a:1")
    b = _monitor(store, state, clock, "b:2")
    a.run_once()
    b.run_once()
    assert len(_incidents(store)) == 1
    # b checked (not ready) just before a saw ready; b's write lands after a's close.
    b_check = clock.tick()
    state[0] = []
    clock.tick(0.05)
    a.run_once()
    clock.now = b_check
    state[0] = NOT_READY
    b.run_once()
    [inc] = _incidents(store)
    assert inc.ended_at is not None and inc.ended_at > b_check
    # A real new outage later opens a second incident.
    clock.tick(5)
    b.run_once()
    assert [i.ended_at is None for i in _incidents(store)] == [False, True]


def test_service_down_from_a_stale_beat_at_startup(store: JobStore) -> None:
    clock, state = Clock(), [NOT_READY]
    last_beat = clock.now - timedelta(seconds=60)
    with store.session() as s:
        s.add(MonitorBeat(monitor="old:99", beat_at=last_beat))
    monitor = _monitor(store, state, clock, "new:1")
    monitor.run_once()  # workers still loading: the incident stays open
    [inc] = _incidents(store)
    assert (inc.reason, inc.started_at, inc.ended_at) == (SERVICE_DOWN, last_beat, None)
    state[0] = []
    ready_at = clock.tick()
    monitor.run_once()
    [inc] = _incidents(store)
    assert inc.ended_at == ready_at
    assert (inc.ended_at - inc.started_at).total_seconds() == pytest.approx(60.2)


def test_a_short_restart_is_service_down_from_the_last_beat(store: JobStore) -> None:
    """A beat 1.5+ intervals old at the first round: the restart is recorded in full."""
    clock, state = Clock(), [[]]
    last_beat = clock.now - timedelta(seconds=1.6 * INTERVAL)
    with store.session() as s:
        s.add(MonitorBeat(monitor="old:99", beat_at=last_beat))
    _monitor(store, state, clock, "new:1").run_once()  # ready at once: opened and closed
    [inc] = _incidents(store)
    assert (inc.reason, inc.started_at, inc.ended_at) == (SERVICE_DOWN, last_beat, clock.now)


def test_first_start_of_a_new_deployment_is_not_an_incident(store: JobStore) -> None:
    clock, state = Clock(), [NOT_READY]
    monitor = _monitor(store, state, clock, "new:1")
    monitor.run_once()  # no beat at all: the service was never up, workers still loading
    clock.tick()
    monitor.run_once()
    assert _incidents(store) == []
    state[0] = []
    clock.tick()
    monitor.run_once()  # ready once: from now on not ready is an incident
    state[0] = NOT_READY
    down = clock.tick()
    monitor.run_once()
    [inc] = _incidents(store)
    assert (inc.reason, inc.started_at, inc.ended_at) == ("no_live_worker", down, None)


def test_no_service_down_while_another_monitor_beats(store: JobStore) -> None:
    clock, state = Clock(), [[]]
    with store.session() as s:
        s.add(MonitorBeat(monitor="other:7", beat_at=clock.now - timedelta(seconds=INTERVAL)))
    _monitor(store, state, clock, "new:1").run_once()
    assert _incidents(store) == []
    with store.reading() as s:
        assert s.get(MonitorBeat, "new:1") is not None


# --- a real database outage, through a proxy we can cut ------------------------------------


class Proxy:
    """A TCP forwarder on 127.0.0.1; ``stop`` drops it and every connection through it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._stopped = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self._stopped = threading.Event()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        listener.settimeout(0.05)
        threading.Thread(target=self._accept, args=(listener, self._stopped), daemon=True).start()

    def _accept(self, listener: socket.socket, stopped: threading.Event) -> None:
        with listener:
            while not stopped.is_set():
                try:
                    client, _ = listener.accept()
                    upstream = socket.create_connection(self.target, timeout=5)
                except TimeoutError:
                    continue
                except OSError:
                    return
                client.settimeout(None)
                upstream.settimeout(None)
                with self._lock:
                    self._socks += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            _shut(sock)
        # The listener closes within one accept timeout; wait until connecting is refused.
        poll(self._refused, 5, "proxy listener closed")

    def _refused(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return True
        return False


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _shut(src)
        _shut(dst)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_database_unreachable_is_recorded_when_the_database_is_back(
    pg_url: str, settings_factory: Callable[..., Settings]
) -> None:
    url = make_url(pg_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = settings_factory(
        database_url=via_proxy,
        slo={"readiness_check_seconds": INTERVAL},
        jobs={"worker_ready_seconds": 120},
    )
    services = build_services(settings)
    direct = JobStore.from_url(pg_url)
    monitor = IncidentMonitor(
        services.store, INTERVAL, lambda: health.readiness(services).reasons, name="api:1"
    )
    try:
        services.store.migrate()
        workers = WorkerRegistry(direct)
        workers.register("host:4242", "fake")
        workers.beat("host:4242", READY, None, 0)  # live for the whole test
        monitor.start()
        poll(lambda: _beat_of(direct, "api:1"), 30, "the monitor's first beat")
        assert _incidents(direct) == []
        cut = utcnow()
        proxy.stop()
        poll(lambda: monitor.pending_since, 30, "the monitor to notice the outage")
        assert _incidents(direct) == [], "nothing can be written while the database is away"
        restored = utcnow()
        proxy.start()
        [inc] = poll(lambda: [i for i in _incidents(direct) if i.ended_at], 30, "incident")
        # The outage reaches the SLO report with its recovery time.
        report = build_report(direct, SloSettings(), timedelta(hours=1), utcnow())
    finally:
        monitor.stop()
        services.store.engine.dispose()
        direct.engine.dispose()
        proxy.stop()
    assert inc.reason == "database_unreachable" and inc.detected_by == "api:1"
    assert inc.ended_at is not None
    # run_once reads its clock just before its check: allow one interval either side.
    slack = timedelta(seconds=INTERVAL)
    assert cut - slack <= inc.started_at <= cut + slack + timedelta(seconds=2), (cut, inc)
    assert restored - slack <= inc.ended_at <= restored + slack + timedelta(seconds=5)
    assert (inc.ended_at - inc.started_at) >= (restored - cut) - 2 * slack
    [row] = [i for i in report.incidents if i.id == inc.id]
    duration = (inc.ended_at - inc.started_at).total_seconds()
    assert row.reason == "database_unreachable" and not row.open
    assert row.duration_seconds == pytest.approx(duration)
    assert report.recovery.closed >= 1 and report.recovery.max_seconds is not None
    assert report.recovery.max_seconds >= duration > 0


def _beat_of(store: JobStore, name: str) -> datetime | None:
    with store.reading() as s:
        beat = s.get(MonitorBeat, name)
    return None if beat is None else beat.beat_at


# --- a real service, a real crash ------------------------------------------------------------


def _live_worker_pid(store: JobStore, not_in: list[int]) -> int | None:
    """A ready worker's pid (the killed ones still count as live for a while: skip them)."""
    live = [w for w in WorkerRegistry(store).live(WORKER_READY) if w.state == READY]
    pids = [w.pid for w in live if w.pid not in not_in]
    return pids[0] if pids else None


WORKER_READY = 1.0  # seconds without a heartbeat (every 0.2 s) before a worker is not live
# A replacement loads this long, so it cannot be ready before the killed worker stops counting
# as live (WORKER_READY): the kill is an outage whatever the restart policy and the machine's load.
LOAD = 5.0


def test_killed_worker_is_an_incident_until_the_supervisor_restarts_it(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = service_env(
        engine="fake",
        workers="1",
        worker__spares="0",
        fake__load_seconds=str(LOAD),
        slo__readiness_check_seconds=str(INTERVAL),
        jobs__worker_ready_seconds=str(WORKER_READY),
        jobs__heartbeat_seconds="0.2",
    )
    svc = start_service(env)
    store = JobStore.from_url(f"sqlite:///{(tmp_path / 'data').resolve() / 'steadyvoice.db'}")
    try:
        pid = poll(lambda: _live_worker_pid(store, []), 60, "a ready worker")
        killed = utcnow()
        os.kill(pid, signal.SIGKILL)

        def after_kill() -> list[Incident]:
            return [i for i in _incidents(store) if i.started_at >= killed]

        inc = poll(after_kill, 60, f"an incident after the kill; log:\n{svc.log()}")[0]
        closed = poll(lambda: [i for i in after_kill() if i.ended_at], 90, "the incident closed")
        svc.wait_ready(timeout=60)
        restarted = poll(lambda: _live_worker_pid(store, [pid]), 60, "the restarted worker")
    finally:
        store.engine.dispose()
    assert inc.reason == "no_live_worker" and restarted != pid
    [done] = [i for i in closed if i.id == inc.id]
    assert done.ended_at is not None and done.ended_at > done.started_at >= killed
    assert (done.ended_at - done.started_at).total_seconds() < 120
    assert '"incident.opened"' in svc.log() and '"incident.closed"' in svc.log()
