"""In-process ``POST /v1/audio/speech`` calls for the API tests (``from speech_calls import ...``).

A request body, the test's stand-in worker (it claims the next job in a thread and runs it with
the real runner, or acts on it otherwise) and reading the job behind an answer. The stand-in
keeps a live heartbeat row, as a real worker does, so calls are not refused with
``no_live_worker``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.jobs.liveness import READY, WorkerRegistry
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import Claim

SAY = "Hello there. This is a test."
LONG = " ".join(f"Sentence number {n} is here." for n in range(1, 9))
RATE = 16_000  # the fake engine's
PCM_RATE = 24_000  # OpenAI's pcm, which /v1/audio/speech serves


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


def speech(**fields: Any) -> dict[str, Any]:
    return {"model": "tts-1", "input": SAY, "voice": "alloy", **fields}


def job_of(client: TestClient, resp: Any) -> dict[str, Any]:
    job = client.get(f"/v1/jobs/{resp.headers['x-job-id']}")
    assert job.status_code == 200, job.text
    body: dict[str, Any] = job.json()
    return body


class Worker:
    """The test's stand-in worker: claims the next job and runs it (or not) in a thread."""

    def __init__(self, client: TestClient, worker_id: str = "test:1") -> None:
        self.svc = services(client)
        self.id = worker_id
        self._registry = WorkerRegistry(self.svc.store)
        self._registry.register(worker_id, self.svc.engine.name)
        self.beat()
        self._pool = ThreadPoolExecutor(max_workers=1)

    def beat(self) -> None:
        """A fresh heartbeat: alive (and ready) now."""
        self._registry.beat(self.id, READY, None, 0)

    def claim(self, timeout: float = 20) -> Claim:
        self.beat()
        found: Claim = poll(lambda: self.svc.store.claim(self.id, 60), timeout, "a queued job")
        return found

    def later(self, act: Callable[[Claim], Any]) -> Future[Any]:
        """Claim the next job when it comes and ``act`` on it, in the background."""
        self.beat()
        return self._pool.submit(lambda: act(self.claim()))

    def run(self, claim: Claim) -> str:
        svc = self.svc
        return run_claimed(claim, svc.engine, svc.store, svc.storage, svc.voices, svc.settings.slo)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._registry.remove(self.id)
