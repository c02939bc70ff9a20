"""A report for a past window (``--end`` / ``end=``), reproducible later: e.g. last month's."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from processes import run_cli  # type: ignore[import-not-found]

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings

OCTOBER = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
END = "2026-11-01T00:00:00+00:00"


def _october_job(store: JobStore) -> None:
    with store.session() as s:
        s.add(
            Job(
                id=uuid.uuid4().hex,
                status="succeeded",
                text="Hello.",
                voice="alpha",
                engine="fake",
                engine_version="fake-1",
                params={"seed": 42},
                requester="anonymous",
                request_hash="0" * 64,
                created_at=OCTOBER,
                started_at=OCTOBER + timedelta(seconds=0.5),
                finished_at=OCTOBER + timedelta(seconds=1.5),
                deadline_at=OCTOBER + timedelta(seconds=600),
                attempts=1,
                output_name="x.wav",
            )
        )


def test_the_api_reports_a_past_window(client: TestClient) -> None:
    _october_job(client.app.state.services.store)  # type: ignore[attr-defined]
    body = client.get("/v1/slo", params={"window": "31d", "end": END}).json()
    assert body["window_end"].startswith("2026-11-01T00:00:00")
    assert body["jobs"]["good"] == 1 and body["latency"]["e2e"]["max"] == 1.5
    assert client.get("/v1/slo", params={"window": "1d"}).json()["jobs"]["good"] == 0
    for bad in ("2026-11-01T00:00:00", "2999-01-01T00:00:00Z", "yesterday"):
        r = client.get("/v1/slo", params={"end": bad})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request"


def test_the_cli_reports_a_past_window(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    _october_job(store)
    store.engine.dispose()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["slo", "report", *args], settings.data_dir)

    out = run("--window", "31d", "--end", "2026-11-01T00:00Z", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["jobs"]["good"] == 1
    naive = run("--end", "2026-11-01T00:00")
    assert naive.returncode == 2 and "time zone" in naive.stderr
