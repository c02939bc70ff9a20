"""The app factory: build everything once, keep it on ``app.state``, tear it down on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from steadyvoice import __version__
from steadyvoice.api import health, jobs, metrics, slo, voices
from steadyvoice.api.deps import Services
from steadyvoice.api.errors import install_error_handlers
from steadyvoice.api.middleware import (
    BodyLimit,
    BodyLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.dispatch import DoorbellDispatcher
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.reaper import Reaper
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.submit import JobService
from steadyvoice.observability import metrics as metric_hooks
from steadyvoice.observability.incidents import IncidentMonitor
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage
from steadyvoice.voices.profiles import VoiceService
from steadyvoice.voices.store import VoiceStore

# Room for the form fields and multipart framing around the audio itself.
MULTIPART_OVERHEAD = 256 * 1024


def build_services(settings: Settings) -> Services:
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    engine = build_engine(settings)
    dispatcher = DoorbellDispatcher(settings.run_dir)
    voices = VoiceService(settings, VoiceStore(store))
    return Services(
        settings=settings,
        store=store,
        engine=engine,
        jobs=JobService(settings, store, engine, dispatcher, voices),
        storage=LocalStorage(settings.outputs_dir),
        workers=WorkerRegistry(store),
        voices=voices,
    )


def create_app(settings: Settings, *, run_reaper: bool = True) -> FastAPI:
    """The HTTP API. It never loads or runs a speech engine."""
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.store.migrate()
        services.engine.version(services.engine.default_voice())  # hash model files now
        metric_hooks.precreate_series()
        reaper = Reaper(services.store, DoorbellDispatcher(settings.run_dir), settings.jobs)
        monitor = IncidentMonitor(
            services.store,
            settings.slo.readiness_check_seconds,
            lambda: health.readiness(services).reasons,
        )
        if run_reaper:
            reaper.start()
            monitor.start()
        try:
            yield
        finally:
            reaper.stop()
            monitor.stop()
            services.jobs.close()
            metrics.close(app)
            services.store.engine.dispose()

    app = FastAPI(
        title="steadyvoice",
        version=__version__,
        description="Self-hosted voice-cloning text-to-speech with durable async jobs.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(voices.router)
    app.include_router(metrics.router)
    app.include_router(slo.router)
    uploads = {
        "/v1/voices": BodyLimit(
            settings.voices.max_upload_bytes + MULTIPART_OVERHEAD,
            "reference_too_large",
            "the recording",
            shown=settings.voices.max_upload_bytes,
        )
    }
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes, routes=uploads)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, slo=settings.slo)
    return app
