"""``steadyvoice retention purge | hold | release | holds``: the audio retention policy by hand.

``purge`` runs one purge round now (the API's sweeper runs them on its own, every
``security.rate_sweep_seconds``). ``hold`` and ``release`` place and lift legal holds on a job
or a tenant, each recorded in the audit log as ``hold.place`` / ``hold.lift`` with ``CLI`` as
its method; ``holds`` lists them as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from steadyvoice.jobs.models import LegalHold
from steadyvoice.settings import load_settings
from steadyvoice.storage.holds import HoldKind


def add_parser(sub: Any) -> None:
    """Register the ``retention`` command group on the top-level subparsers."""
    retention = sub.add_parser("retention", help="audio retention: purge now, legal holds")
    cmds = retention.add_subparsers(dest="retention_command", required=True)

    purge = cmds.add_parser("purge", help="delete the audio past retention now (one round)")
    purge.set_defaults(func=_purge)

    for name, helptext, func in (
        ("hold", "put a legal hold on a job or a tenant: its audio is never purged", _hold),
        ("release", "lift a legal hold", _release),
    ):
        cmd = cmds.add_parser(name, help=helptext)
        which = cmd.add_mutually_exclusive_group(required=True)
        which.add_argument("--job", help="a job id")
        which.add_argument("--tenant", help="a tenant name")
        if name == "hold":
            cmd.add_argument("--reason", required=True, help="why (a case number, a request)")
        cmd.set_defaults(func=func)

    holds = cmds.add_parser("holds", help="list the legal holds (JSON lines)")
    holds.add_argument("--kind", choices=[k.value for k in HoldKind])
    holds.set_defaults(func=_list)


def _subject(args: argparse.Namespace) -> tuple[HoldKind, str]:
    return (HoldKind.JOB, args.job) if args.job else (HoldKind.TENANT, args.tenant)


def _shown(hold: LegalHold) -> str:
    return json.dumps(
        {
            "kind": hold.kind,
            "subject": hold.subject,
            "reason": hold.reason,
            "placed_by": hold.placed_by,
            "placed_at": hold.placed_at.isoformat(),
        }
    )


def _purge(_args: argparse.Namespace) -> int:
    from steadyvoice.api.conversions import Conversions
    from steadyvoice.command_store import opened_store
    from steadyvoice.storage.backend import open_storage
    from steadyvoice.storage.retention import purge_outputs

    settings = load_settings()
    cache = Conversions(settings.conversion, settings.data_dir / "conversions")  # no pool yet
    with opened_store(settings, create=False) as store:
        purged = purge_outputs(
            store,
            open_storage(settings, "outputs"),
            settings.retention,
            on_purged=lambda out: cache.forget(out.sha256, out.sample_rate, out.fmt),
        )
    tenants = dict(purged.by_tenant)
    print(json.dumps({"jobs": purged.jobs, "bytes": purged.bytes, "tenants": tenants}))
    return 0


def _hold(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.security.audit import AuditLog
    from steadyvoice.security.commands import _actor
    from steadyvoice.storage.holds import Holds, audited

    kind, subject = _subject(args)
    with opened_store(load_settings(), create=False) as store:
        hold = Holds(store).place(kind, subject, args.reason, by=_actor())
        audited(AuditLog(store), "hold.place", hold, "steadyvoice retention hold")
    print(_shown(hold))
    return 0


def _release(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.security.audit import AuditLog
    from steadyvoice.storage.holds import Holds, audited

    kind, subject = _subject(args)
    with opened_store(load_settings(), create=False) as store:
        hold = Holds(store).lift(kind, subject)
        audited(AuditLog(store), "hold.lift", hold, "steadyvoice retention release")
    print(_shown(hold))
    print(f"steadyvoice: lifted the {kind.value} hold on {subject}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.storage.holds import Holds

    with opened_store(load_settings(), create=False) as store:
        for hold in Holds(store).list(HoldKind(args.kind) if args.kind else None):
            print(_shown(hold))
    return 0
