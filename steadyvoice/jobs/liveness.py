"""Worker liveness rows: who is alive, with which engine, doing what."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import delete, select, update

from steadyvoice.jobs import identity
from steadyvoice.jobs.models import Worker, utcnow
from steadyvoice.jobs.store import JobStore

LOADING = "loading"
STANDBY = "standby"  # a supervisor's spare: engine loaded, takes no job until promoted
READY = "ready"
BUSY = "busy"
STOPPING = "stopping"


def local_worker_id(pid: int | None = None) -> str:
    """Stable id for a worker process on this host: ``host:pid``."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


class WorkerRegistry:
    """Heartbeats of worker processes, stored beside the jobs."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def register(self, worker_id: str, engine: str) -> None:
        now = utcnow()
        host, _, pid = worker_id.rpartition(":")
        number = int(pid) if pid.isdigit() else 0
        local = host == socket.gethostname() and number > 0
        with self._store.session() as s:
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
                    heartbeat_at=utcnow(),
                    jobs_done=jobs_done,
                )
            )

    def remove(self, worker_id: str) -> None:
        with self._store.session() as s:
            s.execute(delete(Worker).where(Worker.id == worker_id))

    def live(self, max_age_seconds: float) -> list[Worker]:
        """Workers whose last heartbeat is recent enough."""
        since = utcnow() - timedelta(seconds=max_age_seconds)
        with self._store.reading() as s:
            return list(s.scalars(select(Worker).where(Worker.heartbeat_at >= since)))

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
        since = utcnow() - timedelta(seconds=max_age_seconds)
        with self._store.session() as s:
            result = s.execute(delete(Worker).where(Worker.heartbeat_at < since))
            return int(result.rowcount)  # type: ignore[attr-defined]
