"""One settings object for the whole service, read from ``STEADYVOICE_*`` environment variables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from steadyvoice import environment
from steadyvoice.cpus import available_cpus
from steadyvoice.environment import ENV_PREFIX, NESTED_DELIMITER, EnvValueError

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]
# The audio formats jobs are stored and served in (OpenAI's set; steadyvoice.audio.formats).
AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
AUTO = "auto"  # a count sized from the CPUs at start (steadyvoice.cpus.available_cpus)
MAX_COUNT = 64


def auto_workers(engine: str) -> int:
    """One worker process per available CPU; one for cosyvoice (each would load the model on
    the same GPU)."""
    return 1 if engine == "cosyvoice" else min(MAX_COUNT, available_cpus())


def auto_parallel_pieces(threads: int) -> int:
    """As many pieces at once as the CPUs hold sessions of ``threads`` threads."""
    return max(1, min(MAX_COUNT, available_cpus() // max(1, threads)))


class ConfigurationError(Exception):
    """Raised at start when the configuration is unknown or unsafe; the message says what to fix."""


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def tenant_names(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` (per-tenant settings), if every key is a tenant name."""
    from steadyvoice.security.principal import TENANT_NAME

    bad = sorted(name for name in overrides if not TENANT_NAME.fullmatch(name))
    if bad:
        raise ValueError(f"not a tenant name: {', '.join(map(repr, bad))}")
    return overrides


class ApiSettings(_Group):
    """The HTTP front door."""

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65_535)
    max_text_chars: int = Field(5_000, ge=1, le=100_000)
    # The text as spoken (numbers spelled out can make it 5x longer): steadyvoice.jobs.caps.
    max_spoken_chars: int = Field(10_000, ge=1, le=500_000)
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    cors_origins: list[str] = Field(default_factory=list, examples=[["https://app.example"]])
    forwarded_allow_ips: str = "127.0.0.1"
    docs: bool = False
    # A connection must send a whole request head within this; an idle one closes after
    # keep_alive_seconds (nginx's upstream keepalive_timeout must stay below it).
    header_timeout_seconds: PositiveSeconds = 10.0
    keep_alive_seconds: int = Field(5, ge=1, le=3600)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        from steadyvoice.security.proxies import TrustedProxies

        TrustedProxies.parse(value)  # a ValueError names the entry that is not an address
        return value


class JobSettings(_Group):
    """Leases, retries, deadlines and the reaper."""

    lease_seconds: PositiveSeconds = 30.0
    heartbeat_seconds: PositiveSeconds = 5.0
    max_attempts: int = Field(3, ge=1, le=20)
    deadline_seconds: PositiveSeconds = 600.0
    reaper_interval_seconds: PositiveSeconds = 2.0
    poll_interval_seconds: PositiveSeconds = 1.0
    worker_ready_seconds: PositiveSeconds = 15.0
    # Most audio one job may make (0: no cap); estimated at submit, enforced while made.
    max_audio_seconds: float = Field(900.0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _heartbeat_inside_lease(self) -> JobSettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be at most half of "
                f"lease_seconds ({self.lease_seconds}), or a busy worker loses its lease"
            )
        return self


class DatabaseSettings(_Group):
    """PostgreSQL time limits: no call waits forever on a stuck server or a dead link
    (``steadyvoice.jobs.pgguards``). SQLite ignores them."""

    statement_timeout_seconds: PositiveSeconds = 30.0
    keepalive_idle_seconds: int = Field(10, ge=1, le=3_600)
    keepalive_interval_seconds: int = Field(5, ge=1, le=600)
    keepalive_count: int = Field(3, ge=1, le=30)


class BackupSettings(_Group):
    """``steadyvoice backup`` (docs/backup.md): files copied at once, and the S3 endpoint of an
    ``s3://`` destination (None: ``storage.s3_endpoint_url``, else AWS)."""

    parallel: int = Field(4, ge=1, le=MAX_COUNT)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None


