"""``steadyvoice serve``: the API and its supervised local workers in one process group."""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from steadyvoice.settings import Settings, load_settings, prepare_data_dir
from steadyvoice.systemd import Notifier

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

# serve could not take its port or its metrics dir (another serve has them): refused, like a
# bad setting, before anything was touched (cli.EXIT_CONFIG).
EXIT_IN_USE = 2
METRICS_LOCK = "serve.lock"
# The API's event loop not ticking for this long is a hang: the systemd watchdog pings stop.
API_STALE_SECONDS = 5.0

log = logging.getLogger("steadyvoice.serve")


class CannotServe(Exception):
    """This serve cannot take its port or its metrics dir; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def bind_api(host: str, port: int) -> list[socket.socket]:
    """Bind the API's sockets now, as uvicorn would, so a port in use fails before anything else.

    One socket per address the host resolves to (``localhost``: IPv4 and IPv6), as asyncio's
    ``create_server`` binds them; uvicorn then listens on these.
    """
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise CannotServe(
            "host_unresolved", f"api.host {host!r} does not resolve ({exc.strerror})"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotServe(
                "port_in_use",
                f"{where} is already in use (another steadyvoice serve?): stop it, or choose "
                "another port with STEADYVOICE_API__PORT",
            ) from None
        raise CannotServe("cannot_listen", f"cannot listen on {where} ({exc.strerror})") from None
    return sockets


def lock_metrics_dir(path: Path) -> IO[str]:
    """Hold ``path/serve.lock`` for the life of this process, or fail if another serve holds it.

    The file stays open (the lock with it) until the process exits, however it exits.
    """
    path.mkdir(parents=True, exist_ok=True)
    lock = (path / METRICS_LOCK).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise CannotServe(
            "metrics_dir_in_use",
            f"metrics dir {path} is in use by a running steadyvoice serve (pid {holder}); "
            "give each instance its own STEADYVOICE_METRICS_DIR",
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _prepare_metrics_dir(settings: Settings) -> None:
    """Empty this instance's host-local multiprocess metrics dir (but its lock); point it and
    its workers there. The caller holds the lock (``lock_metrics_dir``).

    Must run before ``prometheus_client`` is imported: it picks its storage at import.
    """
    import shutil

    path = settings.resolved_metrics_dir.resolve()
    for entry in path.iterdir():
        if entry.name == METRICS_LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # inherited by the worker processes
    if "prometheus_client" in sys.modules:
        logging.getLogger("steadyvoice.cli").warning(
            "prometheus_client was imported before the metrics dir was set; "
            "this process's metrics will not be shared"
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.no_workers:
        overrides["workers"] = 0
    api = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if api:
        overrides["api"] = api
    return load_settings(**overrides)


def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    prepare_data_dir(settings)
    # Take the port and the metrics dir before touching anything: a second serve on the same
    # port must leave the running one's metrics alone.
    sockets: list[socket.socket] = []
    try:
        sockets = bind_api(settings.api.host, settings.api.port)
        lock = lock_metrics_dir(settings.resolved_metrics_dir.resolve())
    except CannotServe as exc:
        for sock in sockets:
            sock.close()
        # The one-line form of every CLI error (steadyvoice.cli).
        print(f"steadyvoice: error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    try:
        _prepare_metrics_dir(settings)
        return _run(settings, sockets)
    finally:
        lock.close()


def _run(settings: Settings, sockets: list[socket.socket]) -> int:
    import uvicorn

    from steadyvoice.api.app import create_app
    from steadyvoice.api.protocol import head_deadline_protocol
    from steadyvoice.jobs.outputs import sweep
    from steadyvoice.jobs.reaper import release_gone_workers
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.jobs.supervisor import Supervisor
    from steadyvoice.observability.logs import configure_logging
    from steadyvoice.storage.backend import open_storage
    from steadyvoice.systemd import ReadinessReporter, Watchdog

    # Taken out of the environment before the workers start: only serve speaks to systemd.
    notifier = Notifier.from_environment()
    notifier.status("starting: migrating the database")
    log_format = configure_logging(settings.log_level, "api", settings.log_format)
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir, settings.database)
    store.migrate()
    _warn_loose_modes(settings)
    # After a power cut, this host's dead workers' jobs run again now, not when leases expire.
    release_gone_workers(store, settings.jobs.max_attempts)
    sweep(open_storage(settings, "outputs"))  # what killed writes left behind
    pulse = _Pulse()
    # The watch loop pings while it turns and the API's event loop ticks (steadyvoice.systemd).
    supervisor = Supervisor(settings, store, watchdog=Watchdog.of(notifier, pulse.alive))
    notifier.status("starting: workers are loading their engine")
    supervisor.start()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        http=head_deadline_protocol(settings.api.header_timeout_seconds),
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.api.keep_alive_seconds,
        timeout_graceful_shutdown=10,
        server_header=False,
        # The app reads X-Forwarded-* itself (steadyvoice.api.forwarded), addresses only.
        proxy_headers=False,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; with these
    # handlers in place that is a no-op, so the workers below still get a graceful stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server = _server(config, settings, notifier, pulse, banner=log_format == "text")
    reporter = ReadinessReporter(
        notifier, lambda: _readiness(app, pulse), settled_every=settings.slo.readiness_check_seconds
    )
    reporter.start()
    try:
        server.run(sockets=sockets)
    finally:
        reporter.stop()
        notifier.stopping("stopping: the API is closed; workers finish their current jobs")
        supervisor.stop()
    return 0


class _Pulse:
    """Whether the API is up and its event loop turns (uvicorn ticks every 0.1 s)."""

    def __init__(self) -> None:
        self.started = False
        self.ticked = time.monotonic()

    def tick(self) -> None:
        self.ticked = time.monotonic()

    def alive(self) -> bool:
        return not self.started or time.monotonic() - self.ticked < API_STALE_SECONDS


def _readiness(app: FastAPI, pulse: _Pulse) -> tuple[bool, str]:
    """What ``/readyz`` would answer, as (ready, a STATUS= line for systemd)."""
    from steadyvoice.api.health import readiness

    if not pulse.started:
        return False, "starting: the API is not listening yet"
    body = readiness(app.state.services)
    if body.reasons:
        return False, "not ready: " + "; ".join(body.reasons)
    return True, f"ready: {body.workers} worker(s) serving"


def _warn_loose_modes(settings: Settings) -> None:
    """Name every file of the service that other users may read (they are left as they are)."""
    from steadyvoice.jobs.database import sqlite_file
    from steadyvoice.observability.logs import event
    from steadyvoice.storage.modes import loose_modes

    for loose in loose_modes(settings, sqlite_file(settings.resolved_database_url)):
        event(
            log,
            "serve.loose_mode",
            level=logging.WARNING,
            path=str(loose.path),
            mode=f"{loose.mode:04o}",
            wanted=f"{loose.wanted:04o}",
            advice=str(loose),
        )


def _server(
    config: uvicorn.Config, settings: Settings, notifier: Notifier, pulse: _Pulse, *, banner: bool
) -> uvicorn.Server:
    from steadyvoice import banner as banner_text
    from steadyvoice.api.shutdown import GracefulServer
    from steadyvoice.observability.logs import event

    class Server(GracefulServer):
        """uvicorn, announcing itself once the app has started and the sockets listen (and
        telling waiting speech calls when it begins to shut down: GracefulServer), and
        telling systemd (STOPPING=1 on the signal; ticks for the watchdog: ``_Pulse``)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            notifier.stopping("stopping: the API finishes its open requests")
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            pulse.tick()
            return await super().on_tick(counter)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:
                return
            pulse.started = True
            event(log, "api.listening", url=banner_text.api_url(settings))
            if banner:  # after the lifespan: the first admin key is written by now
                sys.stdout.write(banner_text.banner(settings) + "\n")
                sys.stdout.flush()

    return Server(config)
