"""``make serve`` installs the runtime only; ``make test`` (lint, typecheck, pytest) adds the dev
and eval extras; each install has its own stamp, so neither undoes or repeats the other."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = "dev,eval"


def _make(venv: Path, *args: str) -> list[str]:
    out = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.splitlines()


def _bootstraps(lines: list[str]) -> list[str]:
    return [line for line in lines if "bootstrap" in line]


def test_serve_installs_the_runtime_only_and_says_how_to_use_the_command(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    lines = _make(venv, "-n", "serve")
    assert _bootstraps(lines) == [f"bash scripts/bootstrap.sh {venv}"]  # no extras
    told = next(i for i, line in enumerate(lines) if "source" in line)
    assert f"run 'source {venv}/bin/activate'" in lines[told]
    assert "'steadyvoice' command" in lines[told]
    assert lines[told + 1] == f"{venv}/bin/steadyvoice serve"  # said before the service starts


def test_checks_install_the_dev_and_eval_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    for target in ("lint", "typecheck", "pytest", "test"):
        assert _bootstraps(_make(venv, "-n", target)) == [
            f"bash scripts/bootstrap.sh {venv} {DEV}"
        ], target


def test_each_install_has_its_own_stamp(tmp_path: Path) -> None:
    fake = ["-s", "BOOTSTRAP=echo bootstrap"]  # say what would be installed, install nothing

    after_test = tmp_path / "after-test"
    after_test.mkdir()
    assert _bootstraps(_make(after_test, *fake, "install-dev")) == [f"bootstrap {after_test} {DEV}"]
    assert _bootstraps(_make(after_test, *fake, "install")) == []  # serve after test: nothing

    after_serve = tmp_path / "after-serve"
    after_serve.mkdir()
    assert _bootstraps(_make(after_serve, *fake, "install")) == [f"bootstrap {after_serve}"]
    assert _bootstraps(_make(after_serve, *fake, "install")) == []
    # test after serve: the extras are added
    assert _bootstraps(_make(after_serve, *fake, "install-dev")) == [
        f"bootstrap {after_serve} {DEV}"
    ]
    assert _bootstraps(_make(after_serve, *fake, "install-dev", "install")) == []


def test_bootstrap_installs_the_extras_it_is_given(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "pip-calls"
    python = venv / "bin" / "python"  # stands in for the venv's python: records pip's arguments
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    python.chmod(0o755)
    for extras, spec in (([], "."), ([DEV], f".[{DEV}]")):
        calls.unlink(missing_ok=True)
        out = subprocess.run(
            ["bash", "scripts/bootstrap.sh", str(venv), *extras],
            cwd=ROOT,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert calls.read_text().splitlines()[-1] == f"-m pip install -q -e {spec}"
        assert out.stdout.strip() == f"bootstrap: installed {spec} into {venv}"
