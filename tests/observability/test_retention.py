"""Retention: refusals and closed incidents past their days go, in batches; the rest stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from processes import poll  # type: ignore[import-not-found]
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection

from steadyvoice.api.app import create_app
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import retention
from steadyvoice.observability.models import Incident, Refusal
from steadyvoice.observability.slo import build_report
from steadyvoice.settings import (
    ConfigurationError,
    RetentionSettings,
    Settings,
    SloSettings,
    load_settings,
)

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=utcnow().tzinfo)
DAY = timedelta(days=1)


def _refusals(store: JobStore, ages_days: list[float]) -> None:
    with store.session() as s:
        s.add_all(
            Refusal(at=NOW - age * DAY, reason="deadline", count=2, chars=10) for age in ages_days
        )


def _incident(
    store: JobStore, incident_id: str, started_days: float, ended_days: float | None
) -> None:
    with store.session() as s:
        s.add(
            Incident(
                id=incident_id,
                reason="no_live_worker",
                detail=None,
                started_at=NOW - started_days * DAY,
                ended_at=None if ended_days is None else NOW - ended_days * DAY,
                detected_by="test:1",
            )
        )


def _refusal_ages(store: JobStore) -> list[float]:
    with store.reading() as s:
        ats = s.scalars(select(Refusal.at).order_by(Refusal.at.desc()))
        return [round((NOW - at) / DAY, 2) for at in ats]


def _incident_ids(store: JobStore) -> set[str]:
    with store.reading() as s:
        return set(s.scalars(select(Incident.id)))


def test_old_refusals_go_in_batches_and_the_window_stays(store: JobStore) -> None:
    old = [31.0 + i / 100 for i in range(25)]
    _refusals(store, [0.5, 10, 29.9, *old])
    statements: list[str] = []

    def seen(conn: Connection, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM REFUSALS"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        deleted = retention.sweep_refusals(store, 30 * DAY, NOW, batch=10)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert deleted == 25
    assert len(statements) == 3, "25 rows in batches of 10: three deletes"
    assert _refusal_ages(store) == [0.5, 10.0, 29.9]
    assert retention.sweep_refusals(store, 30 * DAY, NOW, batch=10) == 0
    # The SLO report over the default window still counts every refusal it covers.
    report = build_report(store, SloSettings(), 30 * DAY, NOW)
    assert report.refused.total == 6


def test_a_round_stops_after_max_batches_and_the_next_goes_on(store: JobStore) -> None:
    _refusals(store, [40 + i / 100 for i in range(7)])
    assert retention.sweep_refusals(store, 30 * DAY, NOW, batch=2, max_batches=2) == 4
    assert retention.sweep_refusals(store, 30 * DAY, NOW, batch=2, max_batches=2) == 3
    assert _refusal_ages(store) == []


def test_closed_incidents_past_retention_go_and_open_ones_stay(store: JobStore) -> None:
    _incident(store, "old-closed", 420, 419)
    _incident(store, "old-but-open", 420, None)
    _incident(store, "ended-recently", 420, 2)
    _incident(store, "recent", 3, 2.9)
    deleted = retention.sweep_incidents(store, 400 * DAY, NOW, batch=1)
    assert deleted == 1
    assert _incident_ids(store) == {"old-but-open", "ended-recently", "recent"}


def test_one_sweep_uses_both_settings(store: JobStore) -> None:
    _refusals(store, [1, 45])
    _incident(store, "old", 50, 49)
    _incident(store, "kept", 50, 20)
    swept = retention.sweep(store, RetentionSettings(refusals_days=40, incidents_days=30), NOW)
    assert swept == retention.Swept(refusals=1, incidents=1)
    assert _refusal_ages(store) == [1.0]
    assert _incident_ids(store) == {"kept"}


def test_defaults_cover_the_slo_window_and_shorter_is_refused() -> None:
    settings = load_settings()
    assert settings.retention.refusals_days >= settings.slo.window_days
    assert settings.retention.incidents_days >= settings.slo.window_days
    with pytest.raises(ConfigurationError, match=r"retention.refusals_days \(7\).*window_days"):
        load_settings(retention={"refusals_days": 7})
    with pytest.raises(ConfigurationError, match=r"retention.incidents_days"):
        load_settings(
            retention={"refusals_days": 400, "incidents_days": 300}, slo={"window_days": 366}
        )


def test_the_api_sweeper_prunes_both_tables(settings_factory: Callable[..., Settings]) -> None:
    """The running API's periodic sweeper (not only the function) deletes expired rows."""
    settings = settings_factory(security={"rate_sweep_seconds": 0.1})
    now = utcnow()
    with TestClient(create_app(settings)) as client:
        store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
        with store.session() as s:
            s.add(Refusal(at=now - 100 * DAY, reason="deadline", count=1, chars=1))
            s.add(Refusal(at=now - DAY, reason="deadline", count=1, chars=1))
            s.add(
                Incident(
                    id="gone",
                    reason="x",
                    detail=None,
                    started_at=now - 500 * DAY,
                    ended_at=now - 499 * DAY,
                    detected_by="t",
                )
            )

        def pruned() -> bool:
            with store.reading() as s:
                refusals = s.scalar(select(func.count()).select_from(Refusal))
            return refusals == 1 and "gone" not in _incident_ids(store)

        poll(pruned, 30, "the sweeper to delete the expired rows")