class StorageSettings(_Group):
    """Where outputs and voice references go (``steadyvoice.storage.backend``, docs/storage.md)
    and how much free disk readiness demands."""

    min_free_disk_mb: int = Field(512, ge=0)
    backend: Literal["local", "s3"] = "local"
    # s3 only. Credentials come from the standard AWS chain (environment, config files, the
    # instance role), never from here.
    s3_bucket: str | None = None
    s3_prefix: str | None = None  # None: keys start at the area (outputs/…, voices/…)
    s3_endpoint_url: str | None = None  # MinIO, Ceph RGW, Garage; None: AWS
    s3_region: str | None = None
    s3_timeout_seconds: PositiveSeconds = 10.0  # connect and read, per request
    # A failed upload is retried this many times more, waiting backoff, 2x backoff, ... (capped
    # at 30 s) in between; then the job fails with storage_unavailable.
    upload_retries: int = Field(4, ge=0, le=20)
    upload_backoff_seconds: float = Field(0.5, ge=0, le=60)
    # Readiness checks the bucket (HEAD) at most this often and reports the last answer.
    s3_check_seconds: PositiveSeconds = 15.0
    # Downloads answer 307 to a presigned URL valid this long instead of streaming through.
    presign: bool = False
    presign_seconds: int = Field(300, ge=1, le=604_800)

    @model_validator(mode="after")
    def _bucket_named(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("storage.backend=s3 needs storage.s3_bucket")
        if self.presign and self.backend != "s3":
            raise ValueError("storage.presign needs storage.backend=s3")
        return self


class ConversionSettings(_Group):
    """Downloads converted to another format (``GET /v1/jobs/{id}/audio?format=``):
    ``steadyvoice.api.conversions``."""

    # Conversions at once per API process, each in a (niced) process of their own pool; one
    # more than workers + queue is answered 503 busy. cache_bytes bounds <data_dir>/conversions.
    workers: int = Field(
        default_factory=lambda _: min(MAX_COUNT, available_cpus()), ge=1, le=MAX_COUNT
    )
    queue: int = Field(0, ge=0, le=1_000)
    cache_bytes: int = Field(1024**3, ge=0)

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: Any) -> Any:
        return min(MAX_COUNT, available_cpus()) if value == AUTO else value


class PiperSettings(_Group):
    """The default ``piper`` engine: bundled voice plus operator-registered voices by path."""

    default_voice: str = "joe"
    voices: dict[str, Path] = Field(default_factory=dict, examples=[{"name": "/path/voice.onnx"}])
    # Fixed, not sized from the CPUs: the thread count changes the audio (bench/
    # threads_determinism.py) and is part of the engine version, which every host must agree on.
    threads: int = Field(1, ge=1, le=MAX_COUNT)
    max_sentence_phonemes: int = Field(400, ge=50, le=5_000)
    parallel_pieces: int = Field(
        default_factory=lambda data: auto_parallel_pieces(data.get("threads", 1)),
        ge=1,
        le=MAX_COUNT,
    )

    @field_validator("parallel_pieces", mode="before")
    @classmethod
    def _auto_parallel_pieces(cls, value: Any, info: ValidationInfo) -> Any:
        return auto_parallel_pieces(info.data.get("threads", 1)) if value == AUTO else value


class VoiceSettings(_Group):
    """Voice profiles: upload limits and the checks every reference recording must pass."""

    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    min_sample_rate: int = Field(16_000, ge=8_000, le=192_000)
    min_speech_seconds: float = Field(3.0, gt=0, le=600)
    max_speech_seconds: float = Field(30.0, gt=0, le=600)
    max_file_seconds: float = Field(120.0, gt=0, le=3_600)
    stereo_max_side_db: float = Field(-30.0, ge=-120, le=0)
    min_speech_dbfs: float = Field(-40.0, ge=-120, le=0)
    max_clipped_fraction: float = Field(0.001, ge=0, le=1)
    min_snr_db: float = Field(15.0, ge=0, le=100)
    max_name_chars: int = Field(100, ge=1, le=200)
    max_consent_chars: int = Field(2_000, ge=10, le=100_000)
    max_transcript_chars: int = Field(1_000, ge=1, le=100_000)
    analysis_timeout_seconds: PositiveSeconds = 60.0
    analysis_memory_mb: int = Field(2_048, ge=512, le=65_536)
    max_concurrent_checks: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _durations_ordered(self) -> VoiceSettings:
        if not self.min_speech_seconds < self.max_speech_seconds <= self.max_file_seconds:
            raise ValueError(
                "need min_speech_seconds < max_speech_seconds <= max_file_seconds, got "
                f"{self.min_speech_seconds}, {self.max_speech_seconds}, {self.max_file_seconds}"
            )
        return self


