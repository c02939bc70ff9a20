"""``steadyvoice workers [--json]``: every worker of the fleet, read from the job store."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from steadyvoice.settings import load_settings

_COLUMNS = ("HOST", "PID", "ENGINE", "QUEUES", "STATE", "BEAT", "JOBS", "RECYCLES", "METRICS")


def add_parser(sub: Any) -> None:
    """Register the ``workers`` command on the top-level subparsers."""
    workers = sub.add_parser("workers", help="list every worker: host, engine, queues, state")
    workers.add_argument("--json", action="store_true", help="one JSON object, as GET /v1/workers")
    workers.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.jobs.fleet import members

    settings = load_settings()
    with opened_store(settings, create=False) as store:
        found = members(store, settings.jobs.worker_ready_seconds)
    serving = sum(1 for m in found if m.serving)
    if args.json:
        rows = [asdict(m) for m in found]
        print(json.dumps({"workers": rows, "serving": serving}, indent=2, default=str))
        return 0
    table = [_COLUMNS] + [
        (
            m.host,
            str(m.pid),
            m.engine,
            ",".join(m.queues) or "-",
            m.state if m.live else f"{m.state} (silent)",
            f"{m.heartbeat_age_seconds:.0f}s ago",
            str(m.jobs_done),
            str(m.recycles),
            str(m.metrics_port or "-"),
        )
        for m in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{serving} serving of {len(found)} registered")
    return 0
