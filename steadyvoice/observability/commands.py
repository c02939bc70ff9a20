"""``steadyvoice slo report [--window 30d] [--end TIME] [--json]``: the SLO report."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from steadyvoice.settings import load_settings


def _window(text: str) -> timedelta:
    from steadyvoice.observability.slo_stats import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _end(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"end must be an ISO 8601 time with a time zone, e.g. 2026-11-01T00:00Z; got {text!r}"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("end needs a time zone, e.g. 2026-11-01T00:00Z")
    return when.astimezone(UTC)


def add_parser(sub: Any) -> None:
    """Register the ``slo`` command group on the top-level subparsers."""
    slo = sub.add_parser("slo", help="service level objectives: report")
    cmds = slo.add_subparsers(dest="slo_command", required=True)
    report = cmds.add_parser("report", help="availability, latency, budgets, incidents, per day")
    report.add_argument(
        "--window",
        type=_window,
        help="how far back from now: 30d, 12h or 90m (default STEADYVOICE_SLO__WINDOW_DAYS)",
    )
    report.add_argument(
        "--end",
        type=_end,
        help="end of the window instead of now, e.g. 2026-12-01T00:00Z for November's report",
    )
    report.add_argument("--json", action="store_true", help="the full report as JSON")
    report.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from steadyvoice.command_store import opened_store
    from steadyvoice.observability.slo import build_report
    from steadyvoice.observability.slo_render import render

    settings = load_settings()
    window = args.window or timedelta(days=settings.slo.window_days)
    end = args.end or datetime.now(UTC)
    with opened_store(settings, create=False) as store:  # never creates one
        report = build_report(store, settings.slo, window, end)
    print(report.model_dump_json(indent=2) if args.json else render(report), end="")
    if args.json:
        print()
    return 0
