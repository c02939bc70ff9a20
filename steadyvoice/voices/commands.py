"""``steadyvoice voices add | list | reanalyse | rm``: manage voice profiles straight in the store.

Only ``add`` may create the database; the others need the service's (steadyvoice.command_store).
A refused request raises, and ``steadyvoice.cli.main`` reports it in one line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steadyvoice.errors import InvalidRequest, ReferenceTooLarge, SteadyVoiceError
from steadyvoice.security.principal import DEFAULT_TENANT, TENANT_NAME
from steadyvoice.settings import load_settings
from steadyvoice.voices.models import Voice

if TYPE_CHECKING:  # the store is imported only when a command runs
    from steadyvoice.voices.profiles import VoiceService

EXIT_FAILED = 1  # reanalyse: some profile could not be renewed
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
    add.add_argument(
        "--language", help="the recording's language (en, de, zh ...); default: from the transcript"
    )
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


@contextmanager
def _service(*, create: bool = False) -> Iterator[VoiceService]:
    from steadyvoice.command_store import opened_store
    from steadyvoice.voices.profiles import VoiceService
    from steadyvoice.voices.store import VoiceStore

    settings = load_settings()
    with opened_store(settings, create=create) as store:
        yield VoiceService(settings, VoiceStore(store))


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
        "language": voice.language,
        "deleted_at": voice.deleted_at.isoformat() if voice.deleted_at else None,
    }


def _add(args: argparse.Namespace) -> int:
    from steadyvoice.voices.profiles import NewVoice

    if not TENANT_NAME.fullmatch(args.tenant):
        raise InvalidRequest(f"{args.tenant!r} is not a tenant name", field="tenant")
    limit = load_settings().voices.max_upload_bytes
    size = args.file.stat().st_size  # a missing file: main says so, in one line
    if size > limit:
        raise ReferenceTooLarge(
            f"the recording is {size} bytes; the limit is {limit} bytes",
            size_bytes=size,
            limit=limit,
        )
    data = args.file.read_bytes()
    new = NewVoice(
        name=args.name,
        consent=args.consent,
        audio=data,
        transcript=args.transcript,
        language=args.language,
        requester=_actor(),
        tenant=args.tenant,
    )
    with _service(create=True) as service:
        voice = service.create(new)
    print(json.dumps(_summary(voice)))
    return 0


def _every(service: VoiceService, include_deleted: bool) -> list[Voice]:
    voices: list[Voice] = []
    before = None
    while True:
        page = service.list_voices(include_deleted, before, PAGE)
        voices += page
        if len(page) < PAGE:
            return voices
        before = (page[-1].created_at, page[-1].id)


def _list(args: argparse.Namespace) -> int:
    with _service() as service:
        voices = _every(service, args.all)
    if args.json:
        print(json.dumps([_summary(v) for v in voices], indent=2))
        return 0
    for v in voices:
        state = " (deleted)" if v.deleted_at else ""
        print(f"{v.id}  {v.created_at:%Y-%m-%d %H:%M}  {v.speech_seconds:5.1f}s  {v.name}{state}")
    return 0


def _reanalyse(args: argparse.Namespace) -> int:
    """Renew each profile; one line on stderr for each that fails, then exit 1."""
    failed = 0
    with _service() as service:
        ids = args.voice_ids or [v.id for v in service.every()]
        for voice_id in ids:
            try:
                voice = service.reanalyse(voice_id)
            except (SteadyVoiceError, OSError) as exc:
                failed += 1
                code = exc.code if isinstance(exc, SteadyVoiceError) else "os_error"
                said = exc.message if isinstance(exc, SteadyVoiceError) else str(exc)
                print(f"steadyvoice: error: {code}: {voice_id}: {said}", file=sys.stderr)
                continue
            print(json.dumps({"voice_id": voice.id, "analysis_version": voice.analysis_version}))
    return EXIT_FAILED if failed else 0


def _rm(args: argparse.Namespace) -> int:
    with _service() as service:
        voice = service.delete(args.voice_id, _actor())
    print(json.dumps(_summary(voice)))
    return 0