class SloSettings(_Group):
    """The promises the SLO report measures against, and how incidents are detected."""

    availability_target: float = Field(0.999, gt=0, lt=1)
    latency_target_seconds: PositiveSeconds = 5.0
    latency_max_chars: int = Field(200, ge=1, le=100_000)
    window_days: int = Field(30, ge=1, le=366)
    readiness_check_seconds: PositiveSeconds = 5.0


class TenantRetention(_Group):
    """One tenant's retention in ``retention.tenants``; left out: the ``retention`` default."""

    outputs_days: int | None = Field(None, ge=0, le=36_600)


class RetentionSettings(_Group):
    """How long SLO bookkeeping rows are kept (at least the SLO window, which reads them), and
    how long job audio is kept (0: forever) before the purge deletes it
    (steadyvoice.storage.retention; legal holds exempt it)."""

    refusals_days: int = Field(90, ge=1, le=3_660)
    incidents_days: int = Field(400, ge=1, le=3_660)
    outputs_days: int = Field(0, ge=0, le=36_600)
    tenants: dict[str, TenantRetention] = Field(
        default_factory=dict, examples=[{"acme": {"outputs_days": 365}}]
    )

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, TenantRetention]) -> dict[str, TenantRetention]:
        return tenant_names(value)

    def outputs_days_for(self, tenant: str) -> int:
        """Days ``tenant``'s audio is kept (0: forever)."""
        own = self.tenants.get(tenant)
        return self.outputs_days if own is None or own.outputs_days is None else own.outputs_days


class AdmissionSettings(_Group):
    """Refusing work that cannot finish in time, instead of accepting it and timing out."""

    enabled: bool = True
    max_queue: int = Field(10_000, ge=1, le=10_000_000)
    recent_jobs: int = Field(50, ge=1, le=10_000)
    retry_after_seconds: int = Field(10, ge=1, le=3_600)
    # A short job is admitted only if the queue is estimated to finish it within this share of
    # the latency objective: the estimate (a mean of recent jobs) lags the slowdown overload
    # itself causes, and the rest is the margin that keeps the objective held (docs/operations).
    latency_fraction: float = Field(0.65, gt=0, le=1)


class SecuritySettings(_Group):
    """API keys, per-key limits and the first-start admin key."""

    rate_per_minute: int = Field(600, ge=1, le=1_000_000)
    max_in_flight: int = Field(50, ge=1, le=1_000_000)
    bootstrap_admin_key: bool = True
    admin_key_file: Path | None = None
    rate_sweep_seconds: PositiveSeconds = 60.0
    # Refused keys (401) a client address may have a minute before it gets 429 with no key
    # lookup at all, across every API process (0: no limit). steadyvoice.security.ratelimit.
    failed_auth_per_minute: int = Field(30, ge=0, le=1_000_000)


class TenantQuota(_Group):
    """One tenant's quotas in ``quotas.tenants``; a value left out is the ``quotas`` default."""

    stored_bytes: int | None = Field(None, ge=0)
    audio_seconds_per_day: float | None = Field(None, ge=0)


class QuotaSettings(_Group):
    """Per-tenant quotas (0: none), checked before a job is accepted: steadyvoice.jobs.quotas."""

    stored_bytes: int = Field(0, ge=0)
    audio_seconds_per_day: float = Field(0.0, ge=0)
    tenants: dict[str, TenantQuota] = Field(
        default_factory=dict, examples=[{"acme": {"audio_seconds_per_day": 3600}}]
    )

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, TenantQuota]) -> dict[str, TenantQuota]:
        return tenant_names(value)


OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


