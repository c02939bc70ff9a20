"""``GET /metrics``: metrics appear and move by exactly what happened (docs/metrics.md)."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from processes import (  # type: ignore[import-not-found]
    Service,
    ServiceFactory,
    poll,
    use_admin_key,  # type: ignore[import-not-found]
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from steadyvoice.api.app import create_app
from steadyvoice.api.deps import Services
from steadyvoice.jobs.dispatch import DoorbellDispatcher
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.reaper import Reaper
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.observability import metrics
from steadyvoice.observability.outcomes import CLIENT_ERROR_CODES
from steadyvoice.settings import Settings, SloSettings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
GOOD = {"status": "succeeded", "error_code": "", "outcome": "good"}


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by sample name and label set."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


@pytest.fixture
def client(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    monkeypatch.setattr("steadyvoice.api.metrics.OUTPUTS_SCAN_SECONDS", 0.05)
    settings = settings_factory()
    with TestClient(create_app(settings, run_reaper=False)) as client:
        yield use_admin_key(client, settings.data_dir)


def services(client: TestClient) -> Services:
    svc: Services = client.app.state.services  # type: ignore[attr-defined]
    return svc


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    return parse(r.text)


def run_one(client: TestClient) -> str:
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None
    return run_claimed(claim, svc.engine, svc.store, svc.storage, svc.voices)


def scrape_until(
    get: Callable[[], Samples], ok: Callable[[Samples], bool], what: str, timeout: float = 30
) -> Samples:
    """Scrape until ``ok`` holds (values that move just after what the test waited for)."""
    found: Samples = poll(lambda: s if ok(s := get()) else None, timeout, what)
    return found


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_job_and_request_metrics_move_by_exactly_what_happened(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = scrape(client)
    ids = [client.post("/v1/jobs", json={"text": f"Hello {i}."}).json()["id"] for i in range(4)]
    assert run_one(client) == "succeeded"
    assert run_one(client) == "succeeded"
    for _ in range(2):
        assert client.get(f"/v1/jobs/{ids[0]}").status_code == 200
    assert client.post(f"/v1/jobs/{ids[2]}/cancel").status_code == 200

    def boom(*_: Any) -> None:
        raise RuntimeError("engine fell over")

    monkeypatch.setattr(services(client).engine, "synthesize", boom)
    assert run_one(client) == "failed"
    assert client.get("/no/such/path").status_code == 404
    too_big = {"content-length": str(10**9), "content-type": "application/json"}
    assert client.post("/v1/jobs", content=b"{}", headers=too_big).status_code == 413
    metrics.observe_refused("queue_full")
    # The outputs walk runs in the background: wait for one that sees both files.
    after = scrape_until(
        lambda: scrape(client),
        lambda s: value(s, "steadyvoice_output_files") == 2,
        "an outputs walk that sees both files",
    )

    def moved(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    assert moved("steadyvoice_jobs_finished_total", **GOOD) == 2
    canceled = {"status": "canceled", "error_code": "", "outcome": "canceled"}
    assert moved("steadyvoice_jobs_finished_total", **canceled) == 1
    failed = {"status": "failed", "error_code": "engine_error", "outcome": "bad"}
    assert moved("steadyvoice_jobs_finished_total", **failed) == 1
    assert moved("steadyvoice_jobs_refused_total", reason="queue_full") == 1
    for hist in ("steadyvoice_job_synthesis_seconds", "steadyvoice_job_real_time_factor"):
        assert moved(f"{hist}_count") == 2
    assert moved("steadyvoice_job_queue_wait_seconds_count") == 3  # claimed: 2 good, 1 failed
    assert moved("steadyvoice_job_end_to_end_seconds_count", size="short") == 2
    assert moved("steadyvoice_job_end_to_end_seconds_count", size="long") == 0
    assert (
        "steadyvoice_job_end_to_end_seconds_bucket",
        frozenset({("size", "short"), ("le", "5.0")}),
    ) in after

    requests = "steadyvoice_http_requests_total"
    assert moved(requests, route="/v1/jobs", method="POST", status="202") == 4
    assert moved(requests, route="/v1/jobs", method="POST", status="413") == 1
    assert moved(requests, route="/v1/jobs/{job_id}", method="GET", status="200") == 2
    assert moved(requests, route="/v1/jobs/{job_id}/cancel", method="POST", status="200") == 1
    assert moved(requests, route="unmatched", method="GET", status="404") == 1
    assert moved(requests, route="/metrics", method="GET", status="200") >= 1
    routes = {labels["route"] for labels in series(after, requests)}
    assert not any(job_id in route for route in routes for job_id in ids), routes
    duration = "steadyvoice_http_request_duration_seconds_count"
    assert moved(duration, route="/v1/jobs/{job_id}", method="GET") == 2

    assert value(after, "steadyvoice_queue_depth") == 0  # 4 accepted: 2 good, 1 canceled, 1 failed
    assert value(after, "steadyvoice_ready") == 0  # no worker in this test
    assert {lb["state"] for lb in series(after, "steadyvoice_workers")} == set(
        metrics.WORKER_STATES
    )
    assert value(after, "steadyvoice_output_files") == 2
    assert value(after, "steadyvoice_output_bytes") > 0
    assert value(after, "steadyvoice_disk_free_bytes") > 0
    assert (
        value(
            after,
            "steadyvoice_process_resident_memory_bytes",
            component="api",
            pid=str(os.getpid()),
        )
        > 0
    )


def test_queue_depth_and_reaper_timeouts(client: TestClient) -> None:
    svc = services(client)
    before = scrape(client)
    ids = [client.post("/v1/jobs", json={"text": f"Wait {i}."}).json()["id"] for i in range(3)]
    assert value(scrape(client), "steadyvoice_queue_depth") == 3
    with svc.store.session() as s:
        s.execute(update(Job).where(Job.id == ids[0]).values(deadline_at=utcnow() - timedelta(1)))
    reaper = Reaper(svc.store, DoorbellDispatcher(svc.settings.run_dir), svc.settings.jobs)
    assert reaper.run_once().timed_out == [ids[0]]
    after = scrape(client)
    timeout = {"status": "failed", "error_code": "timeout", "outcome": "bad"}
    assert delta(before, after, "steadyvoice_jobs_finished_total", **timeout) == 1
    assert value(after, "steadyvoice_queue_depth") == 2


def test_buckets_include_the_configured_latency_target(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(slo={"latency_target_seconds": 4.2})
    try:
        with TestClient(create_app(settings, run_reaper=False)) as client:
            use_admin_key(client, settings.data_dir)
            scrape(client)  # the first scrape is counted once it has answered
            after = scrape(client)
        bucket = "steadyvoice_http_request_duration_seconds_bucket"
        les = {lb["le"] for lb in series(after, bucket)}
        assert {"4.2", "5.0"} <= les
    finally:
        metrics.configure(SloSettings())


# --- a real `steadyvoice serve` with two worker processes --------------------------------


@pytest.fixture
def service(start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]) -> Service:
    svc: Service = start_service(service_env(engine="fake", workers="2"))
    return svc


def test_one_scrape_sees_every_worker_process(service: Service) -> None:
    def scraped() -> Samples:
        r = service.http.get("/metrics")
        assert r.status_code == 200, r.text
        return parse(r.text)

    def worker_pids(samples: Samples) -> set[str]:
        memory = series(samples, "steadyvoice_process_resident_memory_bytes")
        return {lb["pid"] for lb in memory if lb["component"] == "worker"}

    def two_ready() -> Samples | None:
        s = scraped()
        return (
            s
            if value(s, "steadyvoice_workers", state="ready") == 2 and len(worker_pids(s)) == 2
            else None
        )

    def finished(count: int) -> Callable[[Samples], bool]:
        return lambda s: value(s, "steadyvoice_jobs_finished_total", **GOOD) == count

    def two_live(s: Samples) -> bool:
        states = ("busy", "ready")
        return sum(value(s, "steadyvoice_workers", state=state) for state in states) == 2

    poll(two_ready, 60, f"two ready workers; log:\n{service.log()}")
    n = 6
    jobs = [service.submit(f"Job number {i}.") for i in range(n)]
    for job in jobs:
        assert service.wait_job(job["id"])["status"] == "succeeded"
    # A worker counts a job just after committing its success: poll, don't read once.
    s = scrape_until(scraped, finished(n), f"{n} good jobs counted; log:\n{service.log()}")
    assert value(s, "steadyvoice_job_end_to_end_seconds_count", size="short") == n
    assert value(s, "steadyvoice_job_queue_wait_seconds_count") == n
    assert value(s, "steadyvoice_queue_depth") == 0
    assert value(s, "steadyvoice_ready") == 1
    assert value(s, "steadyvoice_worker_restarts_total") == 0
    pids = worker_pids(s)

    victim = sorted(pids)[0]
    os.kill(int(victim), signal.SIGKILL)

    def replaced() -> Samples | None:
        s = two_ready()
        return s if s is not None and victim not in worker_pids(s) else None

    s = poll(replaced, 60, f"the killed worker replaced; log:\n{service.log()}")
    assert value(s, "steadyvoice_worker_restarts_total") == 1
    last = service.submit("One more.")
    assert service.wait_job(last["id"])["status"] == "succeeded"
    # The dead worker's counts stay in the total.
    scrape_until(scraped, finished(n + 1), f"{n + 1} good jobs counted; log:\n{service.log()}")
    # The dead worker's row counts as live until its heartbeat ages out: wait for that.
    scrape_until(scraped, two_live, f"two live workers; log:\n{service.log()}", timeout=60)


def test_usual_job_series_exist_at_zero_from_the_start(client: TestClient) -> None:
    s = scrape(client)
    finished = "steadyvoice_jobs_finished_total"
    expected = [GOOD, {"status": "canceled", "error_code": "", "outcome": "canceled"}]
    expected += [
        {"status": "failed", "error_code": code, "outcome": "bad"}
        for code in ("timeout", "worker_lost", "engine_error", "engine_unavailable")
    ]
    expected += [
        {"status": "failed", "error_code": code, "outcome": "client_error"}
        for code in CLIENT_ERROR_CODES
    ]
    for labels in expected:
        assert (finished, frozenset(labels.items())) in s, labels
    for reason in ("deadline", "queue_full"):
        assert ("steadyvoice_jobs_refused_total", frozenset({("reason", reason)})) in s


def test_a_failing_metrics_hook_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def labels(self, **_: str) -> Broken:
            raise RuntimeError("metrics broke")

    monkeypatch.setattr(metrics, "JOBS_REFUSED", Broken())
    monkeypatch.setattr(metrics, "_failed_hooks", set())
    with caplog.at_level("ERROR", logger="steadyvoice.metrics"):
        metrics.observe_refused("deadline")
        metrics.observe_refused("deadline")
    assert len([r for r in caplog.records if "observe_refused" in r.getMessage()]) == 1


def test_the_multiprocess_dir_is_host_local_and_per_instance(tmp_path: Path) -> None:
    shared = tmp_path / "nfs"
    a = Settings(data_dir=shared, api={"port": 7001})  # type: ignore[arg-type]
    b = Settings(data_dir=shared, api={"port": 7002})  # type: ignore[arg-type]
    assert a.resolved_metrics_dir != b.resolved_metrics_dir
    assert a.resolved_metrics_dir.parent == Path(tempfile.gettempdir())
    assert shared not in a.resolved_metrics_dir.parents
    c = Settings(metrics_dir=tmp_path / "m")
    assert c.resolved_metrics_dir == tmp_path / "m"
