"""A viewer's storm of conversions does not stall another tenant (issue 22): a real ``serve``.

The bound on ``/v1/me`` here is generous (a shared test machine); the tight figure is in
bench/conversion_storm.py and docs/benchmarks.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from http_checks import error_of  # type: ignore[import-not-found]
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

# About 300 s of fake audio (0.06 s a character): seconds of CPU to convert to a lossy format.
TEXT = ("The quarterly figures were read aloud to the whole committee this morning. " * 70)[:4_990]
JOBS = 4
LOSSY = ("mp3", "opus", "aac")
ME_BOUND_SECONDS = 2.0
HITS = 24  # cache hits of one converted file at once: a burst of large bodies, no conversion


def _key(svc: Service, role: str, tenant: str) -> dict[str, str]:
    r = svc.http.post("/v1/keys", json={"role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


def _jobs(svc: Service, operator: dict[str, str]) -> list[str]:
    ids = []
    for seed in range(JOBS):
        r = svc.http.post("/v1/jobs", json={"text": TEXT, "seed": seed}, headers=operator)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        assert svc.wait_job(job_id)["status"] == "succeeded"
    return ids


class MeProbe(threading.Thread):
    """``GET /v1/me`` with another tenant's key, back to back, until stopped."""

    def __init__(self, url: str, auth: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, headers=auth, timeout=60)
        self.seconds: list[float] = []
        self.statuses: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            self.statuses.add(self.http.get("/v1/me").status_code)
            self.seconds.append(time.perf_counter() - began)
            self.stop.wait(0.02)
        self.http.close()


def test_a_conversion_storm_leaves_other_tenants_fast_and_refuses_the_excess(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    env = service_env(engine="fake", fake__sample_rate="22050", conversion__workers="2")
    svc = start_service(env)
    operator, viewer = _key(svc, "operator", "acme"), _key(svc, "viewer", "acme")
    other = _key(svc, "viewer", "globex")
    targets = [(job, fmt) for job in _jobs(svc, operator) for fmt in LOSSY]
    start = threading.Barrier(len(targets))

    def download(target: tuple[str, str]) -> httpx.Response:
        job, fmt = target
        with httpx.Client(base_url=svc.url, headers=viewer, timeout=120) as http:
            start.wait()
            return http.get(f"/v1/jobs/{job}/audio", params={"format": fmt})

    probe = MeProbe(svc.url, other)
    probe.start()
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(download, targets))
    probe.stop.set()
    probe.join()

    served = [(t, r) for t, r in zip(targets, answers, strict=True) if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert 2 <= len(served) < len(targets), [r.status_code for r in answers]
    for r in refused:
        err = error_of(r, 503, "busy")
        assert int(r.headers["Retry-After"]) == err["retry_after"] >= 1
        assert err["limit"] == 2
    assert probe.statuses == {200}
    assert len(probe.seconds) >= 5, "the probe ran through the storm"
    assert max(probe.seconds) < ME_BOUND_SECONDS, sorted(probe.seconds)[-5:]

    # A repeat is served from the cache: the same bytes, no conversion.
    (job, fmt), first = served[0]
    assert first.headers["x-conversion-cache"] == "miss"
    again = svc.http.get(f"/v1/jobs/{job}/audio", params={"format": fmt}, headers=viewer)
    assert again.status_code == 200 and again.headers["x-conversion-cache"] == "hit"
    assert again.content == first.content
    assert again.headers["x-source-sha256"] == first.headers["x-source-sha256"]

    # A burst of cache hits sends megabytes to each client at once: the same bytes to all,
    # another tenant still answered within the bound, and every download audited.
    hits = _burst(svc, viewer, other, job, fmt)
    assert {(r.status_code, r.headers["x-conversion-cache"]) for r in hits} == {(200, "hit")}
    assert all(r.content == first.content for r in hits)
    downloads = len(answers) + 1 + HITS

    def audited() -> bool:
        query = {"action": "job.audio.download", "limit": 500}
        return len(svc.http.get("/v1/audit", params=query).json()["items"]) == downloads

    poll(audited, 30, "an audit row for every download")


def _burst(
    svc: Service, viewer: dict[str, str], other: dict[str, str], job: str, fmt: str
) -> list[httpx.Response]:
    start = threading.Barrier(HITS)

    def download(_: int) -> httpx.Response:
        with httpx.Client(base_url=svc.url, headers=viewer, timeout=120) as http:
            start.wait()
            return http.get(f"/v1/jobs/{job}/audio", params={"format": fmt})

    probe = MeProbe(svc.url, other)
    probe.start()
    with ThreadPoolExecutor(HITS) as pool:
        hits = list(pool.map(download, range(HITS)))
    probe.stop.set()
    probe.join()
    assert probe.statuses == {200}
    assert probe.seconds, "the probe ran through the burst"
    assert max(probe.seconds) < ME_BOUND_SECONDS, sorted(probe.seconds)[-5:]
    return hits
