"""``steadyvoice voices add | list | rm``: manage voice profiles straight in the store."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from steadyvoice.errors import InvalidRequest, ReferenceTooLarge, SteadyVoiceError
from steadyvoice.security.principal import DEFAULT_TENANT, TENANT_NAME
from steadyvoice.settings import load_settings, prepare_data_dir
from steadyvoice.voices.models import Voice

EXIT_REFUSED = 1
PAGE = 500


def add_parser(sub: Any) -> None:
    """Register the ``voices`` command group on the top-level subparsers."""
    voices = sub.add_parser("voices", help="voice profiles: add, list, rm")
    cmds = voices.add_subparsers(dest="voices_command", required=True)

    add = cmds.add_parser("add", help="create a profile from a reference recording")
    add.add_argument("name", help="a label for people")
    add.add_argument("file", type=Path, help="WAV, FLAC, OGG or MP3; 3 to 30 s of speech")
    add.add_argument("--consent", required=True, help="the speaker's consent statement")
    add.add_argument("--transcript", help="what is said in the recording")
    add.add_argument("--tenant", default=DEFAULT_TENANT, help="the tenant it belongs to")
    add.set_defaults(func=_add)

    ls = cmds.add_parser("list", help="list profiles, newest first")
    ls.add_argument("--all", action="store_true", help="include deleted profiles")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    again = cmds.add_parser("reanalyse", help="renew stored analyses after an engine upgrade")
    again.add_argument("voice_ids", nargs="*", help="profiles to renew (default: all)")
    again.set_defaults(func=_reanalyse)

    rm = cmds.add_parser("rm", help="delete a profile (new jobs refuse it; history stays)")
    rm.add_argument("voice_id")
    rm.set_defaults(func=_rm)


def _service() -> Any:
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.voices.profiles import VoiceService
    from steadyvoice.voices.store import VoiceStore

    settings = load_settings()
    prepare_data_dir(settings)
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    return VoiceService(settings, VoiceStore(store))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a uid with no passwd entry, as in some containers
        return f"cli:uid{os.getuid()}"


def _summary(voice: Voice) -> dict[str, Any]:
    return {
        "voice_id": voice.id,
        "name": voice.name,
        "tenant": voice.tenant,
        "status": "deleted" if voice.deleted_at else "active",
        "created_by": voice.created_by,
        "created_at": voice.created_at.isoformat(),
        "reference_sha256": voice.reference_sha256,
        "speech_seconds": voice.speech_seconds,
        "deleted_at": voice.deleted_at.isoformat() if voice.deleted_at else None,
    }


def _refused(exc: SteadyVoiceError) -> int:
    print(json.dumps({"error": exc.to_dict()}), file=sys.stderr)
    return EXIT_REFUSED


def _add(args: argparse.Namespace) -> int:
    from steadyvoice.voices.profiles import NewVoice

    if not TENANT_NAME.fullmatch(args.tenant):
        return _refused(InvalidRequest(f"{args.tenant!r} is not a tenant name", field="tenant"))
    limit = load_settings().voices.max_upload_bytes
    try:
        if args.file.stat().st_size > limit:
            return _refused(ReferenceTooLarge(f"the recording is larger than {limit} bytes"))
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"steadyvoice: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    new = NewVoice(
        name=args.name,
        consent=args.consent,
        audio=data,
        transcript=args.transcript,
        requester=_actor(),
        tenant=args.tenant,
    )
    try:
        voice = _service().create(new)
    except SteadyVoiceError as exc:
        return _refused(exc)
    print(json.dumps(_summary(voice)))
    return 0


def _every(include_deleted: bool) -> list[Voice]:
    service = _service()
    voices: list[Voice] = []
    before = None
    while True:
        page = service.list_voices(include_deleted, before, PAGE)
        voices += page
        if len(page) < PAGE:
            return voices
        before = (page[-1].created_at, page[-1].id)


def _list(args: argparse.Namespace) -> int:
    voices = _every(args.all)
    if args.json:
        print(json.dumps([_summary(v) for v in voices], indent=2))
        return 0
    for v in voices:
        state = " (deleted)" if v.deleted_at else ""
        print(f"{v.id}  {v.created_at:%Y-%m-%d %H:%M}  {v.speech_seconds:5.1f}s  {v.name}{state}")
    return 0


def _reanalyse(args: argparse.Namespace) -> int:
    service = _service()
    ids = args.voice_ids or [v.id for v in service.every()]
    failed = 0
    for voice_id in ids:
        try:
            voice = service.reanalyse(voice_id)
        except (SteadyVoiceError, OSError) as exc:
            failed += 1
            message = exc.to_dict() if isinstance(exc, SteadyVoiceError) else str(exc)
            print(json.dumps({"voice_id": voice_id, "error": message}), file=sys.stderr)
            continue
        print(json.dumps({"voice_id": voice.id, "analysis_version": voice.analysis_version}))
    return EXIT_REFUSED if failed else 0


def _rm(args: argparse.Namespace) -> int:
    try:
        voice = _service().delete(args.voice_id, _actor())
    except SteadyVoiceError as exc:
        return _refused(exc)
    print(json.dumps(_summary(voice)))
    return 0
