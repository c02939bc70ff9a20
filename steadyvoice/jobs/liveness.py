"""Worker liveness rows: who is alive, with which engine, doing what."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, text, update

from steadyvoice.jobs import identity
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Worker
from steadyvoice.jobs.store import JobStore

LOADING = "loading"
STANDBY = "standby"  # a supervisor's spare: engine loaded, takes no job until promoted
READY = "ready"
BUSY = "busy"
STOPPING = "stopping"
INSTANCE_BYTES = 4  # 8 hex digits
# Built once: every speech call and readiness probe asks who is live.
_LIVE = select(Worker).where(Worker.heartbeat_at >= bindparam("since"))


def new_instance() -> str:
    """A random instance tag for one worker process (made once, when it starts)."""
    return secrets.token_hex(INSTANCE_BYTES)


def local_worker_id(pid: int | None = None, instance: str | None = None) -> str:
    """The id of a worker process on this host: ``host:pid:instance``.

    Hostname and pid alone repeat: containers may share a hostname and each start its pids
    from 1. The random ``instance`` (a new one unless given: a supervisor names its child's
    before it starts) makes the id unique, so one worker's row or jobs are never taken for
    another's. Call it once per process and keep the result.
    """
    number = pid if pid is not None else os.getpid()
    return f"{socket.gethostname()}:{number}:{instance or new_instance()}"


def parse_worker_id(worker_id: str) -> tuple[str, int]:
    """``(host, pid)`` of a worker id (``host:pid:instance``, or an older ``host:pid``);
    pid 0 when the id names none."""
    parts = worker_id.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    host, _, pid = worker_id.rpartition(":")
    return host, int(pid) if pid.isdigit() else 0


@dataclass(frozen=True)
class Card:
    """What the fleet view shows of a worker besides its heartbeat (``GET /v1/workers``)."""

    queues: tuple[str, ...] = ()  # the Celery queues it consumes (none: it polls the store)
    recycles: int = 0  # its slot's (or port's) recycles before this process
    metrics_port: int | None = None  # where it serves its own /metrics, if it does


class WorkerRegistry:
    """Heartbeats of worker processes, stored beside the jobs."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def register(self, worker_id: str, engine: str, card: Card | None = None) -> None:
        card = card or Card()
        host, number = parse_worker_id(worker_id)
        local = host == socket.gethostname() and number > 0
        with self._store.session() as s:
            now = db_now(s)
            s.execute(delete(Worker).where(Worker.id == worker_id))
            s.add(
                Worker(
                    id=worker_id,
                    host=host,
                    pid=number,
                    engine=engine,
                    state=LOADING,
                    started_at=now,
                    heartbeat_at=now,
                    jobs_done=0,
                    process=identity.process_key(number) if local else None,
                    queues=",".join(card.queues) or None,
                    recycles=card.recycles,
                    metrics_port=card.metrics_port,
                )
            )

    def beat(self, worker_id: str, state: str, current_job: str | None, jobs_done: int) -> None:
        with self._store.session() as s:
            s.execute(
                update(Worker)
                .where(Worker.id == worker_id)
                .values(
                    state=state,
                    current_job=current_job,
                    heartbeat_at=db_now(s),
                    jobs_done=jobs_done,
                )
            )

    def retire(self, worker_id: str) -> None:
        """Leave the row as a marker that this worker is down until its replacement registers
        (a standalone worker's recycle: :mod:`steadyvoice.jobs.age`); the replacement clears it
        (:meth:`clear_retired`), or the reaper prunes it."""
        with self._store.session() as s:
            s.execute(
                update(Worker)
                .where(Worker.id == worker_id)
                .values(state=STOPPING, current_job=None, heartbeat_at=db_now(s))
            )

    def take_recycle_turn(
        self, worker_id: str, engine: str, loading_window: float, stopping_window: float
    ) -> bool:
        """Mark ``worker_id`` stopping unless another worker of ``engine`` is loading (heartbeat
        within ``loading_window``) or stopping (within ``stopping_window``): one transaction,
        serialized per engine, so two peers due at the same moment never both get the turn
        (SQLite's writers are serialized by ``BEGIN IMMEDIATE``; PostgreSQL takes a lock per
        engine for the transaction). True: this worker is the one recycling now."""
        with self._store.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"recycle:{engine}"}
                )
            now = db_now(s)
            peers = s.scalars(
                select(Worker).where(
                    Worker.id != worker_id,
                    Worker.engine == engine,
                    Worker.state.in_((LOADING, STOPPING)),
                    Worker.heartbeat_at >= now - timedelta(seconds=stopping_window),
                )
            )
            loading_since = now - timedelta(seconds=loading_window)
            for peer in peers:
                if peer.state == STOPPING or peer.heartbeat_at >= loading_since:
                    return False
            s.execute(
                update(Worker)
                .where(Worker.id == worker_id)
                .values(state=STOPPING, heartbeat_at=now)
            )
            return True

    def clear_retired(self, worker_id: str, engine: str) -> int:
        """Remove the markers :meth:`retire` left on this host for ``engine`` whose process is
        proven gone: ``worker_id`` (just registered) replaces them."""
        host, _ = parse_worker_id(worker_id)
        with self._store.reading() as s:
            rows = list(
                s.scalars(
                    select(Worker).where(
                        Worker.host == host,
                        Worker.engine == engine,
                        Worker.state == STOPPING,
                        Worker.current_job.is_(None),
                        Worker.id != worker_id,
                    )
                )
            )
        gone = [w for w in rows if identity.proven_gone(w.host, w.pid, w.process)]
        return sum(self.forget(w) for w in gone)

    def remove(self, worker_id: str) -> None:
        with self._store.session() as s:
            s.execute(delete(Worker).where(Worker.id == worker_id))

    def live(self, max_age_seconds: float) -> list[Worker]:
        """Workers whose last heartbeat is recent enough."""
        with self._store.reading() as s:
            since = db_now(s) - timedelta(seconds=max_age_seconds)
            return list(s.scalars(_LIVE, {"since": since}))

    def serving(self, max_age_seconds: float) -> int:
        """Live workers with their engine loaded (ready or busy): what readiness and admission
        count as capacity."""
        return sum(1 for w in self.live(max_age_seconds) if w.state in (READY, BUSY))

    def gone_here(self) -> list[Worker]:
        """Workers of this host whose process is proven gone (see ``jobs.identity``).

        Only rows that recorded a process key can be proven: the others (other hosts, no
        ``/proc``, rows from before the key existed) are left to their leases.
        """
        with self._store.reading() as s:
            rows = list(s.scalars(select(Worker).where(Worker.host == socket.gethostname())))
        return [w for w in rows if identity.proven_gone(w.host, w.pid, w.process)]

    def forget(self, worker: Worker) -> bool:
        """Remove ``worker``'s row if it still names the same process (False: it was replaced)."""
        with self._store.session() as s:
            result = s.execute(
                delete(Worker).where(Worker.id == worker.id, Worker.process == worker.process)
            )
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def prune(self, max_age_seconds: float) -> int:
        """Forget workers silent for much longer than the readiness window."""
        with self._store.session() as s:
            since = db_now(s) - timedelta(seconds=max_age_seconds)
            result = s.execute(delete(Worker).where(Worker.heartbeat_at < since))
            return int(result.rowcount)  # type: ignore[attr-defined]
