"""What the record's job page adds to the job panel: the stored file checked against the
record, and the job's audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.security.audit import AuditLog, AuditQuery
from steadyvoice.security.models import AuditEvent
from steadyvoice.storage.backend import Storage, content_sha256

TRAIL_ROWS = 100


@dataclass(frozen=True)
class Verified:
    """The stored file against the record: ``state`` is ``ok``, ``missing``, ``corrupt``,
    ``purged`` or ``none`` (nothing to check yet); ``words`` says it to a person."""

    state: str
    words: str


def verify_job(storage: Storage, job: Job) -> Verified:
    """Check one job's file as ``steadyvoice verify`` does: size and SHA-256 from the object
    store's metadata where it keeps them (S3), else the file read and hashed."""
    if job.status != JobStatus.SUCCEEDED.value:
        return Verified("none", f"Nothing to check: the job is {job.status}.")
    if job.purged_at is not None:
        return Verified(
            "purged",
            f"The audio was deleted by the retention policy on {job.purged_at:%Y-%m-%d}; "
            "the record keeps its SHA-256.",
        )
    info = storage.stat(job.output_name)
    if info is None:
        return Verified("missing", "The stored file is missing.")
    found = info.sha256 if info.sha256 is not None else content_sha256(storage, info.name)
    if found != job.sha256:
        return Verified("corrupt", "The stored file does not match the recorded SHA-256.")
    return Verified("ok", "The stored file matches the recorded SHA-256.")


def audit_trail(audit: AuditLog, job: Job, scope: str | None) -> list[AuditEvent]:
    """The job's audit rows, newest first. A tenant-bound caller sees its tenant's rows only
    (an admin's key acting on the job stays the admin's business)."""
    return audit.query(AuditQuery(object_id=job.id, tenant=scope, limit=TRAIL_ROWS))
