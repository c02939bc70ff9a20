"""``steadyvoice audit export | verify | rotate``: archive the audit log, then let old rows go.

``export`` writes a signed segment of every row before a date (steadyvoice.security.retention);
``verify`` checks one offline; ``rotate`` checks it against the log and only then deletes the
rows it holds, recording the rotation in the log itself. All three need the HMAC key file the
operator keeps (``openssl rand -hex 32 > audit.key``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steadyvoice.errors import InvalidRequest
from steadyvoice.settings import load_settings


def add_parser(sub: Any) -> None:
    """Register the ``audit`` command group on the top-level subparsers."""
    audit = sub.add_parser("audit", help="audit log retention: export, verify, rotate")
    cmds = audit.add_subparsers(dest="audit_command", required=True)
    key_help = "file holding the HMAC key (at least 32 bytes) that signs archives"

    export = cmds.add_parser("export", help="write a signed segment of the rows before a date")
    export.add_argument("--before", required=True, type=_date, help="cut-off (ISO date or time)")
    export.add_argument("--out", required=True, type=Path, help="the archive file to create")
    export.add_argument("--key-file", required=True, type=Path, help=key_help)
    export.set_defaults(func=_export)

    verify = cmds.add_parser("verify", help="check an archive's checksum and signature")
    verify.add_argument("--archive", required=True, type=Path)
    verify.add_argument("--key-file", required=True, type=Path, help=key_help)
    verify.set_defaults(func=_verify)

    rotate = cmds.add_parser(
        "rotate", help="delete the rows an archive holds, once it matches the log"
    )
    rotate.add_argument("--before", required=True, type=_date, help="the archive's cut-off")
    rotate.add_argument("--archive", required=True, type=Path, help="made by `audit export`")
    rotate.add_argument("--key-file", required=True, type=Path, help=key_help)
    rotate.set_defaults(func=_rotate)


def _date(value: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC. Not in the future."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if when > datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{value} is in the future")
    return when.astimezone(UTC)


def _summary(segment: Any) -> str:
    return json.dumps(
        {
            "before": segment.before.isoformat(),
            "first_id": segment.first_id,
            "through_id": segment.through_id,
            "rows": segment.rows,
            "sha256": segment.sha256,
        }
    )


def _export(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.security.retention import export, read_key

    key = read_key(args.key_file)
    out: Path = args.out
    partial = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidRequest(f"{out} exists; choose a new file", field="out") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot create {out}: {exc.strerror}", field="out") from None
    os.close(fd)  # claimed the name; the segment is written beside it, then moved over it
    try:
        with (
            opened_store(load_settings(), create=False) as store,
            open(partial, "wb", opener=_private) as f,
        ):
            segment = export(store, args.before, f, key)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
        raise
    print(_summary(segment))
    print(f"steadyvoice: wrote {segment.rows} audit rows to {out}", file=sys.stderr)
    return 0


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _verify(args: argparse.Namespace) -> int:
    from steadyvoice.security.retention import read_key, verify

    segment = verify(args.archive, read_key(args.key_file))
    print(_summary(segment))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.security.commands import _actor
    from steadyvoice.security.retention import read_key, rotate

    key = read_key(args.key_file)
    with opened_store(load_settings(), create=False) as store:
        rotation = rotate(store, args.archive, args.before, key, by=_actor())
    print(
        json.dumps(
            {
                "through_id": rotation.through_id,
                "rows": rotation.rows,
                "archive_sha256": rotation.archive_sha256,
                "before": rotation.before.isoformat(),
            }
        )
    )
    print(
        f"steadyvoice: deleted {rotation.rows} audit rows through id {rotation.through_id}; "
        f"keep {args.archive} (and the key) as the only copy of them",
        file=sys.stderr,
    )
    return 0
