"""Re-hash every recorded output and report what is missing, corrupt or unrecorded."""

from __future__ import annotations

from dataclasses import dataclass, field

from steadyvoice.jobs.store import JobStore
from steadyvoice.storage.local import LocalStorage, sha256_file


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt


def verify_outputs(store: JobStore, storage: LocalStorage) -> VerifyReport:
    """Every succeeded job's file must exist and hash to the recorded SHA-256."""
    report = VerifyReport()
    recorded: set[str] = set()
    for job in store.succeeded():
        report.checked += 1
        recorded.add(job.output_name)
        path = storage.path(job.output_name)
        if not path.is_file():
            report.missing.append(f"{job.id} {job.output_name}")
        elif sha256_file(path) != job.sha256:
            report.corrupt.append(f"{job.id} {job.output_name}")
        else:
            report.ok += 1
    report.unrecorded = [n for n in storage.names() if n not in recorded]
    return report
