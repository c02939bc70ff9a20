"""The command line, run as a user runs it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import soundfile as sf
from processes import run_cli  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, tmp_path / "data", **env)


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = _run(["--help"], tmp_path)
    assert out.returncode == 0
    for command in ("serve", "worker", "synth", "verify", "voices"):
        assert command in out.stdout
    for command in ("serve", "worker", "synth", "verify", "voices"):
        sub = _run([command, "--help"], tmp_path)
        assert sub.returncode == 0, sub.stderr


def test_synth_writes_a_wav_whose_hash_it_reports(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    out = _run(
        ["synth", "Hello from the command line.", "-o", str(target), "--seed", "3"], tmp_path
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["seed"] == 3 and report["voice"] == "joe"
    assert report["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    samples, rate = sf.read(target)
    assert rate == 22050 and len(samples) / rate > 1.0
    again = _run(
        ["synth", "Hello from the command line.", "-o", str(tmp_path / "b.wav"), "--seed", "3"],
        tmp_path,
    )
    assert json.loads(again.stdout)["sha256"] == report["sha256"]


def test_unwritable_data_dir_is_a_clear_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = _run(["worker"], tmp_path, STEADYVOICE_DATA_DIR=str(blocker / "data"))
    assert out.returncode == 2
    assert "configuration error" in out.stderr and "data_dir" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_setting_fails_at_start(tmp_path: Path) -> None:
    out = _run(["serve"], tmp_path, STEADYVOICE_WORKRES="2")
    assert out.returncode == 2
    assert "STEADYVOICE_WORKRES" in out.stderr


def test_worker_with_a_broken_voice_exits_1_with_a_json_error(tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_text("not an onnx model")
    Path(f"{model}.json").write_text("{}")
    out = _run(["worker"], tmp_path, STEADYVOICE_PIPER__VOICES=json.dumps({"broken": str(model)}))
    assert out.returncode == 1
    errors = [json.loads(line) for line in out.stdout.splitlines() if '"ERROR"' in line]
    assert errors and errors[-1]["error_code"] == "engine_unavailable"
    assert "Traceback" not in out.stdout + out.stderr


def test_voices_add_list_rm(tmp_path: Path) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(reference_wav())
    consent = "I agree to my voice being used by steadyvoice. Jane, 2026-11-25."
    added = _run(
        ["voices", "add", "Jane", str(ref), "--consent", consent, "--language", "de-DE"], tmp_path
    )
    assert added.returncode == 0, added.stderr
    voice = json.loads(added.stdout)
    assert voice["voice_id"].startswith("vp_") and voice["status"] == "active"
    assert voice["language"] == "de"
    assert voice["reference_sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest()
    assert voice["created_by"].startswith("cli:")

    listed = _run(["voices", "list", "--json"], tmp_path)
    assert [v["voice_id"] for v in json.loads(listed.stdout)] == [voice["voice_id"]]

    again = _run(["voices", "reanalyse"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["voice_id"] == voice["voice_id"]
    assert _run(["voices", "reanalyse", "vp_none"], tmp_path).returncode == 1

    removed = _run(["voices", "rm", voice["voice_id"]], tmp_path)
    assert removed.returncode == 0 and json.loads(removed.stdout)["status"] == "deleted"
    assert json.loads(_run(["voices", "list", "--json"], tmp_path).stdout) == []
    every = json.loads(_run(["voices", "list", "--all", "--json"], tmp_path).stdout)
    assert every[0]["status"] == "deleted"
    text = _run(["voices", "list", "--all"], tmp_path).stdout
    assert voice["voice_id"] in text and "(deleted)" in text


def test_voices_add_refuses_bad_audio_and_missing_consent(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    out = _run(["voices", "add", "X", str(bad), "--consent", "I agree to all of it."], tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].startswith("steadyvoice: error: reference_unreadable: ")
    ref = tmp_path / "ref.wav"
    ref.write_bytes(reference_wav())
    out = _run(["voices", "add", "X", str(ref), "--consent", " "], tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].startswith("steadyvoice: error: consent_missing: ")
    nope = tmp_path / "nope.wav"
    missing = _run(["voices", "add", "X", str(nope), "--consent", "x" * 20], tmp_path)
    assert missing.returncode == 2
    said = f"steadyvoice: error: file_not_found: No such file or directory: {nope}\n"
    assert missing.stderr == said
    gone = _run(["voices", "rm", "vp_none"], tmp_path)
    assert gone.returncode == 2 and "voice_not_found" in gone.stderr
