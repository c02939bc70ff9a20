"""The app factory: build everything once, keep it on ``app.state``, tear it down on exit."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from steadyvoice import __version__
from steadyvoice.api import audit, health, holds, jobs, keys, metrics, slo, speech, voices, workers
from steadyvoice.api import batches as batch_routes
from steadyvoice.api.access import AccessMiddleware
from steadyvoice.api.audit_trail import AuditMiddleware
from steadyvoice.api.conversions import Conversions
from steadyvoice.api.deps import Services
from steadyvoice.api.errors import install_error_handlers
from steadyvoice.api.forwarded import ForwardedMiddleware
from steadyvoice.api.headers import SecurityHeadersMiddleware
from steadyvoice.api.middleware import (
    BodyLimit,
    BodyLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from steadyvoice.api.openapi import install_openapi
from steadyvoice.api.policy import check_routes
from steadyvoice.console import ConsoleAccessMiddleware
from steadyvoice.console import install as install_console
from steadyvoice.dispatch import make_dispatcher
from steadyvoice.dispatch.broker_check import broker_check
from steadyvoice.engines.registry import build_engine
from steadyvoice.errors import BatchTooLarge, ReferenceTooLarge
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.dispatch import ProgressWatch
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.reaper import Reaper
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.submit import JobService
from steadyvoice.languages import identify
from steadyvoice.observability import metrics as metric_hooks
from steadyvoice.observability import retention as slo_retention
from steadyvoice.observability.incidents import IncidentMonitor
from steadyvoice.periodic import Periodic
from steadyvoice.security.audit import AuditLog
from steadyvoice.security.bootstrap import ensure_admin_key
from steadyvoice.security.keys import KeyStore
from steadyvoice.security.ratelimit import FailedAuthLimit, RateLimiter
from steadyvoice.security.refusals import RefusalFolder
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import open_storage
from steadyvoice.storage.retention import purge_outputs
from steadyvoice.voices.profiles import VoiceService, size_advice
from steadyvoice.voices.store import VoiceStore
from steadyvoice.webhooks.sender import WebhookSender

log = logging.getLogger("steadyvoice.api")

# Room for the form fields and multipart framing around the audio itself.
MULTIPART_OVERHEAD = 256 * 1024


def build_services(settings: Settings) -> Services:
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir, settings.database)
    engine = build_engine(settings)
    dispatcher = make_dispatcher(settings, store)  # Celery, NOTIFY or the local doorbell
    voices = VoiceService(settings, VoiceStore(store))
    return Services(
        settings=settings,
        store=store,
        engine=engine,
        jobs=JobService(settings, store, engine, dispatcher, voices),
        storage=open_storage(settings, "outputs"),
        workers=WorkerRegistry(store),
        voices=voices,
        keys=KeyStore(store, settings.security),
        audit=AuditLog(store),
        limiter=RateLimiter(store),
        progress=ProgressWatch(settings.run_dir),
        conversions=Conversions(settings.conversion, settings.data_dir / "conversions"),
        broker=broker_check(settings),
    )


def create_app(settings: Settings, *, run_reaper: bool = True) -> FastAPI:
    """The HTTP API. It never loads or runs a speech engine."""
    services = build_services(settings)
    refusals = RefusalFolder(services.audit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.store.migrate()
        services.engine.version(services.engine.default_voice())  # hash model files now
        metric_hooks.precreate_series()
        ensure_admin_key(services.keys, settings)
        # The language identifier loads in about a second: not on the first request's time.
        threading.Thread(target=identify.warm, name="language-id-warm", daemon=True).start()
        chunks = ChunkStore(services.store)
        retention = timedelta(seconds=settings.speech.chunk_retention_seconds)

        def sweep() -> None:
            """Expired rate-limit windows, streamed chunks no client can still want,
            refusals and incidents past their retention, and audio past its retention."""
            services.limiter.sweep()
            refusals.flush()
            chunks.sweep(retention)
            slo_retention.sweep(services.store, settings.retention)
            purge_outputs(
                services.store,
                services.storage,
                settings.retention,
                on_purged=lambda out: services.conversions.forget(
                    out.sha256, out.sample_rate, out.fmt
                ),
            )

        sweeper = Periodic("sweeper", settings.security.rate_sweep_seconds, sweep, log)
        reaper = Reaper(services.store, make_dispatcher(settings, services.store), settings.jobs)
        monitor = IncidentMonitor(
            services.store,
            settings.slo.readiness_check_seconds,
            lambda: health.readiness(services).reasons,
        )
        # Pending callbacks come from the database: a restart resumes them (steadyvoice.webhooks).
        webhooks = WebhookSender(services.store, settings)
        if run_reaper:
            reaper.start()
            monitor.start()
            sweeper.start()
            webhooks.start()
        services.progress.open()
        try:
            yield
        finally:
            reaper.stop()
            webhooks.stop()
            monitor.stop()
            sweeper.stop()
            refusals.close()
            services.jobs.close()
            services.limiter.close()
            services.progress.close()
            services.conversions.close()
            metrics.close(app)
            services.store.engine.dispose()

    app = FastAPI(
        title="steadyvoice",
        version=__version__,
        description="Self-hosted voice-cloning text-to-speech with durable async jobs.",
        lifespan=lifespan,
        docs_url="/docs" if settings.api.docs else None,
        redoc_url="/redoc" if settings.api.docs else None,
        # A trailing-slash redirect is built from the Host header (an absolute URL to any
        # host a client names): /v1/jobs/ is a 404 instead.
        redirect_slashes=False,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(voices.router)
    app.include_router(metrics.router)
    app.include_router(slo.router)
    app.include_router(keys.router)
    app.include_router(keys.me_router)
    app.include_router(audit.router)
    app.include_router(speech.router)
    app.include_router(holds.router)
    app.include_router(batch_routes.router)
    app.include_router(workers.router)
    ui = install_console(app, services)  # the web console under /ui/ (steadyvoice.console)
    check_routes(app)
    install_openapi(app)
    uploads = {
        "/v1/voices": BodyLimit(
            settings.voices.max_upload_bytes + MULTIPART_OVERHEAD,
            ReferenceTooLarge,
            "the upload",
            shown=settings.voices.max_upload_bytes,
            advice=size_advice(settings.voices),
        ),
        # The whole body, multipart framing included (a batch file is large beside it).
        "/v1/batches": BodyLimit(settings.batch.max_body_bytes, BatchTooLarge, "the batch"),
    }
    uploads["/ui/voices"] = uploads["/v1/voices"]  # the console's reference upload form
    uploads["/ui/batches"] = uploads["/v1/batches"]  # the console's batch upload form
    # Added innermost first. A request meets: forwarded headers, metrics, security headers
    # (outside the request id's last-resort 500, so that answer has them too), request id,
    # CORS, audit, access (key, role, rate), body limit, then the routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes, routes=uploads)
    app.add_middleware(
        AccessMiddleware,
        api=app,
        keys=services.keys,
        limiter=services.limiter,
        failures=FailedAuthLimit(services.limiter, settings.security.failed_auth_per_minute),
        docs_open=settings.api.docs,
    )
    # The console's pages: admitted by session cookie (same key, role, rate and audit as a
    # call), for /ui/ only; the API's access middleware inside then lets them through.
    app.add_middleware(
        ConsoleAccessMiddleware,
        api=app,
        sessions=ui.sessions,
        keys=services.keys,
        limiter=services.limiter,
    )
    app.add_middleware(AuditMiddleware, audit=services.audit, refusals=refusals)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                *("Location", "Retry-After", "X-Content-SHA256", "X-Request-ID"),
                *("X-Job-ID", "X-Sample-Rate", "X-Converted-From", "X-Source-SHA256"),
                *("X-SteadyVoice-Ignored-Fields", "X-SteadyVoice-Live-Workers"),
            ],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, slo=settings.slo)
    # Outermost: everything inside (rate limits, the audit log) sees the real client address.
    app.add_middleware(ForwardedMiddleware, trusted=settings.api.forwarded_allow_ips)
    return app
