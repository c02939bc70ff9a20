"""``steadyvoice backup create | verify | restore | list DEST``; DEST is a folder or
``s3://bucket/prefix`` (docs/backup.md).

Each prints one JSON summary on stdout and, on stderr, a line per problem. ``create`` and
``verify`` exit 1 when anything is missing or corrupt; ``restore`` refuses (exit 2) a target
that is not empty.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from steadyvoice.settings import Settings, load_settings

DEST_HELP = "a folder (an NFS mount, say) or s3://bucket/prefix"


def add_parser(sub: Any) -> None:
    """Register the ``backup`` command group on the top-level subparsers."""
    backup = sub.add_parser("backup", help="back up, verify and restore the database and audio")
    cmds = backup.add_subparsers(dest="backup_command", required=True)

    create = cmds.add_parser(
        "create", help="snapshot the database, copy new files, write a manifest"
    )
    create.set_defaults(func=_create)
    verify = cmds.add_parser("verify", help="re-hash a backup; exit 1 on any mismatch")
    verify.set_defaults(func=_verify)
    restore = cmds.add_parser("restore", help="restore a backup into an empty data dir/database")
    restore.set_defaults(func=_restore)
    listing = cmds.add_parser("list", help="the finished backups in DEST, oldest first")
    listing.set_defaults(func=_list)
    for cmd in (create, verify, restore, listing):
        cmd.add_argument("dest", metavar="DEST", help=DEST_HELP)
    for cmd in (verify, restore):
        cmd.add_argument("--snapshot", help="the backup's id (default: the newest)")


def _settings_and_dest(args: argparse.Namespace) -> tuple[Settings, Any]:
    from steadyvoice.backup.destinations import open_destination

    settings = load_settings()
    return settings, open_destination(args.dest, settings)


def _problems(**groups: list[str]) -> None:
    for label, items in groups.items():
        for item in items:
            print(f"{label.upper()} {item}", file=sys.stderr)


def _create(args: argparse.Namespace) -> int:
    from steadyvoice.backup.create import create
    from steadyvoice.command_store import opened_store

    settings, dest = _settings_and_dest(args)
    with opened_store(settings, create=False):
        pass  # names the database and refuses a missing one or another version's schema
    _manifest, report = create(settings, dest, settings.backup.parallel)
    print(json.dumps(asdict(report) | {"healthy": report.healthy}))
    _problems(missing=report.missing, corrupt=report.corrupt)
    return 0 if report.healthy else 1


def _verify(args: argparse.Namespace) -> int:
    from steadyvoice.backup.verify import verify

    settings, dest = _settings_and_dest(args)
    report = verify(dest, args.snapshot, settings.backup.parallel)
    print(json.dumps(asdict(report) | {"healthy": report.healthy}))
    _problems(missing=report.missing, corrupt=report.corrupt, incomplete=report.incomplete)
    return 0 if report.healthy else 1


def _restore(args: argparse.Namespace) -> int:
    from steadyvoice.backup.restore import restore
    from steadyvoice.command_store import announce

    settings, dest = _settings_and_dest(args)
    announce(settings)
    report = restore(settings, dest, args.snapshot, settings.backup.parallel)
    print(json.dumps(asdict(report)))
    print(
        f"steadyvoice: restored backup {report.snapshot}: {report.files} files and the "
        "database; `steadyvoice serve` upgrades an older schema at start",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from steadyvoice.backup.catalog import finished

    _settings, dest = _settings_and_dest(args)
    for snapshot_id in finished(dest):
        print(snapshot_id)
    return 0
