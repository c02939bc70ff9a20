"""The systemd units in deploy/systemd/ are valid, hardened as docs/deploy-systemd.md says, and
run commands and settings that exist.

``systemd-analyze`` (Debian package ``systemd``) checks the files themselves; systemd need not
be PID 1. The units install the code in /opt/steadyvoice; the copies checked here point that
prefix at this checkout, so ``verify`` finds the real ``ExecStart`` program (a missing one is an
error) and nothing else is changed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadyvoice.cli import build_parser
from steadyvoice.environment import settings_variables
from steadyvoice.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
DOCS = ROOT / "docs" / "deploy-systemd.md"
PREFIX = "/opt/steadyvoice"
# What verify and security are run on: each file, the worker template as an instance.
CHECKED = [
    "steadyvoice.service",
    "steadyvoice-worker@0.service",
    "steadyvoice-backup.service",
    "steadyvoice-backup.timer",
]


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install systemd"
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The units as installed from this checkout."""
    where = tmp_path_factory.mktemp("units")
    for unit in UNITS.iterdir():
        (where / unit.name).write_text(unit.read_text().replace(PREFIX, str(ROOT)))
    assert (ROOT / ".venv" / "bin" / "steadyvoice").exists()
    yield where


def _entries(name: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment in a unit file, in order."""
    section, entries = "", []
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


def _values(name: str, key: str) -> list[str]:
    return [value for _, k, value in _entries(name) if k == key]


@pytest.mark.parametrize("unit", CHECKED)
def test_verify_is_clean(installed: Path, unit: str) -> None:
    result = _analyze("verify", "--man=no", f"./{unit}", cwd=installed)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_verify_catches_what_it_should(installed: Path) -> None:
    """The check above is not vacuous: a typo'd key and a missing program are reported."""
    text = (installed / "steadyvoice.service").read_text()
    broken = text.replace("UMask=0077", "UMask=0077\nProtectSystm=strict")
    broken = broken.replace(f"{ROOT}/.venv/bin/steadyvoice serve", "/nonexistent/sv serve")
    (installed / "broken.service").write_text(broken)
    result = _analyze("verify", "--man=no", "./broken.service", cwd=installed)
    assert "Unknown key 'ProtectSystm'" in result.stderr
    assert "/nonexistent/sv is not executable" in result.stderr
    (installed / "broken.service").unlink()


def test_security_scores_are_the_documented_ones(installed: Path) -> None:
    documented = dict(re.findall(r"^\| `([\w@.-]+)` \| ([\d.]+) ", DOCS.read_text(), re.M))
    scored = {}
    for unit in [u for u in CHECKED if u.endswith(".service")]:
        result = _analyze("security", "--offline=yes", f"./{unit}", cwd=installed)
        assert result.returncode == 0, result.stderr
        found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
        assert found, result.stdout
        scored[unit] = found.group(1)
    assert all(float(score) < 2.0 for score in scored.values()), scored
    # Another systemd version weighs the checks differently: the table is that of one version.
    recorded = re.search(r"--offline=yes` \(systemd (\d+);", DOCS.read_text())
    assert recorded, "the table names the systemd version it was taken with"
    version = _analyze("--version", cwd=installed).stdout.split()[1]
    if version == recorded.group(1):
        assert scored == documented, "update the table in docs/deploy-systemd.md"


@pytest.mark.parametrize("unit", ["steadyvoice.service", "steadyvoice-worker@.service"])
def test_notify_watchdog_and_restarts(unit: str) -> None:
    assert _values(unit, "Type") == ["notify"] and _values(unit, "NotifyAccess") == ["main"]
    assert _values(unit, "WatchdogSec") and _values(unit, "Restart") == ["always"]
    assert _values(unit, "RestartSec") and _values(unit, "StartLimitBurst")
    # In [Unit], where systemd reads it (in [Service] it is ignored with only a warning).
    assert ("Unit", "StartLimitIntervalSec") in {(s, k) for s, k, _ in _entries(unit)}


def test_serve_stops_itself_and_survives_a_worker_oom() -> None:
    unit = "steadyvoice.service"
    assert _values(unit, "KillMode") == ["mixed"], "serve stops its workers itself"
    assert _values(unit, "OOMPolicy") == ["continue"], "a killed worker is the supervisor's"
    assert _values(unit, "MemoryMax") and _values(unit, "CPUQuota")


@pytest.mark.parametrize("unit", [u for u in UNITS.iterdir() if u.suffix == ".service"])
def test_hardening(unit: Path) -> None:
    values = {k: v for _, k, v in _entries(unit.name)}
    assert values["User"] == "steadyvoice"
    assert values["CapabilityBoundingSet"] == "" and values["NoNewPrivileges"] == "yes"
    assert values["ProtectSystem"] == "strict" and values["PrivateTmp"] == "yes"
    assert "/var/lib/steadyvoice" in _values(unit.name, "ReadWritePaths")
    data_dir = _values(unit.name, "Environment")
    assert "STEADYVOICE_DATA_DIR=/var/lib/steadyvoice" in data_dir


def test_worker_instance_is_its_gpu() -> None:
    env = _values("steadyvoice-worker@.service", "Environment")
    assert "CUDA_VISIBLE_DEVICES=%i" in env
    assert "/etc/steadyvoice/worker-%i.env" in " ".join(
        _values("steadyvoice-worker@.service", "EnvironmentFile")
    )


def test_timer_runs_the_backup() -> None:
    assert _values("steadyvoice-backup.timer", "OnCalendar")
    assert _values("steadyvoice-backup.timer", "Persistent") == ["true"]
    assert _values("steadyvoice-backup.service", "Type") == ["oneshot"]


@pytest.mark.parametrize("unit", [u.name for u in UNITS.iterdir() if u.suffix == ".service"])
def test_commands_parse_with_the_real_cli(unit: str) -> None:
    (command,) = _values(unit, "ExecStart")
    program, *args = shlex.split(command.replace("${BACKUP_DEST}", "/srv/backups/x"))
    assert program == f"{PREFIX}/.venv/bin/steadyvoice"
    build_parser().parse_args(args)  # exits (SystemExit) on an unknown command or argument


def test_every_steadyvoice_variable_is_a_setting() -> None:
    known = {variable.name for variable in settings_variables(Settings)}
    for unit in UNITS.iterdir():
        named = set(re.findall(r"\bSTEADYVOICE_[A-Z0-9_]+", unit.read_text()))
        assert named <= known, f"{unit.name}: {sorted(named - known)}"
