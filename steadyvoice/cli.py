"""Command line: ``steadyvoice serve | worker | synth | verify | voices | keys | audit | backup
| slo``. Thin.

Errors are one line on stderr, ``steadyvoice: error: <code>: <message>``, never a traceback,
and the exit status says what kind (docs/operations.md, "CLI exit codes"):

- ``1`` the command ran and failed, or found a problem (``verify``), or the database or the
  engine was unavailable;
- ``2`` refused: bad usage, configuration or input (a value out of range, an unknown id or
  voice, a missing input file);
- ``3`` no database (or not this version's schema) where the settings point: commands that only
  read never create one;
- ``130`` interrupted; ``141`` stdout was closed early (``steadyvoice slo report | head -1``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NoReturn

from sqlalchemy.exc import OperationalError

from steadyvoice import __version__
from steadyvoice import serve as serve_command
from steadyvoice.backup import commands as backup_commands
from steadyvoice.batches import commands as batch_commands
from steadyvoice.errors import NoDatabase, SteadyVoiceError, StoreUnavailable
from steadyvoice.jobs import fleet_commands
from steadyvoice.jobs import synth as synth_command
from steadyvoice.observability import commands as slo_commands
from steadyvoice.security import audit_commands
from steadyvoice.security import commands as keys_commands
from steadyvoice.settings import ConfigurationError, Settings, load_settings, prepare_data_dir
from steadyvoice.storage import retention_commands
from steadyvoice.voices import commands as voices_commands

EXIT_FAILED = 1
EXIT_CONFIG = 2  # also usage errors (argparse's own status) and refused input
EXIT_NO_DATABASE = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program killed by it
# Errors about the path given, not the machine: refused input. Other OSErrors (a full disk) fail.
_PATH_ERRORS = {
    FileNotFoundError: "file_not_found",
    PermissionError: "permission_denied",
    IsADirectoryError: "is_a_directory",
    NotADirectoryError: "not_a_directory",
}


def _worker(args: argparse.Namespace) -> int:
    from steadyvoice.observability import worker_metrics

    own_dir = slot = None  # first: prometheus_client picks its storage when imported
    if not args.supervised:
        own_dir = worker_metrics.use_own_dir(load_settings())
    elif args.metrics_port:  # serve's worker.metrics_port: this process's port of its range
        from steadyvoice.observability import slot_metrics

        slot = slot_metrics.take(load_settings().worker.metrics_host, args.metrics_port)
    from steadyvoice.engines.registry import build_engine
    from steadyvoice.jobs.database import shown_url
    from steadyvoice.jobs.link import WorkerLink
    from steadyvoice.jobs.liveness import local_worker_id
    from steadyvoice.jobs.outputs import sweep
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.jobs.worker import Worker
    from steadyvoice.observability.logs import configure_logging, event
    from steadyvoice.storage.backend import open_storage
    from steadyvoice.systemd import Notifier

    notifier = Notifier.from_environment()  # removed from the environment either way
    settings = load_settings()
    configure_logging(settings.log_level, "worker", settings.log_format)
    prepare_data_dir(settings)
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir, settings.database)
    if not args.supervised:  # a supervised worker's ``serve`` said so and migrated
        database = shown_url(settings.resolved_database_url)
        event(logging.getLogger("steadyvoice.worker"), "worker.database", database=database)
        store.migrate()
        sweep(open_storage(settings, "outputs"))  # killed writes' leftovers (else serve's)
    if args.queues:  # a Celery worker on these queues (steadyvoice.dispatch, docs/scale-out.md)
        from steadyvoice.dispatch.command import parse_queues, run_worker

        store.engine.dispose()  # its pool child opens its own connections, after the fork
        worker_metrics.serve_worker_metrics(settings)
        return run_worker(settings, parse_queues(args.queues))
    worker = Worker(
        settings,
        store,
        build_engine(settings),
        local_worker_id(instance=args.instance),
        parent_pid=os.getppid() if args.supervised else None,
        link=None if args.link is None else WorkerLink(args.link, standby=args.standby),
        notifier=None if args.supervised else notifier,  # serve speaks for its workers
    )
    recycles = args.recycles if own_dir is None else worker_metrics.recycles_in(own_dir)
    worker.card = replace(worker.card, recycles=recycles)
    worker.install_signal_handlers()
    if not args.supervised:
        worker_metrics.serve_worker_metrics(settings)
    elif slot is not None:  # else in the API's /metrics
        slot.report(logging.getLogger("steadyvoice.worker"), settings.worker.metrics_host)
        if slot.server is not None:
            worker.card = replace(worker.card, metrics_port=slot.held)
            worker_metrics.serve_worker_metrics(settings, slot.server)
    try:
        worker.run()
    except SteadyVoiceError as exc:
        logging.getLogger("steadyvoice.worker").error(
            "worker cannot serve", extra={"error_code": exc.code, "error": exc.message}
        )
        return 1
    return 0


def _verify(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.jobs.database import sqlite_file
    from steadyvoice.storage.verify import verify_modes, verify_storage

    settings = load_settings()
    with opened_store(settings, create=False) as store:
        report = verify_storage(settings, store, args.sweep_unrecorded)
    verify_modes(settings, sqlite_file(settings.resolved_database_url), report)
    for loose in report.loose:  # a warning, not a failure
        print(f"steadyvoice: warning: loose_mode: {loose}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.__dict__ | {"healthy": report.healthy}, indent=2))
    else:
        print(
            f"checked {report.checked}: {report.ok} ok, {len(report.missing)} missing, "
            f"{len(report.corrupt)} corrupt, {len(report.unrecorded)} unrecorded"
        )
        for label, items in (
            ("MISSING", report.missing),
            ("CORRUPT", report.corrupt),
            ("UNRECORDED", report.unrecorded),
            ("SWEPT", report.swept),
        ):
            for item in items:
                print(f"{label} {item}")
    return 0 if report.healthy else EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line too (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"steadyvoice: error: usage: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="steadyvoice",
        description="Self-hosted text-to-speech with durable jobs. Settings come from "
        "STEADYVOICE_* environment variables (docs/configuration.md).",
    )
    parser.add_argument("--version", action="version", version=f"steadyvoice {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and supervised local workers")
    serve.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    serve.add_argument("--no-workers", action="store_true", help="run the API alone")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.set_defaults(func=serve_command.serve)

    worker = sub.add_parser("worker", help="run one worker process (engine resident)")
    worker.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--link", type=int, help=argparse.SUPPRESS)  # the supervisor's socket
    worker.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)  # a spare
    # The random part of the worker id, chosen by the supervisor so it knows the child's id.
    worker.add_argument("--instance", help=argparse.SUPPRESS)
    worker.add_argument("--recycles", type=int, default=0, help=argparse.SUPPRESS)  # its slot's
    # serve's worker.metrics_port: the port of its range this process serves on (slot_metrics).
    worker.add_argument("--metrics-port", type=int, default=0, help=argparse.SUPPRESS)
    worker.add_argument(
        "--queues",
        action="append",
        metavar="NAMES",
        help="run a Celery worker on these queues, comma-separated (dispatch.backend=celery)",
    )
    worker.set_defaults(func=_worker)

    synth_command.add_parser(sub)

    verify = sub.add_parser("verify", help="re-hash every output; exit 1 if any is bad")
    verify.add_argument("--json", action="store_true")
    verify.add_argument(
        "--sweep-unrecorded",
        type=float,
        metavar="SECONDS",
        help="first remove outputs no job records, once this old (docs/storage.md)",
    )
    verify.set_defaults(func=_verify)

    voices_commands.add_parser(sub)
    keys_commands.add_parser(sub)
    audit_commands.add_parser(sub)
    backup_commands.add_parser(sub)
    slo_commands.add_parser(sub)
    retention_commands.add_parser(sub)
    batch_commands.add_parser(sub)
    fleet_commands.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and an exit status (see above)."""
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        status = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # The reader is gone (``| head``): say nothing more, and keep Python's own flush at
        # exit from failing on the same pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigurationError as exc:
        print(f"steadyvoice: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SteadyVoiceError as exc:
        return _refused(exc)
    except OperationalError as exc:  # the database went away in the middle of a command
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return _refused(StoreUnavailable(f"the database failed: {reason}"))
    except OSError as exc:
        code = next((c for t, c in _PATH_ERRORS.items() if isinstance(exc, t)), "os_error")
        where = f": {exc.filename}" if exc.filename is not None else ""
        _error_line(code, f"{exc.strerror or exc}{where}")
        return EXIT_CONFIG if code != "os_error" else EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _refused(exc: SteadyVoiceError) -> int:
    shown = {k: exc.details[k] for k in ("available", "supported") if exc.details.get(k)}
    extra = "".join(
        f" ({k}: {', '.join(map(str, v)) if isinstance(v, list) else v})" for k, v in shown.items()
    )
    _error_line(exc.code, exc.message + extra)
    if isinstance(exc, NoDatabase):
        return EXIT_NO_DATABASE
    return EXIT_CONFIG if exc.status < 500 else EXIT_FAILED


def _error_line(code: str, message: str) -> None:
    print(f"steadyvoice: error: {code}: {' '.join(message.splitlines())}", file=sys.stderr)


__all__ = ["Settings", "build_parser", "main"]
