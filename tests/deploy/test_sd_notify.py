"""systemd's notify and watchdog protocol, for real: the test binds the NOTIFY_SOCKET datagram
socket that systemd would, and runs ``steadyvoice serve`` (fake engine) and a standalone
``steadyvoice worker`` against it (deploy/systemd/*.service are ``Type=notify`` with a watchdog).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import Process, Service, free_port, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.store import JobStore
from steadyvoice.systemd import Notifier, Watchdog

WATCHDOG_USEC = 2_000_000  # pings every 0.5-1 s


@dataclass
class Listener:
    """The service manager's end: every datagram with its arrival time."""

    path: Path
    sock: socket.socket = field(init=False)
    got: list[tuple[float, str]] = field(default_factory=list)
    readyz_at_ready: int | None = None  # /readyz's answer right after READY=1 arrived
    readyz_error: str | None = None
    service: Service | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            at, message = time.monotonic(), data.decode()
            if "READY=1" in message.splitlines() and self.service is not None:
                # asked before the message is recorded: a test that sees READY=1 sees this too
                try:
                    url = f"{self.service.url}/readyz"  # its own connection, not the test's client
                    self.readyz_at_ready = httpx.get(url, timeout=10).status_code
                except Exception as error:  # noqa: BLE001 - reported by the test's assertion
                    self.readyz_error = repr(error)
            self.got.append((at, message))

    def lines(self, since: float = 0.0) -> list[str]:
        return [line for at, m in list(self.got) if at >= since for line in m.splitlines()]

    def pings(self) -> list[float]:
        return [at for at, m in list(self.got) if m == "WATCHDOG=1"]

    def close(self) -> None:
        self.sock.close()


def _env(data: Path, notify: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env |= {
        "STEADYVOICE_DATA_DIR": str(data),
        "STEADYVOICE_METRICS_DIR": str(data.parent / "metrics"),
        "STEADYVOICE_ENGINE": "fake",
        "STEADYVOICE_WORKERS": "1",
        "STEADYVOICE_WORKER__SPARES": "0",
        "STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS": "0.2",
        "NOTIFY_SOCKET": str(notify),
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
    }
    return env | {f"STEADYVOICE_{k.upper()}": v for k, v in values.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Listener]]:
    """One ``serve`` for the module, its engine slow to load (a window: listening, not ready)."""
    root = tmp_path_factory.mktemp("sd_notify")
    listener = Listener(root / "notify.sock")
    port = free_port()
    env = _env(root / "data", listener.path, api__port=str(port), fake__load_seconds="2")
    service = Service(env, root / "serve.log", port, [])
    listener.service = service
    service.start()
    yield service, listener
    service.stop()
    listener.close()


def _wait_line(listener: Listener, line: str, timeout: float, since: float = 0.0) -> None:
    poll(lambda: line in listener.lines(since), timeout, f"{line!r}; got {listener.lines()}")


def test_ready_is_sent_only_once_readyz_says_ready(served: tuple[Service, Listener]) -> None:
    service, listener = served
    answers: list[tuple[float, int | None]] = []

    def ready_sent() -> bool:
        answers.append((time.monotonic(), service._get("/readyz")))
        return "READY=1" in listener.lines()

    poll(ready_sent, 60, f"READY=1; log:\n{service.log()}")
    ready_at = next(at for at, m in listener.got if "READY=1" in m.splitlines())
    before = [code for at, code in answers if at < ready_at]
    assert 503 in before, "the API listened, not ready, while READY=1 was held back"
    assert listener.readyz_at_ready == 200, (
        f"READY=1 came before /readyz said ready ({listener.readyz_error})"
    )
    assert listener.lines().count("READY=1") == 1
    statuses = [line for line in listener.lines() if line.startswith("STATUS=")]
    assert statuses[0] == "STATUS=starting: migrating the database"
    assert "STATUS=not ready: no_live_worker: no worker has its engine loaded" in statuses
    assert statuses[-1] == "STATUS=ready: 1 worker(s) serving"


def test_watchdog_pings_while_the_supervisor_loop_turns(served: tuple[Service, Listener]) -> None:
    _, listener = served
    start = time.monotonic()
    poll(lambda: len([p for p in listener.pings() if p > start]) >= 4, 10, "4 watchdog pings")
    pings = [p for p in listener.pings() if p > start]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < WATCHDOG_USEC / 1e6, gaps


def test_watchdog_stops_while_the_supervisor_loop_hangs(
    served: tuple[Service, Listener],
) -> None:
    """A real hang: the supervisor loop releases a dead worker's jobs in the database; while
    another connection holds SQLite's write lock that write waits (busy timeout 30 s), and so
    does the loop. The process is not frozen (unlike SIGSTOP): the API still answers."""
    service, listener = served
    database = Path(service.env["STEADYVOICE_DATA_DIR"]) / "steadyvoice.db"
    lock = sqlite3.connect(database, timeout=10, isolation_level=None)
    try:
        (pid,) = lock.execute("SELECT pid FROM workers").fetchone()
        lock.execute("BEGIN IMMEDIATE")  # the write lock: every other writer waits
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        held = 3.0
        while time.monotonic() - killed < held:
            assert service._get("/healthz") == 200, "the API must stay up: only the loop hangs"
            time.sleep(0.2)
        silent = [p for p in listener.pings() if killed + 1.0 < p]
        assert silent == [], "the loop pinged while it waited on the database"
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
    released = time.monotonic()
    poll(lambda: [p for p in listener.pings() if p > released], 10, "pings after the hang")
    service.wait_ready()  # the replacement worker serves


