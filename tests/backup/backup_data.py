"""Succeeded jobs with real output files, made directly through the store (no engine), for
backup tests (``from backup_data import ...``)."""

from __future__ import annotations

import hashlib

from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import open_storage


def succeeded_jobs(store: JobStore, settings: Settings, count: int, size: int = 2_000) -> list[str]:
    """``count`` succeeded jobs, each with ``size`` bytes of distinct audio; their ids."""
    outputs = open_storage(settings, "outputs")
    ids = []
    for i in range(count):
        job, _ = store.create(new_job(f"Backup job {i}."))
        claim = store.claim("backup-test", 30)
        assert claim is not None and claim.job.id == job.id
        data = (f"RIFF{job.id}".encode() * size)[:size]
        outputs.put(job.output_name, data)
        sha256 = hashlib.sha256(data).hexdigest()
        result = Result("fake-1+sr16000", 16_000, 1.0, sha256, len(data))
        assert store.complete(claim, result)
        ids.append(job.id)
    return ids
