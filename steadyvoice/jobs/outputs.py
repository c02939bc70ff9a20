"""A job's output file: every attempt stages its own, and only the recorded one is put in place.

All attempts of a job name the same output (``Job.output_name``). An attempt first writes its
audio durably under a name of its own next to it (``.tmp-<output>.attempt-<n>``); then
:meth:`JobStore.complete` renames that file over the output inside the transaction that records
the result, once the update fenced by the claim matched and before the commit. Hence:

- only the holder of the current claim, with the job's row locked, ever writes the output: an
  attempt that lost its claim (reaped while it was stopped or cut off, canceled) can neither
  replace nor remove the file of the attempt that won;
- a success that can be read has its file already in place;
- a crash between the rename and the commit leaves the job running, so it is retried and the
  retry's rename replaces the file; a crash before the rename leaves only a staged file, which
  :func:`sweep` removes once it is old.

An attempt whose claim was lost removes its own staged file, and the output itself only when
the job ended without one (failed or canceled: no attempt can record it any more).

The same holds on any backend (:mod:`steadyvoice.storage.backend`): on S3 the staged file is an
object PUT under the same staged name, which the backend keys under a prefix of its own
(``<prefix>/staging/outputs/…``, so that :func:`sweep` lists staged objects only, never the
whole bucket), with its SHA-256 (refused by the store if the body differs, retried while the
store is away); "rename" is a server-side copy made inside the transaction (one short try: a
copy that times out fails the commit and the job stays running, to be retried), after which
the staged object is deleted (:meth:`Staged.discard`, once recorded).
docs/storage.md has the whole write order.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from steadyvoice.errors import StorageError
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import Claim
from steadyvoice.observability.logs import event
from steadyvoice.storage.backend import Storage, content_sha256
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage

log = logging.getLogger("steadyvoice.outputs")

# A staged file this old belongs to no live attempt: a write takes seconds, and retrying its
# record through a database blip at most a lease (jobs.lease_seconds, 30 s by default).
STALE_SECONDS = 3600.0
# Ended without an output: nothing can record one any more, so no file may stay under its name.
NO_OUTPUT = frozenset({JobStatus.FAILED.value, JobStatus.CANCELED.value})


def staged_name(output_name: str, attempt: int) -> str:
    """Where attempt ``attempt`` stages the job's output: next to it, a temp name of its own."""
    folder, _, base = output_name.rpartition("/")
    name = f"{TEMP_PREFIX}{base}.attempt-{attempt}"
    return f"{folder}/{name}" if folder else name


@dataclass(frozen=True)
class Staged:
    """One attempt's audio, durable on disk under its own name, not yet the job's output."""

    storage: Storage
    name: str
    output_name: str
    sha256: str
    size: int

    def publish(self) -> None:
        """Rename the staged file over the output (and fsync the folder): run by
        :meth:`JobStore.complete` inside its transaction, once this attempt is the one recorded.

        A second call (the first commit failed after the rename) finds the file in place.
        Raises :class:`StorageError` (``storage_*``): the transaction then records nothing.
        """
        try:
            self.storage.replace(self.name, self.output_name)
        except FileNotFoundError as exc:
            if not self._in_place():
                raise StorageError(f"the staged output {self.name} is gone") from exc
        except OSError as exc:
            raise StorageError(f"could not put the output in place: {exc.strerror}") from exc

    def discard(self) -> None:
        """Remove the staged file (on disk gone already once published; on S3 the copy's
        source, deleted once the job is recorded)."""
        self.storage.delete(self.name)

    def tidy(self) -> None:
        """:meth:`discard` after the record committed; a failure only leaves a staged file
        that :func:`sweep` removes later."""
        try:
            self.discard()
        except (OSError, StorageError) as exc:
            event(log, "job.staged_not_removed", level=logging.WARNING, error=str(exc))

    def _in_place(self) -> bool:
        return content_sha256(self.storage, self.output_name) == self.sha256


def stage(storage: Storage, claim: Claim, data: bytes) -> Staged:
    """Write ``data`` for ``claim``'s attempt, durable on return (temp file, fsync, rename,
    folder fsync; or a PUT the store checked against the SHA-256 computed here)."""
    name = staged_name(claim.job.output_name, claim.attempt)
    sha = hashlib.sha256(data).hexdigest()
    try:
        sha, size = storage.put(name, data, sha)
    except OSError:  # the rename may have landed before the folder's fsync failed
        storage.delete(name)
        raise
    return Staged(storage, name, claim.job.output_name, sha, size)


def after_lost_claim(staged: Staged, status: str) -> None:
    """Our result was refused (the claim ended while we worked) and the job is now ``status``.

    Our staged file goes: no record will ever name it. The output is left alone unless the job
    ended without one: whatever it read as (queued, running), another attempt may be recording
    its own output at this very moment, and only that attempt may touch it.
    """
    staged.discard()
    if status in NO_OUTPUT:
        staged.storage.delete(staged.output_name)


def sweep(outputs: Path | Storage, older_than: float = STALE_SECONDS) -> list[str]:
    """At ``serve`` or ``worker`` start: remove the temp files (staged objects on S3) that
    killed writes and killed attempts left in the outputs, once old. Never stops the start:
    a failure is logged."""
    storage = LocalStorage(outputs) if isinstance(outputs, Path) else outputs
    try:
        if isinstance(storage, LocalStorage):
            removed = storage.sweep_temporary(older_than)
        else:
            removed = _sweep_staged(storage, older_than)
    except (OSError, StorageError) as exc:
        event(log, "outputs.sweep_failed", level=logging.WARNING, error=str(exc))
        return []
    if removed:
        event(log, "outputs.swept", files=len(removed), older_than_s=older_than)
    return removed


def _sweep_staged(storage: Storage, older_than: float) -> list[str]:
    now = time.time()
    stale = [
        info.name
        for info in storage.temporaries()
        if info.name.rpartition("/")[2].startswith(TEMP_PREFIX)
        and now - info.modified >= older_than
    ]
    for name in stale:
        storage.delete(name)
    return stale