class SpeechSettings(_Group):
    """The OpenAI-compatible ``/v1/audio/speech`` route, streaming and text handling."""

    models: list[str] = Field(default_factory=lambda: ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"])
    voice_map: dict[str, str] = Field(default_factory=dict, examples=[{"alloy": "joe"}])
    default_format: AudioFormat = "mp3"
    wait_seconds: PositiveSeconds = 120.0
    poll_seconds: float = Field(0.02, gt=0, le=5)
    chunk_retention_seconds: PositiveSeconds = 600.0
    # auto: by the language of the voice (steadyvoice/text/languages.py), cosyvoice left alone;
    # en: English for every voice; none: off.
    normalize: Literal["auto", "en", "none"] = "auto"


class FakeSettings(_Group):
    """The ``fake`` engine used by tests and overhead benchmarks."""

    seconds_per_char: float = Field(0.0, ge=0, le=10)
    sample_rate: int = Field(16_000, ge=8_000, le=48_000)
    # Test hooks for the supervisor: a slow load, and a load that fails while this file exists.
    load_seconds: float = Field(0.0, ge=0, le=600)
    fail_load_while: Path | None = None


class CosyVoiceSettings(_Group):
    """The ``cosyvoice`` engine: CosyVoice2 / Fun-CosyVoice3 (docs/engines/cosyvoice.md)."""

    model_dir: Path | None = None
    repo_dir: Path | None = None
    load_trt: bool = False
    trt_concurrent: int = Field(1, ge=1, le=16)
    load_vllm: bool = False
    fp16: bool = False
    reproducible: bool = True
    speakers: list[str] = Field(default_factory=list, examples=[["中文女", "英文男"]])
    default_voice: str | None = None
    text_frontend: bool = True
    max_segment_chars: int = Field(200, ge=20, le=5_000)
    oom_retry_segment_chars: int = Field(60, ge=10, le=5_000)
    warmup: bool = True

    @model_validator(mode="after")
    def _safe_combinations(self) -> CosyVoiceSettings:
        if self.load_vllm and self.reproducible:
            raise ValueError(
                "load_vllm=true cannot give reproducible audio (vLLM samples without the seed); "
                "set reproducible=false as well to accept that"
            )
        if self.oom_retry_segment_chars >= self.max_segment_chars:
            raise ValueError(
                f"oom_retry_segment_chars ({self.oom_retry_segment_chars}) must be smaller than "
                f"max_segment_chars ({self.max_segment_chars})"
            )
        return self


class BatchSettings(_Group):
    """Batches: many jobs in one request (steadyvoice.batches, docs/batches.md)."""

    max_items: int = Field(10_000, ge=1, le=1_000_000)
    # The whole upload (a CSV or JSONL file, or a JSON body of items).
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # A batch item's deadline (the batch lane waits behind interactive work: hours, not the
    # single job's minutes). steadyvoice.jobs.claims.deadline_seconds.
    deadline_seconds: float = Field(6 * 3600.0, gt=0, le=30 * 86_400)
    # Most batch items running at once, service-wide (0: no cap; with dispatch.backend=celery,
    # per engine, fleet-wide). Below the worker count, the rest stay free for interactive
    # jobs: they never wait for a batch item to finish.
    max_running: int = Field(0, ge=0, le=10_000)


class WebhookSettings(_Group):
    """Callbacks when a job or batch finishes (steadyvoice.webhooks, docs/webhooks.md)."""

    # Hosts a callback_url may name: exact names or ``*.example.com``; empty: callbacks refused.
    allowed_hosts: list[str] = Field(default_factory=list, examples=[["hooks.example.com"]])
    # Loopback, private, link-local and other non-public addresses are refused unless true.
    allow_private: bool = False
    # The HMAC-SHA256 signing secret of each tenant; a tenant without one cannot set callbacks.
    secrets: dict[str, str] = Field(default_factory=dict, examples=[{"default": "s3cret..."}])
    max_attempts: int = Field(8, ge=1, le=50)
    retry_base_seconds: PositiveSeconds = 5.0
    retry_max_seconds: PositiveSeconds = 3600.0
    timeout_seconds: PositiveSeconds = 10.0
    poll_seconds: PositiveSeconds = 1.0


class WorkerSettings(_Group):
    """Limits of one worker process. Past one, it finishes its job, exits and is started afresh."""

    max_jobs: int = Field(0, ge=0, le=100_000_000)
    max_memory_mb: int = Field(0, ge=0, le=16_777_216)
    max_device_memory_mb: int = Field(0, ge=0, le=16_777_216)
    # Seconds a worker serves before it is recycled (0: never). ``serve`` recycles its workers in
    # turn, one at a time (steadyvoice.jobs.supervisor); a standalone worker recycles itself.
    max_age: float = Field(0.0, ge=0, le=366 * 86_400)
    # Loaded standby workers a ``serve`` keeps, promoted when a worker dies (no cold start).
    # None: 1 for piper, 0 for fake and cosyvoice (a spare holds a second copy of the model).
    spares: int | None = Field(None, ge=0, le=8)
    # A worker serves its own /metrics here (0: none), for Prometheus to scrape each worker.
    # ``serve``'s workers take this port and the next ones, one per worker process (spares
    # included; steadyvoice.observability.slot_metrics); with 0 they are in the API's /metrics.
    metrics_port: int = Field(0, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 (or the host's address) for a remote Prometheus


class ConsoleSettings(_Group):
    """The web console under ``/ui/`` (steadyvoice.console, docs/ui.md): its sign-in sessions."""

    # A session ends after this long without a request, and this long after sign-in at most.
    session_idle_seconds: float = Field(1800.0, gt=0, le=86_400)
    session_max_seconds: float = Field(12 * 3600.0, gt=0, le=30 * 86_400)
    # The address people open the console at (https://tts.example:8443). Set: the only Origin
    # a console form may come from, whatever Host a proxy passes. Unset: the request's own.
    public_origin: str | None = None

    @field_validator("public_origin")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises for a port that is not one
        except ValueError as exc:
            raise ValueError(f"console.public_origin: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise ValueError("console.public_origin must be http(s)://host[:port]")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("console.public_origin has no path: http(s)://host[:port]")
        return f"{parts.scheme}://{parts.netloc.lower()}"


class DispatchSettings(_Group):
    """How workers learn of queued jobs (steadyvoice.dispatch, docs/scale-out.md): ``embedded``
    (local workers poll the store and are rung) or ``celery`` (a message per job on a broker)."""

    backend: Literal["embedded", "celery"] = "embedded"
    broker_url: str | None = None  # celery only: redis://host:6379/0
    # A queued job sent this long ago and still not claimed is sent again (a lost message).
    republish_seconds: PositiveSeconds = 60.0
    # How long sending one message may take before the job is left to the reaper to send.
    publish_timeout_seconds: PositiveSeconds = 2.0
    # How often (at most) the API pings the broker for /readyz's ``broker_unreachable``.
    broker_check_seconds: PositiveSeconds = 5.0
    # A batch message that finds batch.max_running reached is held this long (its worker runs
    # interactive jobs meanwhile), then put back in its queue; also a warm shutdown's longest
    # wait for such a worker. steadyvoice.dispatch.consumer. At most half republish_seconds
    # (the reaper counts a delivered message as held for that long).
    batch_hold_seconds: float = Field(10.0, gt=0, le=600)  # under Redis's visibility timeout

    @model_validator(mode="after")
    def _broker_named(self) -> DispatchSettings:
        if self.backend == "celery" and not self.broker_url:
            raise ValueError("dispatch.backend=celery needs dispatch.broker_url")
        return self


class Settings(BaseSettings):
    """All service settings. Built once at the edge (CLI) and passed down explicitly."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    database: DatabaseSettings = DatabaseSettings()
    metrics_dir: Path | None = None
    engine: Literal["piper", "fake", "cosyvoice"] = "piper"
    workers: int = Field(
        default_factory=lambda data: auto_workers(data.get("engine", "piper")),
        ge=0,
        le=MAX_COUNT,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: readable text lines when stdout is a terminal, JSON lines otherwise (services).
    log_format: Literal["auto", "json", "text"] = "auto"
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()
    storage: StorageSettings = StorageSettings()
    backup: BackupSettings = BackupSettings()
    conversion: ConversionSettings = Field(default_factory=ConversionSettings)
    piper: PiperSettings = Field(default_factory=PiperSettings)  # sized from the CPUs at start
    voices: VoiceSettings = VoiceSettings()
    slo: SloSettings = SloSettings()
    retention: RetentionSettings = RetentionSettings()
    admission: AdmissionSettings = AdmissionSettings()
    security: SecuritySettings = SecuritySettings()
    quotas: QuotaSettings = QuotaSettings()
    speech: SpeechSettings = SpeechSettings()
    fake: FakeSettings = FakeSettings()
    cosyvoice: CosyVoiceSettings = CosyVoiceSettings()
    worker: WorkerSettings = WorkerSettings()
    batch: BatchSettings = BatchSettings()
    webhooks: WebhookSettings = WebhookSettings()
    dispatch: DispatchSettings = DispatchSettings()
    console: ConsoleSettings = ConsoleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Lists may be comma-separated, and bad JSON is refused naming the variable
        # (steadyvoice.environment), before pydantic-settings decodes the values.
        if isinstance(env_settings, EnvSettingsSource):
            try:
                env_settings.env_vars = environment.natural_env(env_settings.env_vars, settings_cls)
            except EnvValueError as exc:
                raise ConfigurationError(str(exc)) from None
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: Any, info: ValidationInfo) -> Any:
        return auto_workers(info.data.get("engine", "piper")) if value == AUTO else value

    @model_validator(mode="after")
    def _check_database_url(self) -> Settings:
        url = self.database_url
        if url is not None and not url.startswith(
            ("sqlite:", "postgresql:", "postgresql+psycopg:")
        ):
            raise ValueError(
                "database_url must start with sqlite:, postgresql: or postgresql+psycopg:"
            )
        return self

    @model_validator(mode="after")
    def _retention_covers_slo_window(self) -> Settings:
        window = self.slo.window_days
        for name in ("refusals_days", "incidents_days"):
            if getattr(self.retention, name) < window:
                raise ValueError(
                    f"retention.{name} ({getattr(self.retention, name)}) must be at least "
                    f"slo.window_days ({window}), or the SLO report would miss rows"
                )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data dir."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir.resolve() / 'steadyvoice.db'}"
        if self.database_url.startswith("postgresql:"):
            return "postgresql+psycopg:" + self.database_url.removeprefix("postgresql:")
        return self.database_url

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def resolved_metrics_dir(self) -> Path:
        """prometheus-client's multiprocess files: the API and its local workers share them.

        Host-local and per instance (never under the data dir, which may be a shared mount in
        distributed mode): ``metrics_dir``, else ``<tempdir>/steadyvoice-metrics-<api port>``.
        """
        if self.metrics_dir is not None:
            return self.metrics_dir
        return Path(tempfile.gettempdir()) / f"steadyvoice-metrics-{self.api.port}"

    @property
    def resolved_admin_key_file(self) -> Path:
        """Where the first admin key is written (0600); ``<data_dir>/admin.key`` by default."""
        return self.security.admin_key_file or self.data_dir / "admin.key"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """``STEADYVOICE_*`` variables that no setting reads (usually a typo), other than the
    client variables ``STEADYVOICE_KEY`` and ``STEADYVOICE_URL``."""
    return environment.unknown_env_names(Settings, os.environ if environ is None else environ)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise ConfigurationError with a readable message."""
    unknown = unknown_env_names()
    if unknown:
        raise ConfigurationError(
            "unknown setting(s): " + ", ".join(unknown) + " (see docs/configuration.md)"
        )
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a form natural_env does not check; it names the group
        raise ConfigurationError(f"invalid settings: {exc}") from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"{where}: {err['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(lines)) from None


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir (0700: the database holds every tenant's texts) and prove it is
    writable, or fail with a clear message."""
    path = settings.data_dir
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A name of this process's own: workers starting together each prove it (one shared
        # name was unlinked by one under another, which then failed to start).
        descriptor, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(
            f"data_dir {str(path)!r} is not a writable directory ({exc.strerror})"
        ) from None
