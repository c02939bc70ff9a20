"""A batch's ZIP, streamed as it is built: constant memory, no temporary file.

The standard library's ``zipfile`` writes to any object with ``write``: given one that cannot
``tell``, it streams (each entry's sizes and CRC follow its data in a data descriptor), so this
module hands it a sink that the response generator drains after every 64 KiB. No dependency is
needed for that (``zipstream-ng`` does the same on top of ``zipfile``).

Entries: ``audio/<name>.<ext>`` for each succeeded item (its ``name`` made safe, else its row
number; made unique with the row), then ``manifest.csv`` and ``manifest.json``, which list
exactly the audio entries. Each manifest is written in its own pass over the rows, a page at a
time; between passes only the row -> file map is kept (a few dozen bytes a row).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from steadyvoice.audio.formats import EXTENSIONS
from steadyvoice.batches.models import Batch
from steadyvoice.batches.store import BatchStore, Item
from steadyvoice.errors import SteadyVoiceError
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus

log = logging.getLogger("steadyvoice.batches")

CHUNK = 64 * 1024
MANIFEST_COLUMNS = (
    *("row", "name", "text", "voice", "seed", "job_id", "file", "sha256"),
    *("engine_version", "duration_seconds"),
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


@dataclass(frozen=True)
class Entry:
    """One audio file in the archive, as written."""

    file: str
    job_id: str


class _Sink:
    """Where ``zipfile`` writes: bytes collected until the generator takes them. It has no
    ``tell``, so ``zipfile`` writes a stream (data descriptors) instead of seeking back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_archive(
    store: BatchStore, batch: Batch, locate: Callable[[Job], Iterable[bytes]]
) -> Iterator[bytes]:
    """The archive's bytes, in pieces of about ``CHUNK``, as the items are read. ``locate``
    gives a job's stored bytes (any storage backend), raising at once if they are gone."""
    sink = _Sink()
    entries: dict[int, Entry] = {}
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as zf:
        used: set[str] = set()
        for item in store.items(batch.id, JobStatus.SUCCEEDED):
            blocks = _readable(locate, item.job)
            if blocks is None:
                continue
            name = _unique(_file_name(item), item.row, used)
            yield from _copy(zf, sink, name, blocks, item.job)
            entries[item.row] = Entry(name, item.job.id)
        yield from _manifest_csv(zf, sink, store, batch, entries)
        yield from _manifest_json(zf, sink, store, batch, entries)
    yield sink.take()  # the central directory, written as the ZipFile closes


def _readable(locate: Callable[[Job], Iterable[bytes]], job: Job) -> Iterable[bytes] | None:
    try:
        return locate(job)
    except SteadyVoiceError as exc:  # output_missing: left out, and said in the log
        log.warning("batch archive skips job %s: %s", job.id, exc.code)
        return None


def _file_name(item: Item) -> str:
    fmt = str(item.job.params.get("format", "wav"))
    stem = _UNSAFE.sub("_", item.name or "").strip("._")[:_MAX_STEM] or f"{item.row:05d}"
    return f"audio/{stem}.{EXTENSIONS.get(fmt, fmt)}"


def _unique(name: str, row: int, used: set[str]) -> str:
    # Until unused: another item may already be *named* "x_row3" (names x, x_row3, x).
    stem, _, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate.lower() in used:  # case-insensitive: unpacked on macOS or Windows too
        candidate = f"{stem}_row{row}.{ext}" if n == 1 else f"{stem}_row{row}_{n}.{ext}"
        n += 1
    used.add(candidate.lower())
    return candidate


def _info(name: str, job: Job | None = None) -> zipfile.ZipInfo:
    when = job.finished_at if job is not None and job.finished_at is not None else None
    stamp = when.timetuple()[:6] if when is not None else (1980, 1, 1, 0, 0, 0)
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.external_attr = 0o644 << 16
    return info


def _copy(
    zf: zipfile.ZipFile, sink: _Sink, name: str, blocks: Iterable[bytes], job: Job
) -> Iterator[bytes]:
    with zf.open(_info(name, job), "w") as dst:
        for block in blocks:
            for at in range(0, len(block), CHUNK):  # the response gets CHUNK-sized pieces
                dst.write(block[at : at + CHUNK])
                yield sink.take()
    yield sink.take()


def _manifest_rows(
    store: BatchStore, batch: Batch, entries: dict[int, Entry]
) -> Iterator[dict[str, Any]]:
    """The manifest's rows: the items written, with what proves each file."""
    for item in store.items(batch.id, JobStatus.SUCCEEDED):
        entry = entries.get(item.row)
        if entry is None or entry.job_id != item.job.id:
            continue
        job = item.job
        yield {
            "row": item.row,
            "name": item.name,
            "text": job.text,
            "voice": job.voice,
            "seed": job.params.get("seed"),
            "job_id": job.id,
            "file": entry.file,
            "sha256": job.sha256,
            "engine_version": job.engine_version,
            "duration_seconds": job.duration_seconds,
            "metadata": item.metadata,
        }


def _manifest_csv(
    zf: zipfile.ZipFile, sink: _Sink, store: BatchStore, batch: Batch, entries: dict[int, Entry]
) -> Iterator[bytes]:
    # A metadata column named like a manifest column is written as meta_<name>.
    extra = [f"meta_{c}" if c in MANIFEST_COLUMNS else c for c in batch.metadata_columns]
    info = _info("manifest.csv")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w") as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(out)
        writer.writerow([*MANIFEST_COLUMNS, *extra])
        for row in _manifest_rows(store, batch, entries):
            meta = row["metadata"]
            writer.writerow(
                [*(_cell(row[c]) for c in MANIFEST_COLUMNS)]
                + [_cell(meta.get(c)) for c in batch.metadata_columns]
            )
            out.flush()
            yield sink.take()
        out.flush()
        out.detach()
    yield sink.take()


def _manifest_json(
    zf: zipfile.ZipFile, sink: _Sink, store: BatchStore, batch: Batch, entries: dict[int, Entry]
) -> Iterator[bytes]:
    info = _info("manifest.json")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w") as out:
        head = {"batch_id": batch.id, "metadata_columns": batch.metadata_columns}
        _write(out, json.dumps(head, ensure_ascii=False)[:-1] + ', "items": [')
        for n, row in enumerate(_manifest_rows(store, batch, entries)):
            _write(out, ("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False))
            yield sink.take()
        _write(out, "\n]}\n")
    yield sink.take()


def _write(out: IO[bytes], text: str) -> None:
    out.write(text.encode())


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
