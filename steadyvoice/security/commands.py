"""``steadyvoice keys create | list | revoke``: manage API keys straight in the store.

``create`` prints the key alone on stdout (``KEY=$(steadyvoice keys create ...)``) and what
it is on stderr; nothing ever prints a key again, nor its hash. Only ``create`` may create the
database; ``list`` and ``revoke`` need the service's (steadyvoice.command_store). A refused
request raises, and ``steadyvoice.cli.main`` reports it in one line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from steadyvoice.errors import InvalidRequest
from steadyvoice.security.models import ApiKey
from steadyvoice.security.principal import TENANT_NAME, Role
from steadyvoice.settings import load_settings

if TYPE_CHECKING:  # the store is imported only when a command runs
    from steadyvoice.security.keys import KeyStore

PAGE = 500
ROLES = ", ".join(r.value for r in Role)


def add_parser(sub: Any) -> None:
    """Register the ``keys`` command group on the top-level subparsers."""
    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    cmds = keys.add_subparsers(dest="keys_command", required=True)

    create = cmds.add_parser("create", help="make an API key; it is printed once, on stdout")
    create.add_argument("--role", required=True, help=f"one of {ROLES}")
    create.add_argument("--tenant", required=True, help="the tenant every lookup is scoped to")
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument(
        "--rate-per-minute", type=int, help="requests a minute (default: the service setting)"
    )
    create.add_argument(
        "--max-in-flight", type=int, help="jobs queued + running (default: the service setting)"
    )
    create.set_defaults(func=_create)

    ls = cmds.add_parser("list", help="list active keys, newest first (never the keys)")
    ls.add_argument("--tenant", help="only this tenant's keys")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    revoke = cmds.add_parser("revoke", help="revoke a key at once, in every API process")
    revoke.add_argument("key_id", help="key_<12 hex>, as `keys list` shows")
    revoke.set_defaults(func=_revoke)


@contextmanager
def _keys(*, create: bool = False) -> Iterator[KeyStore]:
    """The key store; only ``keys create`` may create the database (steadyvoice.command_store)."""
    from steadyvoice.command_store import opened_store
    from steadyvoice.security.keys import KeyStore

    settings = load_settings()
    with opened_store(settings, create=create) as store:
        yield KeyStore(store, settings.security)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a uid with no passwd entry, as in some containers
        return f"cli:uid{os.getuid()}"


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidRequest(f"unknown role {text!r}: use one of {ROLES}", field="role") from None


def _summary(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role,
        "tenant": key.tenant,
        "status": "revoked" if key.revoked_at is not None else "active",
        "rate_per_minute": key.rate_per_minute,
        "max_in_flight": key.max_in_flight,
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "revoked_by": key.revoked_by,
    }


def _create(args: argparse.Namespace) -> int:
    from steadyvoice.security.keys import NewKey

    new = NewKey(
        role=_role(args.role),
        tenant=args.tenant,
        name=args.name,
        rate_per_minute=args.rate_per_minute,
        max_in_flight=args.max_in_flight,
    )
    with _keys(create=True) as keys:
        issued = keys.create(new, by=_actor())
    record = issued.record
    print(issued.token)
    print(
        f"steadyvoice: created {record.id} (prefix {record.prefix}, role {record.role}, "
        f"tenant {record.tenant}); the key above is shown only this once",
        file=sys.stderr,
    )
    return 0


def _every(keys: KeyStore, tenant: str | None, include_revoked: bool) -> list[ApiKey]:
    found: list[ApiKey] = []
    before = None
    while True:
        page = keys.list_keys(
            tenant=tenant, include_revoked=include_revoked, before=before, limit=PAGE
        )
        found += page
        if len(page) < PAGE:
            return found
        before = (page[-1].created_at, page[-1].id)


def _list(args: argparse.Namespace) -> int:
    if args.tenant is not None and not TENANT_NAME.fullmatch(args.tenant):
        raise InvalidRequest(f"{args.tenant!r} is not a tenant name", field="tenant")
    with _keys() as keys:
        found = _every(keys, args.tenant, args.all)
    if args.json:
        print(json.dumps([_summary(k) for k in found], indent=2))
        return 0
    for k in found:
        state = " (revoked)" if k.revoked_at is not None else ""
        print(
            f"{k.id}  {k.prefix}...  {k.role:<8}  {k.tenant}  "
            f"{k.created_at:%Y-%m-%d %H:%M}  {k.name}{state}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _keys() as keys:
        record = keys.revoke(args.key_id, by=_actor())
    print(json.dumps(_summary(record)))
    return 0
