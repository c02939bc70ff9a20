"""Settings: safe defaults, environment variables, and readable refusals of bad values."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from steadyvoice import settings as settings_module
from steadyvoice.cpus import available_cpus
from steadyvoice.settings import (
    ConfigurationError,
    JobSettings,
    PiperSettings,
    Settings,
    load_settings,
    prepare_data_dir,
    unknown_env_names,
)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.engine == "piper"
    assert settings.workers == available_cpus()
    assert settings.piper.threads == 1
    assert settings.piper.parallel_pieces == available_cpus()
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 7860
    assert settings.log_level == "INFO"
    assert settings.data_dir == Path("data")
    assert settings.database_url is None
    db_file = tmp_path.resolve() / "data" / "steadyvoice.db"
    assert settings.resolved_database_url == f"sqlite:///{db_file}"
    assert settings.outputs_dir == Path("data") / "outputs"
    assert settings.run_dir == Path("data") / "run"
    jobs = settings.jobs
    assert jobs.heartbeat_seconds * 2 <= jobs.lease_seconds
    assert jobs.max_attempts == 3


def test_nested_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYVOICE_JOBS__LEASE_SECONDS", "12")
    monkeypatch.setenv("STEADYVOICE_API__PORT", "9000")
    monkeypatch.setenv("STEADYVOICE_WORKERS", "3")
    monkeypatch.setenv("STEADYVOICE_ENGINE", "fake")
    monkeypatch.setenv("STEADYVOICE_DATA_DIR", "/srv/voice")
    settings = load_settings()
    assert settings.jobs.lease_seconds == 12.0
    assert settings.jobs.heartbeat_seconds == JobSettings().heartbeat_seconds
    assert settings.api.port == 9000 and settings.api.host == "127.0.0.1"
    assert settings.workers == 3 and settings.engine == "fake"
    assert settings.resolved_database_url == "sqlite:////srv/voice/steadyvoice.db"


def test_command_line_overrides_merge_with_nested_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEADYVOICE_API__PORT", "9000")
    settings = load_settings(api={"host": "0.0.0.0"}, workers=0)
    assert settings.api.host == "0.0.0.0"
    assert settings.api.port == 9000
    assert settings.workers == 0


@pytest.fixture
def three_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "available_cpus", lambda: 3)


@pytest.mark.usefixtures("three_cpus")
def test_counts_not_set_fill_the_cpus() -> None:
    settings = load_settings()
    assert settings.workers == 3
    assert settings.piper.threads == 1
    assert settings.piper.parallel_pieces == 3


@pytest.mark.usefixtures("three_cpus")
def test_auto_workers_is_one_for_the_gpu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(engine="cosyvoice").workers == 1
    monkeypatch.setenv("STEADYVOICE_WORKERS", "auto")
    assert load_settings(engine="cosyvoice").workers == 1
    assert load_settings(engine="fake").workers == 3


@pytest.mark.usefixtures("three_cpus")
def test_auto_is_accepted_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYVOICE_WORKERS", "auto")
    monkeypatch.setenv("STEADYVOICE_PIPER__PARALLEL_PIECES", "auto")
    settings = load_settings()
    assert (settings.workers, settings.piper.parallel_pieces) == (3, 3)


@pytest.mark.usefixtures("three_cpus")
def test_explicit_counts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYVOICE_WORKERS", "5")
    monkeypatch.setenv("STEADYVOICE_PIPER__THREADS", "2")
    monkeypatch.setenv("STEADYVOICE_PIPER__PARALLEL_PIECES", "4")
    settings = load_settings()
    assert (settings.workers, settings.piper.threads, settings.piper.parallel_pieces) == (5, 2, 4)
    assert load_settings(workers=0).workers == 0


@pytest.mark.usefixtures("three_cpus")
def test_parallel_pieces_auto_counts_sessions_of_the_configured_threads() -> None:
    assert PiperSettings(threads=2).parallel_pieces == 1  # 3 CPUs hold one 2-thread session
    assert PiperSettings(threads=1).parallel_pieces == 3
    assert PiperSettings(threads=8).parallel_pieces == 1


def test_auto_counts_stay_in_range_on_big_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "available_cpus", lambda: 256)
    settings = load_settings()
    assert (settings.workers, settings.piper.parallel_pieces) == (64, 64)


@pytest.mark.parametrize(
    "name", ["STEADYVOICE_FOO", "STEADYVOICE_JOBS__NOPE", "STEADYVOICE_JOBS_LEASE_SECONDS"]
)
def test_unknown_environment_variables_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "1")
    assert unknown_env_names() == [name]
    with pytest.raises(ConfigurationError, match=name):
        load_settings()


def test_unknown_env_names_ignores_other_prefixes_and_knows_every_field() -> None:
    env = {
        "HOME": "/root",
        "STEADYVOICE_WORKERS": "1",
        "steadyvoice_log_level": "DEBUG",
        "STEADYVOICE_PIPER__VOICES": "{}",
        "STEADYVOICE_FAKE__SAMPLE_RATE": "8000",
        "STEADYVOICE_WORKRES": "2",
    }
    assert unknown_env_names(env) == ["STEADYVOICE_WORKRES"]


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"STEADYVOICE_WORKERS": "-1"}, "workers"),
        ({"STEADYVOICE_WORKERS": "many"}, "workers"),
        ({"STEADYVOICE_PIPER__PARALLEL_PIECES": "0"}, "piper.parallel_pieces"),
        ({"STEADYVOICE_ENGINE": "nope"}, "engine"),
        ({"STEADYVOICE_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"STEADYVOICE_API__PORT": "70000"}, "api.port"),
        ({"STEADYVOICE_JOBS__MAX_ATTEMPTS": "0"}, "jobs.max_attempts"),
        ({"STEADYVOICE_JOBS__LEASE_SECONDS": "0"}, "jobs.lease_seconds"),
        (
            {"STEADYVOICE_JOBS__LEASE_SECONDS": "10", "STEADYVOICE_JOBS__HEARTBEAT_SECONDS": "6"},
            "heartbeat_seconds (6.0) must be at most half of lease_seconds (10.0)",
        ),
        ({"STEADYVOICE_DATABASE_URL": "mysql://x"}, "database_url must start with"),
    ],
)
def test_invalid_values_are_a_readable_configuration_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], mentions: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid settings: ")
    assert mentions in message
    assert "errors.pydantic.dev" not in message
    assert "\n" not in message


def test_invalid_overrides_are_refused_too() -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        load_settings(workers=-3)
    with pytest.raises(ConfigurationError, match="typo"):
        load_settings(typo=1)


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("postgresql://sv:pw@db:5432/sv", "postgresql+psycopg://sv:pw@db:5432/sv"),
        ("postgresql+psycopg://sv@db/sv", "postgresql+psycopg://sv@db/sv"),
        ("sqlite:////var/lib/sv.db", "sqlite:////var/lib/sv.db"),
    ],
)
def test_database_urls_are_normalised(given: str, resolved: str) -> None:
    assert Settings(database_url=given).resolved_database_url == resolved


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.workers = 5  # type: ignore[misc]


def test_prepare_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "b")
    prepare_data_dir(settings)
    assert settings.data_dir.is_dir()
    assert list(settings.data_dir.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="data_dir"):
        prepare_data_dir(Settings(data_dir=blocker / "data"))


def test_processes_starting_together_all_prove_the_data_dir(tmp_path: Path) -> None:
    """Workers starting at once each prove the data dir writable: one shared probe file was
    unlinked by one process under another, which then refused to start (a restart, counted as
    a crash)."""
    settings = Settings(data_dir=tmp_path / "data")
    start = threading.Barrier(16)

    def prove(_: int) -> None:
        start.wait()
        for _ in range(50):
            prepare_data_dir(settings)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(prove, range(16)))  # raises here if any failed
    assert list(settings.data_dir.iterdir()) == []


def test_cli_refuses_a_bad_setting_with_exit_code_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env["STEADYVOICE_DATA_DIR"] = str(tmp_path / "data")
    env["STEADYVOICE_WORKERS"] = "-3"
    out = subprocess.run(
        [sys.executable, "-m", "steadyvoice", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "configuration error" in out.stderr
    assert "workers" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()
