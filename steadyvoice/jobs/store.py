"""The job store: every job state change goes through here, guarded by the state machine."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from steadyvoice.errors import (
    IdempotencyKeyReused,
    JobNotCancelable,
    JobNotFound,
    TooManyInFlight,
)
from steadyvoice.jobs import claims
from steadyvoice.jobs.database import READ_ONLY, make_engine, migrate, newest_first
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus, sources_of
from steadyvoice.jobs.usage import add_stored_bytes
from steadyvoice.security.principal import DEFAULT_TENANT
from steadyvoice.settings import DatabaseSettings
from steadyvoice.webhooks.models import initial_state

IN_FLIGHT = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
IN_FLIGHT_RETRY_SECONDS = 5

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
WORKER_LOST = "worker_lost"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class NewJob:
    """A validated request, ready to be recorded."""

    text: str
    voice: str
    engine: str
    engine_version: str | None
    params: dict[str, Any]
    requester: str
    deadline_seconds: float
    request_id: str | None = None
    idempotency_key: str | None = None
    tenant: str = DEFAULT_TENANT
    spoken_text: str | None = None
    estimated_seconds: float | None = None  # the audio it will make, about (jobs.caps)
    callback_url: str | None = None  # called when it finishes (steadyvoice.webhooks)

    def request_hash(self) -> str:
        body = json.dumps(
            {"text": self.text, "voice": self.voice, "params": self.params}, sort_keys=True
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A job held by a worker. ``attempt`` is the fencing token for every later write."""

    job: Job
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class Result:
    """What a successful synthesis produced."""

    engine_version: str
    sample_rate: int
    duration_seconds: float
    sha256: str
    size_bytes: int


@dataclass
class ReapReport:
    """What one reaper pass changed (job ids)."""

    requeued: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)


def output_name_for(job_id: str, created: datetime, fmt: str) -> str:
    """Relative output path; derived from the job alone so a retried job writes the same file."""
    return f"{created:%Y/%m/%d}/output_{created:%Y%m%d_%H%M%S}_{job_id[:12]}.{fmt}"


