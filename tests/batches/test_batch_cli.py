"""``steadyvoice batch`` against a real ``serve``: row errors listed, a progress bar, a rerun
after Ctrl-C that resumes the same batch (no duplicate jobs), an archive unpacked and verified.
One service for it all: starting one costs seconds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from batch_files import csv_of, lessons  # type: ignore[import-not-found]
from processes import Service, ServiceFactory  # type: ignore[import-not-found]

from steadyvoice.cli import main

ITEMS = 40


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """The service's data in memory where possible: each job's fsyncs cost nothing."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="sv-batch-cli-", dir=shm if shm.is_dir() else None))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _cli(service: Service, *args: str) -> list[str]:
    key_file = Path(service.env["STEADYVOICE_DATA_DIR"]) / "admin.key"
    return [
        *(sys.executable, "-m", "steadyvoice", "batch", *args),
        *("--server", service.url, "--key-file", str(key_file)),
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}


def test_submit_resumes_after_ctrl_c_and_verifies_the_archive(
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    shm_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = start_service(
        service_env(
            shm_dir / "data",
            engine="fake",
            fake__sample_rate="8000",
            fake__seconds_per_char="0.004",  # about 0.1 s an item: Ctrl-C lands mid-batch
        )
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("text,seed\nfine,1\nnot fine,-3\n")
    assert main(_cli(service, "submit", str(bad))[3:]) == 2  # in this process: no start-up
    refused = capsys.readouterr().err
    assert "batch_invalid" in refused and "row 2, seed: seed_invalid" in refused

    lesson_file = tmp_path / "lessons.csv"
    lesson_file.write_bytes(csv_of(lessons(ITEMS)))
    out = tmp_path / "out"

    first = subprocess.Popen(
        _cli(service, "submit", str(lesson_file), "--wait", "--out", str(out)),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    line = first.stdout.readline()  # "batch <id>: 40 items", once the upload is accepted
    batch_id = line.split()[1].rstrip(":")
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert service.http.get(f"/v1/batches/{batch_id}").json()["status"] != "done"

    again = subprocess.run(
        _cli(service, "submit", str(lesson_file), "--wait", "--out", str(out)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"batch {batch_id}: {ITEMS} items")  # the same batch
    assert f"{ITEMS}/{ITEMS}" in again.stderr and "item/s" in again.stderr  # the bar
    assert f"verified {ITEMS} of {ITEMS} files" in again.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == ITEMS
    assert (out / "audio" / "line-0001.wav").is_file() and (out / "manifest.csv").is_file()

    batches = service.http.get("/v1/batches").json()["items"]
    assert [b["id"] for b in batches] == [batch_id]
    jobs = service.http.get("/v1/jobs", params={"limit": 500}).json()["items"]
    assert len(jobs) == ITEMS  # no item was queued twice

    assert main(_cli(service, "status", batch_id)[3:]) == 0
    assert f"{batch_id}  done  100.0%" in capsys.readouterr().out
    assert main(_cli(service, "list")[3:]) == 0
    assert batch_id in capsys.readouterr().out