def test_sigterm_sends_stopping(served: tuple[Service, Listener]) -> None:
    service, listener = served
    assert service.proc is not None
    sent = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    _wait_line(listener, "STOPPING=1", 10, since=sent)
    assert service.proc.wait(timeout=60) == 0
    assert [line for line in listener.lines(sent) if line != "WATCHDOG=1"] == [
        "STOPPING=1",
        "STATUS=stopping: the API finishes its open requests",
        "STATUS=stopping: the API is closed; workers finish their current jobs",
    ]


def test_standalone_worker_notifies(tmp_path: Path) -> None:
    listener = Listener(tmp_path / "notify.sock")
    worker = Process(["worker"], _env(tmp_path / "data", listener.path), tmp_path / "worker.log")
    worker.start()
    try:
        _wait_line(listener, "READY=1", 60)
        assert listener.lines()[0] == "STATUS=loading the fake engine"
        poll(lambda: len(listener.pings()) >= 2, 10, f"worker pings; log:\n{worker.log()}")
        sent = time.monotonic()
        assert worker.stop(timeout=30) == 0
        assert "STOPPING=1" in listener.lines(sent)
    finally:
        worker.stop()
        listener.close()


def test_standalone_worker_stops_pinging_while_its_job_hangs(
    tmp_path: Path, store_factory: Callable[[str], JobStore]
) -> None:
    """The heartbeat thread pings only while the main loop moves on: a job whose sentences
    keep coming keeps the pings flowing past the step limit; one stuck in a sentence (a long
    sleep: a hung engine) stops them, and its lease, after the limit, while the process lives.

    Lease 1 s: the idle and per-job step limit is 2 s (a tiny estimate, ``steadyvoice.jobs.stall``).
    """
    listener = Listener(tmp_path / "notify.sock")
    data = tmp_path / "data"
    env = _env(
        data,
        listener.path,
        jobs__lease_seconds="1",
        jobs__heartbeat_seconds="0.25",
        fake__seconds_per_char="0.1",  # 0.3 s per "Go.", 30 s for the stuck job's sentence
    )
    worker = Process(["worker"], env, tmp_path / "worker.log")
    worker.start()
    try:
        _wait_line(listener, "READY=1", 60)
        store = store_factory(f"sqlite:///{data / 'steadyvoice.db'}")
        steady = store.create(new_job("Go. " * 20, estimated_seconds=0.01))[0].id
        poll(lambda: store.get(steady).status == "running", 10, "the steady job running")
        began = time.monotonic()
        poll(lambda: store.get(steady).status == "succeeded", 30, f"it; {worker.log()}")
        ended = time.monotonic()
        assert ended - began > 4, "the job must outlast the 2 s step limit well"
        pings = [began, *(p for p in listener.pings() if began < p < ended), ended]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < WATCHDOG_USEC / 1e6, f"systemd would have killed it: {gaps}"

        stuck = store.create(new_job("x" * 300 + ".", estimated_seconds=0.01))[0].id
        poll(lambda: store.get(stuck).status == "running", 10, "the stuck job running")
        claimed = time.monotonic()
        quiet = poll(lambda: _quiet_since(listener, 2.5), 10, f"pings to stop; {worker.log()}")
        assert quiet - claimed < 4, "pings stopped about the limit (2 s) after the hang began"
        lease = store.get(stuck).lease_expires_at
        assert lease is not None and lease < datetime.now(UTC), "the hung job's lease renewed"
        assert worker.proc is not None and worker.proc.poll() is None, "only the pings stop"
        assert "worker.stalled" in worker.log()
    finally:
        if worker.proc is not None:
            worker.proc.kill()  # the stuck sentence would take 30 s to finish
            worker.proc.wait()
        listener.close()


def _quiet_since(listener: Listener, seconds: float) -> float | None:
    """When the last ping came, once none has for ``seconds``; None while they go on."""
    last = max(listener.pings(), default=0.0)
    return last if time.monotonic() - last > seconds else None


# --- the notifier itself ---------------------------------------------------------------


def test_abstract_socket_and_environment_cleanup() -> None:
    name = f"steadyvoice-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    env = {"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "4000000", "OTHER": "x"}
    try:
        notifier = Notifier.from_environment(env)
        assert env == {"OTHER": "x"}, "children must not inherit the manager's socket"
        assert notifier.watchdog_every == 2.0
        notifier.status("one")
        notifier.status("one")  # unchanged: not sent again
        notifier.stopping()
        notifier.status("after stopping")  # never contradicts STOPPING
        notifier.ready("ready again")
        notifier.stopping("stopping, later")  # STOPPING=1 once, then only how it goes on
        got = [sock.recv(4096).decode() for _ in range(3)]
        assert got == [
            "STATUS=one",
            "STOPPING=1\nSTATUS=stopping: finishing the current jobs",
            "STATUS=stopping, later",
        ]
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)
    finally:
        sock.close()


def test_no_manager_and_someone_elses_watchdog() -> None:
    assert not Notifier.from_environment({}).send("READY=1")
    other = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    notifier = Notifier.from_environment(other)
    assert notifier.watchdog_every is None and Watchdog.of(notifier) is None
    assert not notifier.send("READY=1"), "a missing socket is reported, never raised"