class JobStore:
    """Jobs in SQL (SQLite or PostgreSQL). Safe to use from many processes at once."""

    def __init__(self, engine: Engine, lock_dir: Path | None = None) -> None:
        self.engine = engine
        self._lock_dir = lock_dir
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(
        cls, url: str, lock_dir: Path | None = None, database: DatabaseSettings | None = None
    ) -> JobStore:
        """A store on ``url``; ``database`` holds PostgreSQL's time limits (defaults if None)."""
        return cls(make_engine(url, database), lock_dir)

    def migrate(self) -> None:
        migrate(self.engine, self._lock_dir)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write transaction, committed on success."""
        with self._sessions() as s, s.begin():
            yield s

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction (no write lock on SQLite)."""
        with self._readers() as s, s.begin():
            yield s

    # --- creating and reading -------------------------------------------------------------

    def create(self, new: NewJob, max_in_flight: int | None = None) -> tuple[Job, bool]:
        """Record a queued job. With an idempotency key, a repeat returns the first job.

        ``max_in_flight`` caps the requester's queued + running jobs; the count and the insert
        are one transaction, serialized per requester, so parallel API processes cannot both
        take the last place. The key is looked up inside that transaction, before the count: a
        repeat racing its original is answered with the original's job, never refused for the
        place that job holds. Two first requests racing to insert: the unique key lets one in,
        and the other returns its job.
        """
        try:
            with self.session() as s:
                if max_in_flight is not None:
                    _serialize_requester(s, new.requester)
                existing = self._repeat_of(s, new)
                if existing is not None:
                    return existing, False
                if max_in_flight is not None:
                    _check_in_flight(s, new.requester, max_in_flight)
                job = _queued(new, db_now(s))
                s.add(job)
        except IntegrityError:
            existing = self.find_repeat(new)
            if existing is None:
                raise
            return existing, False
        return job, True

    def find_repeat(self, new: NewJob) -> Job | None:
        """The job this request's idempotency key already recorded (None: no key, or a new
        one); ``idempotency_key_reused`` if the key recorded a different request."""
        if new.idempotency_key is None:
            return None
        with self.reading() as s:
            return self._repeat_of(s, new)

    @staticmethod
    def _repeat_of(s: Session, new: NewJob) -> Job | None:
        if new.idempotency_key is None:
            return None
        job = s.scalar(
            select(Job).where(
                Job.requester == new.requester, Job.idempotency_key == new.idempotency_key
            )
        )
        if job is not None and job.request_hash != new.request_hash():
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request",
                job_id=job.id,
            )
        return job

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        """The job; ``job_not_found`` if missing or, with ``tenant``, another tenant's."""
        if not JOB_ID.fullmatch(job_id):  # never send a client's junk (NUL...) to SQL
            raise JobNotFound(f"no job {job_id!r}", job_id=job_id)
        with self.reading() as s:
            job = s.get(Job, job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            raise JobNotFound(f"no job {job_id}", job_id=job_id)
        return job

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
        tenant: str | None = None,
    ) -> list[Job]:
        """Newest first. ``before`` is the (created_at, id) of the last item of the prior page."""
        q = newest_first(select(Job), Job.created_at, Job.id, before, limit)
        if tenant is not None:
            q = q.where(Job.tenant == tenant)
        if status is not None:
            q = q.where(Job.status == status.value)
        if created_after is not None:
            q = q.where(Job.created_at >= created_after)
        if created_before is not None:
            q = q.where(Job.created_at < created_before)
        with self.reading() as s:
            return list(s.scalars(q))

    def succeeded(self) -> Iterator[Job]:
        """Every succeeded job, oldest first (for verify and backup)."""
        with self.reading() as s:
            yield from s.scalars(
                select(Job).where(Job.status == JobStatus.SUCCEEDED.value).order_by(Job.created_at)
            )

    def has_queued(self) -> bool:
        with self.reading() as s:
            q = select(Job.id).where(Job.status == JobStatus.QUEUED.value).limit(1)
            return s.scalar(q) is not None

    def count_by_status(self) -> dict[str, int]:
        with self.reading() as s:
            rows = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {str(status): int(n) for status, n in rows}

    # --- state changes ------------------------------------------------------------------

    @staticmethod
    def _move(
        s: Session, target: JobStatus, where: Sequence[ColumnElement[bool]], **values: Any
    ) -> int:
        """The one place a job changes state: only from the states that may lead to ``target``."""
        allowed = [st.value for st in sources_of(target)]
        stmt = (
            update(Job)
            .where(Job.status.in_(allowed), *where)
            .values(status=target.value, **values)
            .execution_options(synchronize_session=False)
        )
        return int(s.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def claim(
        self,
        worker_id: str,
        lease_seconds: float,
        batch_max_running: int = 0,
        engine: str | None = None,
    ) -> Claim | None:
        """Atomically take the next queued job that is still inside its deadline: the
        interactive lane first, then batch items fairly, while fewer than
        ``batch_max_running`` (0: any number) run (:mod:`steadyvoice.jobs.claims`); only
        ``engine``'s jobs when it is given (a Celery worker's queue)."""
        for _ in range(8):
            with self.session() as s:
                now = db_now(s)
                job_id = claims.next_job_id(s, now, batch_max_running, engine)
                if job_id is None:
                    return None
                claim = self._take(s, job_id, worker_id, lease_seconds, now)
                if claim is not None:
                    return claim
        return None

    def batch_waiting(self, engine: str | None = None) -> bool:
        """Whether a batch item (of ``engine``) is queued and inside its deadline."""
        with self.reading() as s:
            return claims.batch_waiting(s, db_now(s), engine)

    def claim_job(self, job_id: str, worker_id: str, lease_seconds: float) -> Claim | None:
        """Take this one job (a Celery message names it) by the same fenced move; None when it
        is no longer queued (claimed, finished, canceled) or is past its deadline."""
        with self.session() as s:
            return self._take(s, job_id, worker_id, lease_seconds, db_now(s))

    def _take(
        self, s: Session, job_id: str, worker_id: str, lease_seconds: float, now: datetime
    ) -> Claim | None:
        moved = self._move(
            s,
            JobStatus.RUNNING,
            [Job.id == job_id, Job.status == JobStatus.QUEUED.value, Job.deadline_at > now],
            worker_id=worker_id,
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=now,
        )
        if moved != 1:
            return None
        job = s.get(Job, job_id, populate_existing=True)
        assert job is not None
        return Claim(job=job, worker_id=worker_id, attempt=job.attempts)

    @staticmethod
    def held(claim: Claim) -> list[ColumnElement[bool]]:
        return JobStore.held_by(claim.job.id, claim.worker_id, claim.attempt)

    @staticmethod
    def held_by(job_id: Any, worker_id: Any, attempt: Any) -> list[ColumnElement[bool]]:
        """The claim test, for values or bound parameters (a statement built once)."""
        return [
            Job.id == job_id,
            Job.worker_id == worker_id,
            Job.attempts == attempt,
            Job.status == JobStatus.RUNNING.value,
        ]

    def heartbeat(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease; False when the job is no longer ours (reaped, canceled, timed out)."""
        with self.session() as s:
            stmt = (
                update(Job)
                .where(*self.held(claim))
                .values(lease_expires_at=db_now(s) + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return int(s.execute(stmt).rowcount) == 1  # type: ignore[attr-defined]

    def _finish(
        self,
        claim: Claim,
        target: JobStatus,
        before_commit: Callable[[], None] | None = None,
        **values: Any,
    ) -> bool:
        with self.session() as s:
            moved = self._move(
                s,
                target,
                self.held(claim),
                finished_at=db_now(s),
                lease_expires_at=None,
                **values,
            )
            if moved == 1 and target is JobStatus.SUCCEEDED:  # the tenant's stored-bytes total
                # Before the output is put in place: a failure here leaves no file behind.
                add_stored_bytes(s, claim.job.tenant, int(values["size_bytes"]))
            if moved == 1 and before_commit is not None:
                before_commit()  # the row stays locked to the commit: nobody else finishes it
        return moved == 1

    def complete(
        self, claim: Claim, result: Result, publish: Callable[[], None] | None = None
    ) -> bool:
        """Record success in one transaction; False if the claim was lost meanwhile.

        ``publish`` puts the output file in place (:mod:`steadyvoice.jobs.outputs`): it runs
        inside that transaction once the fenced update matched, before the commit, so only the
        attempt that is recorded ever writes the output, and a visible success has its file.
        """
        return self._finish(
            claim,
            JobStatus.SUCCEEDED,
            publish,
            engine_version=result.engine_version,
            sample_rate=result.sample_rate,
            duration_seconds=result.duration_seconds,
            sha256=result.sha256,
            size_bytes=result.size_bytes,
            error_code=None,
            error_message=None,
        )

    def fail(self, claim: Claim, code: str, message: str) -> bool:
        """Record a failure; False if the claim was lost meanwhile."""
        return self._finish(claim, JobStatus.FAILED, error_code=code, error_message=message[:2000])

    def cancel(self, job_id: str, tenant: str | None = None) -> Job:
        """Cancel a queued or running job (a running one's result is discarded)."""
        job = self.get(job_id, tenant)
        with self.session() as s:
            moved = self._move(
                s,
                JobStatus.CANCELED,
                [Job.id == job_id],
                finished_at=db_now(s),
                lease_expires_at=None,
            )
        if moved != 1:
            current = self.get(job_id).status
            raise JobNotCancelable(
                f"a {current} job cannot be canceled", job_id=job.id, status=current
            )
        return self.get(job_id)

    def release_worker(self, worker_id: str, max_attempts: int) -> ReapReport:
        """A worker is known dead: return its running jobs to the queue now (or fail them)."""
        return self._recover([Job.worker_id == worker_id], max_attempts, "worker died")

    def reap(self, max_attempts: int) -> ReapReport:
        """Fail jobs past their deadline, then requeue jobs whose lease expired.

        Deadlines go first, so an overdue job with a dead worker is failed once as ``timeout``
        instead of being requeued and then failed in the same pass.
        """
        timed_out: list[str] = []
        with self.session() as s:
            now = db_now(s)
            ids = list(
                s.scalars(
                    select(Job.id)
                    .where(
                        Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                        Job.deadline_at < now,
                    )
                    # A row another transaction holds (a worker recording it) is left for the
                    # next pass instead of stalling this one (PostgreSQL; SQLite has one writer).
                    .with_for_update(skip_locked=True)
                )
            )
            for job_id in ids:
                if self._move(
                    s,
                    JobStatus.FAILED,
                    [Job.id == job_id, Job.deadline_at < now],
                    finished_at=now,
                    lease_expires_at=None,
                    error_code=TIMEOUT,
                    error_message="the job did not finish before its deadline",
                ):
                    timed_out.append(job_id)
        report = self._recover([Job.lease_expires_at < now], max_attempts, "lease expired")
        report.timed_out = timed_out
        return report

    def _recover(self, cond: list[ColumnElement[bool]], max_attempts: int, why: str) -> ReapReport:
        report = ReapReport()
        running = Job.status == JobStatus.RUNNING.value
        with self.session() as s:
            now = db_now(s)
            rows = s.execute(
                select(Job.id, Job.attempts).where(running, *cond).with_for_update(skip_locked=True)
            ).all()
            for job_id, attempts in rows:
                guard = [Job.id == job_id, Job.attempts == attempts, running, *cond]
                if attempts >= max_attempts:
                    if self._move(
                        s,
                        JobStatus.FAILED,
                        guard,
                        finished_at=now,
                        lease_expires_at=None,
                        error_code=WORKER_LOST,
                        error_message=f"{why} on attempt {attempts} of {max_attempts}",
                    ):
                        report.lost.append(job_id)
                # Unsent again: the reaper's outbox sends it at once (dispatch.backend=celery).
                elif self._move(
                    s,
                    JobStatus.QUEUED,
                    guard,
                    worker_id=None,
                    lease_expires_at=None,
                    published_at=None,
                ):
                    report.requeued.append(job_id)
        return report

    def is_terminal(self, job_id: str) -> bool:
        return JobStatus(self.get(job_id).status) in TERMINAL


def _queued(new: NewJob, now: datetime) -> Job:
    """The row that records ``new`` as a queued job, created ``now`` (the database's clock)."""
    job_id = uuid.uuid4().hex
    return Job(
        id=job_id,
        status=JobStatus.QUEUED.value,
        text=new.text,
        spoken_text=new.spoken_text,
        estimated_seconds=new.estimated_seconds,
        voice=new.voice,
        engine=new.engine,
        engine_version=new.engine_version,
        params=new.params,
        requester=new.requester,
        tenant=new.tenant,
        request_id=new.request_id,
        idempotency_key=new.idempotency_key,
        request_hash=new.request_hash(),
        created_at=now,
        deadline_at=now + timedelta(seconds=new.deadline_seconds),
        attempts=0,
        output_name=output_name_for(job_id, now, str(new.params.get("format", "wav"))),
        callback_url=new.callback_url,
        webhook_state=initial_state(new.callback_url),
    )


def _serialize_requester(s: Session, requester: str) -> None:
    """Hold ``requester``'s lock to the end of the transaction: its creates run one at a time.
    SQLite needs none (its writers are serialized by ``BEGIN IMMEDIATE``)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": requester})


def _check_in_flight(s: Session, requester: str, limit: int) -> None:
    """Refuse (429) when ``requester`` already has ``limit`` jobs queued or running."""
    q = select(func.count()).where(Job.requester == requester, Job.status.in_(IN_FLIGHT))
    in_flight = int(s.scalar(q) or 0)
    if in_flight >= limit:
        raise TooManyInFlight(
            f"this key already has {in_flight} jobs queued or running (the limit is {limit}); "
            "wait for one to finish",
            limit=limit,
            in_flight=in_flight,
            retry_after=IN_FLIGHT_RETRY_SECONDS,
        )
