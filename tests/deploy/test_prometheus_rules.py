"""The Prometheus rules, alert unit tests and Grafana dashboard in deploy/ are valid and consistent.

promtool comes from the Debian package ``prometheus``; ``scripts/ensure-promtool.sh`` (run by
``make pytest``) installs it. Without it these tests fail: an unchecked alert is an alert that
may never fire.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "steadyvoice-dashboard.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
RUNBOOK_DOCS = {"docs/operations.md", "docs/SLA.md"}

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run `bash scripts/ensure-promtool.sh` "
            "(Debian package `prometheus`; `make pytest` runs it)",
            pytrace=False,
        )
    return path


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rule_files() -> list[Path]:
    files = sorted(p for p in PROM_DIR.glob("*.yml") if p.name != "prometheus.yml")
    assert {p.name for p in files} >= {"recording_rules.yml", "alerts.yml"}
    return files


def test_rule_files_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted((PROM_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in deploy/prometheus/tests/"
    result = run_promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_prometheus_config_is_valid() -> None:
    result = run_promtool("check", "config", PROM_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_has_severity_and_a_runbook_that_exists() -> None:
    text = (PROM_DIR / "alerts.yml").read_text()
    blocks = re.split(r"^\s*- alert: ", text, flags=re.MULTILINE)[1:]
    assert len(blocks) >= 10
    anchors: dict[str, set[str]] = {}
    for doc in RUNBOOK_DOCS:
        path = ROOT / doc
        lines = path.read_text().splitlines() if path.exists() else []
        anchors[doc] = {_slug(line.lstrip("#")) for line in lines if line.startswith("#")}
    for block in blocks:
        name = block.split()[0]
        assert re.search(r"^\s+severity: (page|ticket)$", block, re.MULTILINE), name
        for key in ("summary", "description"):
            assert re.search(rf"^\s+{key}: \S", block, re.MULTILINE), f"{name}: no {key}"
        runbook = re.search(r"^\s+runbook: (\S+)#(\S+)$", block, re.MULTILINE)
        assert runbook, f"{name}: no runbook annotation"
        doc, anchor = runbook.groups()
        assert doc in RUNBOOK_DOCS, f"{name}: runbook in {doc}"
        assert anchor in anchors[doc], f"{name}: no section #{anchor} in {doc}"


def documented_names() -> set[str]:
    names: set[str] = set()
    for name in re.findall(r"`(steadyvoice_[a-z0-9_]+)`", METRICS_DOC.read_text()):
        names.add(name)
        names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    rules = (PROM_DIR / "recording_rules.yml").read_text()
    names.update(re.findall(r"^\s*- record: (\S+)$", rules, re.MULTILINE))
    return names


def referenced_names(expr: str) -> set[str]:
    """Metric and recording-rule names in a PromQL expression (not functions, labels, keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    idents = re.findall(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {name for name in idents if name.lower() not in PROMQL_WORDS}


def dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
    return exprs


def test_referenced_names_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, size) (rate(steadyvoice_job_end_to_end_seconds_bucket"
        '{job=~"$job", le=~"5|5\\\\.0"}[$__rate_interval]))) / (1 - 0.999) '
        "or job:steadyvoice_x:ratio_rate1h and vector(1)"
    )
    assert referenced_names(expr) == {
        "steadyvoice_job_end_to_end_seconds_bucket",
        "job:steadyvoice_x:ratio_rate1h",
    }


def test_dashboard_parses_and_uses_only_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    known = documented_names()
    used: set[str] = set()
    for expr in exprs:
        unknown = referenced_names(expr) - known
        assert not unknown, f"{sorted(unknown)} in {expr!r}: not in docs/metrics.md or rules"
        used |= referenced_names(expr)
    for family in (
        "steadyvoice_jobs_refused_total",
        "steadyvoice_disk_free_bytes",
        "steadyvoice_process_resident_memory_bytes",
        "steadyvoice_job_real_time_factor_bucket",
        "steadyvoice_workers",
    ):
        assert family in used, f"dashboard has no panel for {family}"


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, passes `promtool check rules`."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(dashboard_exprs()):
        promql = expr.replace("$__rate_interval", "5m").replace("$job", ".+")
        lines += [f"      - record: dashboard_expr_{i}", f"        expr: {json.dumps(promql)}"]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = run_promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
