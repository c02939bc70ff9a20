"""The service as a user runs it: real processes, real files, real crashes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import soundfile as sf
from processes import Process, ServiceFactory, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.liveness import parse_worker_id

TEXT = "Steady voices read the statement aloud. The balance is forty two pounds."


def _download(svc: object, job: dict[str, object]) -> bytes:
    assert job["status"] == "succeeded", job
    r = svc.http.get(f"/v1/jobs/{job['id']}/audio")  # type: ignore[attr-defined]
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    return bytes(r.content)


def _outputs(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "outputs").rglob("*") if p.is_file())


def test_piper_submit_poll_download_is_deterministic_across_runs(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    results: list[dict[str, bytes]] = []
    for run in range(2):
        data = tmp_path / f"run{run}"
        svc = start_service(service_env(data_dir=data, engine="piper"))
        jobs = {
            "seed7": svc.submit(TEXT, seed=7),
            "seed8": svc.submit(TEXT, seed=8),
        }
        audio = {}
        for name, job in jobs.items():
            done = svc.wait_job(job["id"], timeout=120)
            body = _download(svc, done)
            assert hashlib.sha256(body).hexdigest() == done["output"]["sha256"]
            samples, rate = sf.read(io.BytesIO(body), dtype="float32")
            assert rate == done["output"]["sample_rate"] == 22050
            assert samples.ndim == 1 and len(samples) / rate > 2.0
            assert abs(len(samples) / rate - done["output"]["duration_seconds"]) < 0.01
            assert done["engine"] == "piper" and done["engine_version"].startswith("piper")
            assert done["params"]["seed"] == int(name.removeprefix("seed"))
            audio[name] = body
        if run == 0:  # nothing to say: refused before it is queued (tests/test_textrules.py)
            mute = svc.http.post("/v1/jobs", json={"text": "..."})
            assert mute.status_code == 422 and mute.json()["error"]["code"] == "text_unspeakable"
        svc.stop()
        assert "balance is forty" not in svc.log(), "request text must not be logged at INFO"
        results.append(audio)
    assert results[0]["seed7"] == results[1]["seed7"], "same seed must give the same bytes"
    assert results[0]["seed8"] == results[1]["seed8"]
    assert results[0]["seed7"] != results[0]["seed8"], "another seed must give other audio"


def test_sigkill_worker_mid_job_completes_exactly_once(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    svc = start_service(service_env(data_dir=data, fake__seconds_per_char="0.05"))
    health_failures: list[int] = []
    stop = threading.Event()

    def watch_health() -> None:
        with httpx.Client(base_url=svc.url, timeout=5) as c:
            while not stop.wait(0.05):
                try:
                    code = c.get("/healthz").status_code
                except httpx.TransportError:
                    code = 0
                if code != 200:
                    health_failures.append(code)

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:
        job = svc.submit("A sentence long enough to keep the worker busy for a while.")
        running = poll(
            lambda: (j := svc.job(job["id"]))["status"] == "running" and j, 30, "job running"
        )
        os.kill(parse_worker_id(running["worker_id"])[1], signal.SIGKILL)
        done = svc.wait_job(job["id"], timeout=60)
    finally:
        stop.set()
        watcher.join()
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    files = _outputs(data)
    assert len(files) == 1, files
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == done["output"]["sha256"]
    assert health_failures == [], "the API must answer while the worker dies and restarts"
    assert '"worker.exited"' in svc.log()
    svc.wait_ready(timeout=30)


def test_restart_with_queued_jobs_loses_and_duplicates_nothing(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    slow = start_service(service_env(data_dir=data, fake__seconds_per_char="0.01"))
    ids = [slow.submit(f"Job number {i} is waiting in the queue.")["id"] for i in range(6)]
    assert slow.stop() == 0
    states = {slow_id: None for slow_id in ids}
    fast = start_service(service_env(data_dir=data))
    for job_id in ids:
        states[job_id] = fast.wait_job(job_id)["status"]
    assert set(states.values()) == {"succeeded"}, states
    listed = fast.http.get("/v1/jobs", params={"limit": 100}).json()["items"]
    assert sorted(j["id"] for j in listed) == sorted(ids)
    files = _outputs(data)
    assert len(files) == len(ids)
    assert {f.name for f in files} == {fast.job(i)["output"]["name"] for i in ids}


def test_api_alone_plus_standalone_worker_on_postgresql(
    start_service: ServiceFactory,
    start_worker: Callable[[dict[str, str]], Process],
    service_env: Callable[..., dict[str, str]],
    pg_url: str,
) -> None:
    env = service_env(database_url=pg_url)
    api = start_service(env, "--no-workers", ready=False)
    r = api.http.get("/readyz")
    assert r.status_code == 503 and any("no_live_worker" in x for x in r.json()["reasons"])
    job = api.submit("Queued while no worker is running.")
    assert api.job(job["id"])["status"] == "queued"
    start_worker(env)
    api.wait_ready(timeout=60)
    done = api.wait_job(job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 1


def test_hung_worker_loses_its_lease_and_cannot_overwrite_the_retry(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = service_env(
        data_dir=data,
        workers="2",
        fake__seconds_per_char="0.03",
        jobs__lease_seconds="2",
        jobs__heartbeat_seconds="0.5",
        jobs__reaper_interval_seconds="0.2",
    )
    svc = start_service(env)
    poll(lambda: svc.http.get("/readyz").json()["workers"] == 2, 30, "two ready workers")
    job = svc.submit("This job outlives the lease of the worker that froze on it.")
    running = poll(
        lambda: (j := svc.job(job["id"]))["status"] == "running" and j, 30, "job running"
    )
    frozen = parse_worker_id(running["worker_id"])[1]
    os.kill(frozen, signal.SIGSTOP)
    try:
        done = svc.wait_job(job["id"], timeout=60)
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert done["worker_id"] != running["worker_id"]
    # The thawed worker gives up its stale attempt: at its next sentence once it finds the claim
    # gone (job.abandoned), or at the fenced write if it had finished (job.claim_lost). Either
    # way its work must not change the record.
    poll(
        lambda: '"job.abandoned"' in svc.log() or '"job.claim_lost"' in svc.log(),
        30,
        "stale worker gives up its claim",
    )
    after = svc.job(job["id"])
    assert (after["status"], after["attempts"], after["output"]) == (
        "succeeded",
        2,
        done["output"],
    )
    files = _outputs(data)
    assert len(files) == 1
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == done["output"]["sha256"]


def test_every_log_line_is_json_and_state_changes_carry_ids(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = start_service(service_env())
    r = svc.http.post(
        "/v1/jobs", json={"text": "Private words."}, headers={"X-Request-ID": "req-e2e-1"}
    )
    job = svc.wait_job(r.json()["id"])
    svc.stop()
    lines = [json.loads(line) for line in svc.log().splitlines() if line.strip()]
    events = {
        rec["event"]: rec for rec in lines if rec.get("job_id") == job["id"] and "event" in rec
    }
    assert {"job.queued", "job.started", "job.succeeded"} <= set(events)
    for rec in events.values():
        assert rec["request_id"] == "req-e2e-1"
    assert events["job.queued"]["component"] == "api"
    assert events["job.succeeded"]["component"] == "worker"
    assert "Private words" not in svc.log()
