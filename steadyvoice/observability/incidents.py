"""The incident monitor: records when the service stops being ready and when it is ready again.

Every ``slo.readiness_check_seconds`` a thread in each API process evaluates readiness with
``api.health.readiness``, the rules of ``/readyz`` (database reachable, at least one live worker
with its engine loaded, free disk), and writes the transitions to the ``incidents`` table,
which the SLO report reads.

Rules, shared by every API process (there is no leader):

- **One open incident at a time.** A monitor that sees "not ready" opens an incident only if
  none is open. A monitor that sees "ready" closes every open incident that started before its
  check. Check-and-insert runs in one write transaction under a lock (``BEGIN IMMEDIATE`` on
  SQLite, a transaction advisory lock on PostgreSQL), so two processes never open two.
- **Stale observations lose.** A monitor whose "not ready" check is older than the end of an
  incident another monitor just closed does not reopen it: it only inserts if no incident ended
  after its own check time. Clocks of the API hosts are assumed NTP-synchronised.
- **The database itself may be down.** Then nothing can be written: the monitor remembers the
  first failed check and writes the incident (``started_at`` = that check) once the database
  answers again, closing it in the same transaction if the service is ready by then. If several
  processes remember the same outage, the first to write wins; the others see an incident that
  ended after their remembered start and drop theirs.
- **The whole service was down** (killed, host rebooted, restarted): every round also upserts
  ``monitor_beats``. On its first successful round a monitor looks at the newest beat of *any*
  monitor; if it is older than ``1.5 * interval`` (a live monitor beats every interval, so
  half an interval of slack) and no incident is open, it records ``service_down`` from that
  beat, closed when the service is ready. A 5-15 s restart is thus recorded in full.
- **A brand-new deployment is not an outage.** If there is no beat at all on the first
  successful round, the service has never been up: the monitor opens no incident until it has
  seen the service ready once (the workers loading their engines on the first start is not
  downtime).

Precision: a transition is seen at the first check after it happens, so ``started_at`` and
``ended_at`` are each late by at most one interval and a recovery time is exact to ± one
interval. Readiness rules add their own lag on top (a killed worker still counts as live until
its heartbeat is older than ``jobs.worker_ready_seconds``). ``service_down`` starts at the last
beat, at most one interval before the real stop.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.logs import event
from steadyvoice.observability.models import Incident, MonitorBeat
from steadyvoice.periodic import Periodic

log = logging.getLogger("steadyvoice.incidents")

SERVICE_DOWN = "service_down"
DATABASE_UNREACHABLE = "database_unreachable"
STALE_BEATS = 1.5  # intervals without any beat that mean the whole service was down
_LOCK_KEY = 0x5736_0002  # PostgreSQL advisory lock: one incident writer at a time
_KEEP_BEATS = timedelta(days=7)

# Why the service is not ready (``code: detail`` strings, as ``/readyz`` lists them); [] if ready.
ReadinessCheck = Callable[[], list[str]]


def monitor_id() -> str:
    """This process's monitor name: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class _Pending:
    """A not-ready stretch seen while the database could not be written."""

    started_at: datetime
    reason: str
    detail: str


def _split(reasons: list[str]) -> tuple[str, str]:
    """The incident's reason code (the first reason's) and its detail (all of them)."""
    code = reasons[0].split(":", 1)[0].strip() if reasons else DATABASE_UNREACHABLE
    return code, "; ".join(reasons)[:512]


class IncidentMonitor:
    """Evaluates readiness periodically and records incidents; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        interval: float,
        check: ReadinessCheck,
        name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._interval = interval
        self._check = check
        self.name = name or monitor_id()
        self._clock = clock
        self._pending: _Pending | None = None
        self._first = True
        # False on a brand-new deployment (no beats) until this monitor has seen "ready".
        self._armed = False
        self._rounds = Periodic("incidents", interval, self.run_once, log, at_once=True)

    @property
    def pending_since(self) -> datetime | None:
        """Start of a not-ready stretch not yet written (the database could not be reached)."""
        return None if self._pending is None else self._pending.started_at

    # --- one round ----------------------------------------------------------------------

    def run_once(self) -> None:
        """Check readiness once and record what changed (or remember it if the DB is down)."""
        now = self._clock()
        reasons = self._check()
        try:
            with self._store.session() as s:
                self._record(s, now, reasons)
        except Exception as exc:  # noqa: BLE001 - cannot write: remember, write later
            if self._pending is None:
                code, detail = _split(reasons)
                if not reasons:
                    detail = f"{DATABASE_UNREACHABLE}: {type(exc).__name__}"
                self._pending = _Pending(now, code, detail)
                event(log, "incident.pending", reason=code, started_at=now.isoformat())
            return
        self._pending = None
        self._first = False

    def _record(self, s: Session, now: datetime, reasons: list[str]) -> None:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        if self._first:
            self._armed = self._detect_service_down(s, now)
        self._beat(s, now)
        if not reasons:
            self._armed = True
        if self._pending is not None and self._armed:
            p = self._pending
            self._open(s, p.started_at, p.reason, p.detail)
        if not reasons:
            self._close(s, now)
        elif self._armed:
            self._open(s, now, *_split(reasons))

    def _detect_service_down(self, s: Session, now: datetime) -> bool:
        """Record ``service_down`` after a stale newest beat; False if there is no beat at all."""
        newest = s.scalar(select(func.max(MonitorBeat.beat_at)))
        if newest is None:
            return False
        gap = (now - newest).total_seconds()
        if gap > STALE_BEATS * self._interval:
            detail = f"no readiness monitor ran for {gap:.1f} s (last beat {newest.isoformat()})"
            self._open(s, newest, SERVICE_DOWN, detail)
        s.execute(delete(MonitorBeat).where(MonitorBeat.beat_at < newest - _KEEP_BEATS))
        return True

    def _beat(self, s: Session, now: datetime) -> None:
        beat = s.get(MonitorBeat, self.name)
        if beat is None:
            s.add(MonitorBeat(monitor=self.name, beat_at=now))
        else:
            beat.beat_at = now

    def _open(self, s: Session, started_at: datetime, reason: str, detail: str) -> None:
        """Open an incident unless one is open or one ended after ``started_at`` (stale view)."""
        open_or_newer = select(Incident.id).where(
            (Incident.ended_at.is_(None)) | (Incident.ended_at > started_at)
        )
        if s.scalar(open_or_newer.limit(1)) is not None:
            return
        incident_id = uuid.uuid4().hex
        s.add(
            Incident(
                id=incident_id,
                reason=reason,
                detail=detail,
                started_at=started_at,
                ended_at=None,
                detected_by=self.name,
            )
        )
        s.flush()
        event(
            log,
            "incident.opened",
            incident_id=incident_id,
            reason=reason,
            started_at=started_at.isoformat(),
        )

    def _close(self, s: Session, now: datetime) -> None:
        """Close every open incident that started no later than this (ready) check."""
        ids = list(
            s.scalars(
                select(Incident.id).where(Incident.ended_at.is_(None), Incident.started_at <= now)
            )
        )
        if not ids:
            return
        s.execute(
            update(Incident)
            .where(Incident.id.in_(ids), Incident.ended_at.is_(None))
            .values(ended_at=now)
            .execution_options(synchronize_session=False)
        )
        for incident_id in ids:
            event(log, "incident.closed", incident_id=incident_id, ended_at=now.isoformat())

    # --- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
