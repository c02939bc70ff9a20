"""A really full disk: an 8 MiB tmpfs the test mounts (it runs as root; no mount is a failure).

Outputs on it, with a real ``steadyvoice serve`` and its worker: ``/readyz`` says ``low_disk``
first, then a job whose audio does not fit fails with ``storage_full``, no partial file is left,
the same worker stays up and serves again once space is freed. The SQLite database on it: writes
refused when there is no room answer ``storage_full``, never corrupt the file, and work again
once there is room.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from processes import ServiceFactory, admin_key  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(180)

MB = 1024 * 1024
SAY = "Plenty to say here. " * 40  # 800 characters: about 1.5 MB of fake-engine WAV
Mount = Callable[[Path], Path]


@pytest.fixture
def small_disk() -> Iterator[Mount]:
    """Mounts an 8 MiB tmpfs on a folder; unmounted at the end (after the services stop:
    request this fixture before ``start_service``)."""
    mounted: list[Path] = []

    def mount(where: Path) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        opts = "size=8m,mode=0700"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs on {where} (the test runs as root): {done.stderr}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill ``folder``'s disk until ``leave`` bytes are free (0: until it refuses a byte)."""
    filler = folder / f"filler-{len(list(folder.glob('filler-*')))}"
    with filler.open("wb") as fh:
        while (room := shutil.disk_usage(folder).free - leave) > 0:
            try:
                fh.write(b"\0" * min(room, MB))
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


def test_outputs_disk_full_fails_the_job_and_the_worker_recovers(
    small_disk: Mount,
    tmp_path: Path,
    service_env: Callable[..., dict[str, str]],
    start_service: ServiceFactory,
) -> None:
    data = tmp_path / "data"
    outputs = small_disk(data / "outputs")
    env = service_env(data, engine="fake", storage__min_free_disk_mb="2")
    svc = start_service(env)
    first = svc.wait_job(svc.submit("Room enough.")["id"])
    assert first["status"] == "succeeded"

    filler = fill(outputs, leave=MB)  # under the 2 MB readiness asks for, over a small job
    ready = svc.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reasons"][0].startswith("low_disk")

    full = svc.wait_job(svc.submit(SAY)["id"])
    assert (full["status"], full["error"]["code"]) == ("failed", "storage_full"), full
    assert full["worker_id"] == first["worker_id"], "the worker was replaced"
    left = sorted(p.name for p in outputs.rglob("*") if p.is_file() and p != filler)
    assert left == [first["output"]["name"]], "a failed write left a file behind"

    filler.unlink()
    svc.wait_ready()
    again = svc.wait_job(svc.submit(SAY)["id"])
    assert again["status"] == "succeeded" and again["worker_id"] == first["worker_id"]
    assert svc.http.get(f"/v1/jobs/{again['id']}/audio").status_code == 200


def _submit(client: TestClient, n: int) -> Any:
    return client.post("/v1/jobs", json={"text": f"Job number {n}. " + "Words. " * 600})


def test_a_full_database_disk_refuses_writes_and_does_not_corrupt_it(
    small_disk: Mount, settings_factory: Callable[..., Settings]
) -> None:
    data = small_disk(settings_factory().data_dir)
    settings = settings_factory(storage={"min_free_disk_mb": 0}, admission={"enabled": False})
    database = data / "steadyvoice.db"
    with TestClient(create_app(settings, run_reaper=False)) as client:
        client.headers["Authorization"] = f"Bearer {admin_key(data)}"
        accepted = [_submit(client, n).json()["id"] for n in range(3)]
        fill(data)
        refused = None
        for n in range(3, 400):  # each job row and audit row grows the WAL by a few pages
            resp = _submit(client, n)
            if resp.status_code != 202:
                refused = resp
                break
            accepted.append(resp.json()["id"])
        assert refused is not None, "the full disk took every job"
        # Refused cleanly, by whichever write met the full disk first: the rate limiter's
        # (503 store_unavailable, "retry") or the job's own (507 storage_full).
        code = {503: "store_unavailable", 507: "storage_full"}.get(refused.status_code, "?")
        error_of(refused, refused.status_code, code)
        for path in data.glob("filler-*"):
            path.unlink()
        again = _submit(client, 999)
        assert again.status_code == 202, again.text
        for job_id in accepted:  # what was answered 202 is there
            assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (count,) = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
    assert count == len(accepted) + 1
    assert os.stat(database).st_size > 0
