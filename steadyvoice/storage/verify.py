"""Re-hash every recorded output and reference; report what is missing, corrupt or unrecorded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from steadyvoice.jobs.store import JobStore
from steadyvoice.storage.local import LocalStorage, sha256_file
from steadyvoice.voices.models import Voice


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


def _check(report: VerifyReport, label: str, path: Path, sha256: str | None) -> None:
    report.checked += 1
    if not path.is_file():
        report.missing.append(label)
    elif sha256_file(path) != sha256:
        report.corrupt.append(label)
    else:
        report.ok += 1


def verify_outputs(store: JobStore, storage: LocalStorage) -> VerifyReport:
    """Every succeeded job's file must exist and hash to the recorded SHA-256."""
    report = VerifyReport()
    recorded: set[str] = set()
    for job in store.succeeded():
        recorded.add(job.output_name)
        _check(report, f"{job.id} {job.output_name}", storage.path(job.output_name), job.sha256)
    report.unrecorded = [n for n in storage.names() if n not in recorded]
    return report


def verify_references(
    voices: Iterable[Voice], storage: LocalStorage, report: VerifyReport
) -> VerifyReport:
    """Every voice profile's reference (deleted profiles too) must hash to its SHA-256.

    A reference file that no profile names (a crash between writing it and recording the
    profile) is listed as unrecorded: someone's voice on disk without a consent record.
    """
    recorded: set[str] = set()
    for voice in voices:
        recorded.add(voice.reference_name)
        label = f"{voice.id} voices/{voice.reference_name}"
        _check(report, label, storage.path(voice.reference_name), voice.reference_sha256)
    report.unrecorded += [
        f"voices/{name}" for name in storage.names("*/reference.*") if name not in recorded
    ]
    return report
