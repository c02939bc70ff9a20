"""Command line: ``steadyvoice serve | worker | synth | verify | voices | keys | slo``. Thin."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from steadyvoice import __version__
from steadyvoice import serve as serve_command
from steadyvoice.errors import SteadyVoiceError
from steadyvoice.observability import commands as slo_commands
from steadyvoice.security import commands as keys_commands
from steadyvoice.settings import ConfigurationError, Settings, load_settings, prepare_data_dir
from steadyvoice.voices import commands as voices_commands

EXIT_CONFIG = 2


def _worker(args: argparse.Namespace) -> int:
    import os

    from steadyvoice.engines.registry import build_engine
    from steadyvoice.jobs.link import WorkerLink
    from steadyvoice.jobs.liveness import local_worker_id
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.jobs.worker import Worker
    from steadyvoice.observability.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, "worker")
    prepare_data_dir(settings)
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    if not args.supervised:
        store.migrate()
    worker = Worker(
        settings,
        store,
        build_engine(settings),
        local_worker_id(),
        parent_pid=os.getppid() if args.supervised else None,
        link=None if args.link is None else WorkerLink(args.link, standby=args.standby),
    )
    worker.install_signal_handlers()
    try:
        worker.run()
    except SteadyVoiceError as exc:
        logging.getLogger("steadyvoice.worker").error(
            "worker cannot serve", extra={"error_code": exc.code, "error": exc.message}
        )
        return 1
    return 0


def _synth(args: argparse.Namespace) -> int:
    from steadyvoice.audio.wav import encode_wav
    from steadyvoice.engines.base import DEFAULT_SEED, SynthesisRequest
    from steadyvoice.engines.registry import build_engine
    from steadyvoice.storage.local import LocalStorage

    settings = load_settings()
    engine = build_engine(settings)
    voice = args.voice or engine.default_voice()
    engine.load()
    seed = DEFAULT_SEED if args.seed is None else args.seed
    audio = engine.synthesize(SynthesisRequest(args.text, voice, seed, args.speed))
    out = Path(args.output).resolve()
    sha, size = LocalStorage(out.parent).write_atomic(
        out.name, encode_wav(audio.samples, audio.sample_rate)
    )
    print(
        json.dumps(
            {
                "output": str(out),
                "sha256": sha,
                "bytes": size,
                "seed": seed,
                "voice": voice,
                "engine_version": engine.version(voice),
                "duration_seconds": round(audio.duration_seconds, 3),
            }
        )
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.storage.local import LocalStorage
    from steadyvoice.storage.verify import verify_outputs, verify_references
    from steadyvoice.voices.store import VoiceStore

    settings = load_settings()
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    report = verify_outputs(store, LocalStorage(settings.outputs_dir))
    verify_references(VoiceStore(store).every(), LocalStorage(settings.voices_dir), report)
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
        ):
            for item in items:
                print(f"{label} {item}")
    return 0 if report.healthy else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    worker.set_defaults(func=_worker)

    synth = sub.add_parser("synth", help="synthesize one text to a WAV file, no service")
    synth.add_argument("text")
    synth.add_argument("-o", "--output", required=True, help="output .wav path")
    synth.add_argument("--seed", type=int, help="noise seed (default 42)")
    synth.add_argument("--voice", help="voice name (engine default if omitted)")
    synth.add_argument("--speed", type=float, default=1.0)
    synth.set_defaults(func=_synth)

    verify = sub.add_parser("verify", help="re-hash every output; exit 1 if any is bad")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=_verify)

    voices_commands.add_parser(sub)
    keys_commands.add_parser(sub)
    slo_commands.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigurationError as exc:
        print(f"steadyvoice: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


__all__ = ["Settings", "build_parser", "main"]
