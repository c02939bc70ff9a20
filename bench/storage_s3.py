"""Storage cost per job: the ``s3`` backend against ``local``, upload and download.

Per job, what the worker and the API do with its output, through the real code paths:

- **store**: stage the output (local: temp file, fsync, rename, folder fsync; S3: a PUT with
  ``x-amz-checksum-sha256``), publish it (a rename; a server-side ``CopyObject``) and remove the
  staged name (nothing left on disk; a ``DeleteObject``): ``jobs.outputs.stage`` +
  ``Staged.publish`` + ``Staged.tidy``.
- **fetch**: read the whole output back as a download does (``Storage.chunks``, 1 MiB reads).

The S3 endpoint is moto's server on the loopback (tests/s3_server.py, with its checksum check),
so the figures are the protocol's and the client's overhead, not a network's or a real store's:
against AWS add the round trips (a few ms each, three per stored job, one per download).
Local and S3 run interleaved, one job each in turn, so drift hits both alike.

    python bench/storage_s3.py [--jobs 200] [--kb 480] [--dir /var/tmp] [--json out.json]

480 KB is 10 s of 24 kHz 16-bit mono WAV. Run it on a quiet machine for figures to publish.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's S3 server

from s3_server import REGION, S3Server  # noqa: E402

from steadyvoice.jobs.outputs import Staged, stage  # noqa: E402
from steadyvoice.jobs.store import Claim  # noqa: E402
from steadyvoice.settings import StorageSettings  # noqa: E402
from steadyvoice.storage.backend import Storage  # noqa: E402
from steadyvoice.storage.local import LocalStorage  # noqa: E402
from steadyvoice.storage.s3 import S3Storage  # noqa: E402


class _Job:
    def __init__(self, n: int) -> None:
        self.output_name = f"2026/12/07/output_20261207_000000_{n:012d}.wav"


def _claim(n: int) -> Claim:
    return Claim(job=_Job(n), attempt=1, worker_id="bench:1")  # type: ignore[arg-type]


def store_one(storage: Storage, n: int, data: bytes) -> float:
    start = time.perf_counter()
    staged: Staged = stage(storage, _claim(n), data)
    staged.publish()
    staged.tidy()
    return (time.perf_counter() - start) * 1000


def fetch_one(storage: Storage, n: int) -> float:
    start = time.perf_counter()
    size = sum(len(b) for b in storage.chunks(_Job(n).output_name))
    assert size > 0
    return (time.perf_counter() - start) * 1000


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def run(jobs: int, kb: int, folder: Path) -> dict[str, Any]:
    data = os.urandom(kb * 1024)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        server = S3Server(Path(tmp) / "moto.log")
        server.start()
        try:
            for key, value in server.env().items():
                os.environ[key] = value
            bucket = server.new_bucket()
            settings = StorageSettings(
                backend="s3", s3_bucket=bucket, s3_endpoint_url=server.url, s3_region=REGION
            )
            backends: dict[str, Storage] = {
                "local": LocalStorage(Path(tmp) / "outputs"),
                "s3": S3Storage.from_settings(settings, "outputs", Path(tmp)),
            }
            for storage in backends.values():  # warm up: connections, folders
                store_one(storage, 10**9, data)
            samples: dict[str, dict[str, list[float]]] = {
                name: {"store": [], "fetch": []} for name in backends
            }
            for n in range(jobs):
                for name, storage in backends.items():
                    samples[name]["store"].append(store_one(storage, n, data))
            for n in range(jobs):
                for name, storage in backends.items():
                    samples[name]["fetch"].append(fetch_one(storage, n))
        finally:
            server.stop()
    return {
        "jobs": jobs,
        "kb": kb,
        "results": {
            name: {op: stats(values) for op, values in ops.items()} for name, ops in samples.items()
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['jobs']} jobs of {result['kb']} KB each",
        "",
        "| Backend | Store P50 | Store P99 | Fetch P50 | Fetch P99 |",
        "|---|---|---|---|---|",
    ]
    for name, ops in result["results"].items():
        store, fetch = ops["store"], ops["fetch"]
        lines.append(
            f"| {name} | {store['p50_ms']} ms | {store['p99_ms']} ms "
            f"| {fetch['p50_ms']} ms | {fetch['p99_ms']} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--kb", type=int, default=480)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.jobs, args.kb, args.dir)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
