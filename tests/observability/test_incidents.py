"""Incidents: the monitor records not-ready stretches from real outages, exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from steadyvoice.api import health
from steadyvoice.api.app import build_services
from steadyvoice.jobs.liveness import READY, WorkerRegistry
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.incidents import SERVICE_DOWN, IncidentMonitor
from steadyvoice.observability.models import Incident, MonitorBeat
from steadyvoice.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from processes import Service, free_port, poll  # type: ignore[import-not-found]

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


# --- rules, on SQLite and PostgreSQL ------------------------------------------------------------


def test_one_incident_from_not_ready_until_ready(store: JobStore) -> None:
    clock, state = Clock(), [NOT_READY]
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
    finally:
        monitor.stop()
        services.store.engine.dispose()
        direct.engine.dispose()
        proxy.stop()
    assert inc.reason == "database_unreachable" and inc.detected_by == "api:1"
    assert inc.ended_at is not None
    assert cut <= inc.started_at <= cut + timedelta(seconds=INTERVAL + 2), (cut, inc.started_at)
    assert restored <= inc.ended_at <= restored + timedelta(seconds=INTERVAL + 5)
    assert (inc.ended_at - inc.started_at) >= (restored - cut) - timedelta(seconds=INTERVAL)


def _beat_of(store: JobStore, name: str) -> datetime | None:
    with store.reading() as s:
        beat = s.get(MonitorBeat, name)
    return None if beat is None else beat.beat_at


# --- a real service, a real crash ------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """``steadyvoice serve`` with the fake engine; stopped at the end of the test."""
    started: list[Service] = []

    def start(**values: str) -> Service:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        port = free_port()
        env |= {
            "STEADYVOICE_DATA_DIR": str(tmp_path / "data"),
            "STEADYVOICE_ENGINE": "fake",
            "STEADYVOICE_API__PORT": str(port),
            "STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS": "0.2",
        }
        env |= {f"STEADYVOICE_{k.upper()}": v for k, v in values.items()}
        svc = Service(env, tmp_path / f"serve-{len(started)}.log", port, [])
        svc.start()
        started.append(svc)
        svc.wait_up()
        svc.wait_ready()
        return svc

    yield start
    for svc in started:
        svc.stop()


def _live_worker_pid(store: JobStore) -> int | None:
    live = [w for w in WorkerRegistry(store).live(0.6) if w.state == READY]
    return live[0].pid if live else None


def test_killed_worker_is_an_incident_until_the_supervisor_restarts_it(
    serve: Callable[..., Service], tmp_path: Path
) -> None:
    svc = serve(
        workers="1",
        slo__readiness_check_seconds=str(INTERVAL),
        jobs__worker_ready_seconds="0.6",
        jobs__heartbeat_seconds="0.1",
    )
    store = JobStore.from_url(f"sqlite:///{(tmp_path / 'data').resolve() / 'steadyvoice.db'}")
    try:
        poll(lambda: not [i for i in _incidents(store) if i.ended_at is None], 30, "no incident")
        pid = poll(lambda: _live_worker_pid(store), 30, "a ready worker")
        killed = utcnow()
        os.kill(pid, signal.SIGKILL)

        def opened() -> Any:
            return [i for i in _incidents(store) if i.started_at >= killed]

        [inc] = poll(opened, 30, f"an incident after the kill; log:\n{svc.log()}")
        closed = poll(lambda: [i for i in opened() if i.ended_at], 60, "the incident closed")[0]
        svc.wait_ready(timeout=30)
        restarted = poll(lambda: _live_worker_pid(store), 30, "the restarted worker")
    finally:
        store.engine.dispose()
    assert inc.reason == "no_live_worker" and restarted != pid
    assert closed.ended_at is not None
    # Seen within worker_ready_seconds + one check (plus scheduling slack on a busy machine).
    assert inc.started_at - killed <= timedelta(seconds=0.6 + INTERVAL + 3)
    duration = (closed.ended_at - closed.started_at).total_seconds()
    assert 0 < duration < 30, duration
    assert '"incident.opened"' in svc.log() and '"incident.closed"' in svc.log()
