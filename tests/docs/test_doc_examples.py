"""The README quickstart and the shell examples of docs/api.md, docs/SLA.md and docs/openai.md,
run as written against a real ``steadyvoice serve`` (fake engine), so an example that stops
working fails the build.

Each document runs in a directory laid out like a checkout (links to this one's files) whose
``data/`` is the test service's, so ``cat data/admin.key`` and ``steadyvoice keys create`` find
it. The only value changed is the address: ``STEADYVOICE_URL`` names the test service's port.
The README runs from a shell without the venv on PATH (its ``source .venv/bin/activate`` must
do that); the other documents start where the README leaves a reader: venv active, the client
variables set. A recording the reader brings (``jane.wav``) is put there too. Examples that
cannot run here carry ``<!-- doc-test: skip: WHY -->`` (see doc_blocks.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from doc_blocks import Block, shell_blocks
from doc_runs import DocRun, audio_problem, output_files, run_blocks
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
DOCS = ["README.md", "docs/api.md", "docs/SLA.md", "docs/openai.md"]
# What the README's setup leaves a reader with, for the documents read after it.
AFTER_README = """source .venv/bin/activate
export STEADYVOICE_KEY=$(cat data/admin.key)
"""


def checkout(base: Path) -> Path:
    """A directory that looks like this checkout, with a ``data/`` of its own."""
    tree = base / "checkout"
    tree.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"data", ".git"} and not entry.name.endswith("_cache"):
            (tree / entry.name).symlink_to(entry)
    (tree / "jane.wav").write_bytes(reference_wav())
    return tree


def shell_env(url: str) -> dict[str, str]:
    """Our environment without the venv on PATH and without ``STEADYVOICE_*``, plus the URL."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(PATH=os.pathsep.join(path), STEADYVOICE_URL=url)
    return env


@pytest.fixture
def served(
    tmp_path: Path, start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> tuple[Service, Path]:
    """A fake-engine service whose data dir is a checkout's ``data/``."""
    tree = checkout(tmp_path)
    svc: Service = start_service(service_env(data_dir=tree / "data", engine="fake"))
    return svc, tree


def run_doc(doc: str, svc: Service, tree: Path, prelude: str = "") -> tuple[list[Block], DocRun]:
    blocks = [b for b in shell_blocks(ROOT / doc, doc) if b.skip is None]
    assert blocks, f"{doc} has no example that runs"
    run = run_blocks(blocks, tree, shell_env(svc.url), prelude)
    report = run.report()
    assert not report and run.returncode == 0, f"{doc}: failed\n{report or run.stderr[-3000:]}"
    for block in blocks:
        for name in output_files(block):
            problem = audio_problem(tree / name)
            assert problem is None, f"{block.where}: {problem}"
    return blocks, run


def test_the_readme_quickstart_runs_as_written(served: tuple[Service, Path]) -> None:
    svc, tree = served
    blocks, run = run_doc("README.md", svc, tree)
    # The job it made succeeded, and out.wav is its audio, checksum and all.
    job = json.loads((tree / "job.json").read_text())
    assert job["status"] == "succeeded", job
    assert job["text"] == "Your balance is forty two pounds." and job["params"]["seed"] == 7
    wav = (tree / "out.wav").read_bytes()
    sha = hashlib.sha256(wav).hexdigest()
    assert sha == job["output"]["sha256"] == svc.job(job["id"])["output"]["sha256"]
    assert f"{sha}  out.wav" in run.stdout_of(blocks[0])
    # ``keys create`` printed a working operator key of tenant acme.
    token = next(w for w in run.stdout_of(blocks[0]).split() if w.startswith("sv_"))
    me = svc.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["role"], me["tenant"]) == ("operator", "acme"), me
    # The profile was made from jane.wav, and a job that names it is spoken.
    voice = json.loads((tree / "voice.json").read_text())
    assert voice["id"].startswith("vp_") and voice["name"] == "Jane", voice
    jobs = svc.http.get("/v1/jobs").json()["items"]
    adapted = [j for j in jobs if j["voice"] == voice["id"]]
    assert len(adapted) == 1 and len(jobs) == 2, jobs
    assert svc.wait_job(adapted[0]["id"])["status"] == "succeeded"


def test_the_api_examples_run_as_written(served: tuple[Service, Path]) -> None:
    svc, tree = served
    blocks, run = run_doc("docs/api.md", svc, tree, AFTER_README)
    idempotent = next(b for b in blocks if "Idempotency-Key" in b.text)
    ids = run.stdout_of(idempotent).split()
    assert len(ids) == 2 and ids[0] == ids[1], ids
    error = next(b for b in blocks if b.expect_status)
    assert '"code":"unsupported_format"' in run.stdout_of(error)
    assert "the body must be JSON" in run.stdout_of(error)


def test_the_sla_examples_run_as_written(served: tuple[Service, Path]) -> None:
    svc, tree = served
    _, run = run_doc("docs/SLA.md", svc, tree, AFTER_README)
    out = "".join(r.stdout for r in run.runs)
    assert '"availability"' in out and "steadyvoice_http_requests_total" in out


def test_the_openai_examples_run_as_written(served: tuple[Service, Path]) -> None:
    svc, tree = served
    run_doc("docs/openai.md", svc, tree, AFTER_README)
    poll(
        lambda: all(j["status"] == "succeeded" for j in svc.http.get("/v1/jobs").json()["items"]),
        60,
        "the openai.md examples' jobs",
    )
