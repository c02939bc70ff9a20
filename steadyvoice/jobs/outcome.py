"""Recording how a job ended, through database blips: success, failure, or a claim lost meanwhile.

Each record is a fenced write (:meth:`JobStore.complete`, :meth:`JobStore.fail`) retried while the
lease lives (:func:`~steadyvoice.jobs.backoff.retry_store`). A write refused after a retry may be
our own first commit, which landed though its answer was lost: the record then names our worker,
our attempt (and for a success our file's hash), and counts as recorded. If the database stays
away past the lease, the job is left to the reaper, which requeues it (or fails it once its
attempts are spent); our staged audio stays on disk until it is swept (:mod:`.outputs`).
"""

from __future__ import annotations

import logging
from functools import partial

from steadyvoice.errors import StorageError, StorageUnavailable
from steadyvoice.jobs.backoff import STORE_ERRORS, retry_store
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.outputs import Staged, after_lost_claim
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import Claim, JobStore, Result
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.settings import SloSettings

log = logging.getLogger("steadyvoice.runner")

SUCCEEDED = JobStatus.SUCCEEDED.value
FAILED = JobStatus.FAILED.value


def record_success(
    claim: Claim, store: JobStore, staged: Staged, result: Result, watch: ClaimWatch
) -> str:
    """Record the staged output (the store puts it in place as it commits); the status the
    job is in afterwards, as far as we know."""
    try:
        if retry_store(partial(store.complete, claim, result, staged.publish), "complete", watch):
            return SUCCEEDED
        current = _read(claim, store, watch)
    except STORE_ERRORS as exc:
        return left_to_reaper("complete", exc)
    except StorageUnavailable as exc:
        # The store did not answer the publish (one short try, inside the transaction):
        # nothing was recorded and the job is still running, so the reaper requeues it and
        # the retry publishes. Our staged object stays for the sweep.
        return left_to_reaper("publish", exc)
    except StorageError as exc:  # the output could not be put in place: nothing was recorded
        status = record_failure(claim, store, exc.code, exc.message, watch)
        _tidy(staged, status)  # a rename that landed before its fsync failed leaves no orphan
        return status
    if current.status == SUCCEEDED and _ours(claim, current) and current.sha256 == result.sha256:
        return SUCCEEDED  # our first commit landed; its answer was lost
    return _lost_claim(current, staged)


def record_failure(
    claim: Claim, store: JobStore, code: str, message: str, watch: ClaimWatch
) -> str:
    """Record the job as failed with ``code``; the status it is in afterwards."""
    try:
        failed = retry_store(partial(store.fail, claim, code, message), "fail", watch)
        current = None if failed else _read(claim, store, watch)
    except STORE_ERRORS as exc:
        return left_to_reaper("fail", exc)
    if current is not None and not (
        current.status == FAILED and _ours(claim, current) and current.error_code == code
    ):
        return current.status  # the claim was lost meanwhile: someone else's record now
    event(log, "job.failed", error_code=code)
    observe(store, claim.job.id)
    return FAILED


def left_to_reaper(step: str, exc: Exception) -> str:
    """The database stayed away for the whole lease: stop here and let the reaper requeue the
    job (it is still ``running`` until then), instead of taking the worker down with it."""
    event(
        log,
        "job.left_to_reaper",
        level=logging.WARNING,
        step=step,
        error=type(exc).__name__,
    )
    return JobStatus.RUNNING.value


def observe(
    store: JobStore, job_id: str, slo: SloSettings | None = None, synthesis: float | None = None
) -> None:
    """Metrics for the final state this process just recorded; never fails the job."""
    try:
        metrics.observe_finished(store.get(job_id), slo, synthesis)
    except Exception:
        log.exception("could not record job metrics")


def _read(claim: Claim, store: JobStore, watch: ClaimWatch) -> Job:
    return retry_store(partial(store.get, claim.job.id), "read", watch)


def _ours(claim: Claim, current: Job) -> bool:
    """The record was written under this very claim (attempts count claims: never reused)."""
    return current.worker_id == claim.worker_id and current.attempts == claim.attempt


def _lost_claim(current: Job, staged: Staged) -> str:
    """Our claim ended while we worked (canceled, timed out, or reaped and redone elsewhere).

    We remove our own staged file, never another attempt's output (:func:`after_lost_claim`).
    """
    _tidy(staged, current.status)
    event(log, "job.claim_lost", status=current.status)
    return current.status


def _tidy(staged: Staged, status: str) -> None:
    """Remove what this attempt wrote that no record will name (:func:`after_lost_claim`)."""
    try:
        after_lost_claim(staged, status)
    except (OSError, StorageError) as exc:  # an unrecorded file is only clutter (verify lists it)
        event(log, "job.output_not_removed", level=logging.WARNING, error=str(exc))
