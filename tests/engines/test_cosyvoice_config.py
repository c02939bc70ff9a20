"""The cosyvoice engine's settings, refusals at start, version, and torch-free import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from cosyvoice_standin import REPO, engine_for, make_model_dir, set_faults  # type: ignore[import-not-found]
from pydantic import ValidationError

from steadyvoice.engines.cosyvoice import HASH_CACHE
from steadyvoice.engines.registry import build_engine
from steadyvoice.errors import EngineUnavailable
from steadyvoice.settings import ConfigurationError, CosyVoiceSettings, Settings


def test_the_registry_builds_it_from_settings(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "model")
    settings = Settings(
        data_dir=tmp_path / "data",
        engine="cosyvoice",
        cosyvoice={"model_dir": model, "repo_dir": REPO},
    )
    engine = build_engine(settings)
    assert engine.name == "cosyvoice"
    assert engine.version(engine.default_voice()).startswith("cosyvoice3+")
    assert (tmp_path / "data" / "cache" / HASH_CACHE).is_file()


@pytest.mark.parametrize(
    ("model_dir", "match"),
    [
        (None, "MODEL_DIR"),
        (Path("FunAudioLLM/Fun-CosyVoice3-0.5B-2512"), "never downloads"),
    ],
)
def test_no_model_dir_or_a_hub_id_is_refused(model_dir: Path | None, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        engine_for(model_dir)  # type: ignore[arg-type]


def test_cosyvoice_v1_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "v1"
    model.mkdir()
    (model / "cosyvoice.yaml").write_text("", "utf-8")
    with pytest.raises(ConfigurationError, match="v1"):
        engine_for(model)


def test_fp16_tensorrt_on_cosyvoice3_is_refused_but_allowed_on_cosyvoice2(tmp_path: Path) -> None:
    v3 = make_model_dir(tmp_path / "v3", 3)
    (v3 / "flow.decoder.estimator.fp32.onnx").write_bytes(b"onnx")
    with pytest.raises(ConfigurationError, match="NaN or silent"):
        engine_for(v3, fp16=True, load_trt=True)
    engine_for(v3, load_trt=True)  # fp32 TensorRT is fine
    v2 = make_model_dir(tmp_path / "v2", 2)
    (v2 / "flow.decoder.estimator.fp32.onnx").write_bytes(b"onnx")
    engine_for(v2, fp16=True, load_trt=True)


def test_tensorrt_without_its_onnx_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="estimator"):
        engine_for(make_model_dir(tmp_path / "m"), load_trt=True)


def test_vllm_is_never_reproducible() -> None:
    with pytest.raises(ValidationError, match="reproducible"):
        CosyVoiceSettings(load_vllm=True)
    assert CosyVoiceSettings(load_vllm=True, reproducible=False).load_vllm


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_only_flags_are_refused_without_a_gpu(tmp_path: Path) -> None:
    """Upstream would silently drop them on CPU, and the engine version would lie."""
    engine = engine_for(make_model_dir(tmp_path / "m", 2), fp16=True)
    with pytest.raises(EngineUnavailable, match="CUDA"):
        engine.load()


def test_an_upstream_too_old_for_prompt_paths_is_refused(tmp_path: Path) -> None:
    engine = engine_for(make_model_dir(tmp_path / "m", faults={"legacy_interface": True}))
    with pytest.raises(EngineUnavailable, match="622a3a1"):
        engine.load()


def test_a_changed_model_file_changes_the_version(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    engine = engine_for(model, tmp_path / "cache")
    before = engine.version("clone")
    assert engine.version("clone") == before
    weights = model / "flow.pt"
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[10] ^= 1  # same size; the old mtime is put back below
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = engine.version("clone")
    assert after != before
    fresh = engine_for(model, tmp_path / "cache")  # a new process reading the hash cache
    assert fresh.version("clone") == after
    weights.write_bytes(weights.read_bytes().replace(b"flow", b"FLOW"))
    assert fresh.version("clone") not in (before, after)


def test_files_upstream_generates_at_start_do_not_change_the_version(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    engine = engine_for(model)
    before = engine.version("clone")
    (model / "flow.decoder.estimator.fp32.mygpu.plan").write_bytes(b"plan")
    (model / "vllm").mkdir()
    (model / "vllm" / "model.safetensors").write_bytes(b"export")
    (model / ".mdl").write_bytes(b"hub metadata")
    assert engine.version("clone") == before


def test_a_changed_upstream_checkout_changes_the_version(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    engine = engine_for(make_model_dir(tmp_path / "m"), repo_dir=repo)
    before = engine.version("clone")
    common = repo / "cosyvoice" / "utils" / "common.py"
    common.write_text(common.read_text("utf-8") + "\n# patched\n", "utf-8")
    assert engine.version("clone") != before


@pytest.mark.parametrize(
    "change",
    [
        {"reproducible": False},
        {"text_frontend": False},
        {"max_segment_chars": 150},
    ],
)
def test_settings_that_change_the_audio_change_the_version(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    model = make_model_dir(tmp_path / "m")
    assert engine_for(model, **change).version("clone") != engine_for(model).version("clone")


def test_profile_jobs_name_the_prompt_in_the_version(tmp_path: Path) -> None:
    engine = engine_for(make_model_dir(tmp_path / "m"))
    assert engine.version("clone", adapted=True) == engine.version("clone") + "+prompt"


def test_importing_and_building_the_engine_stays_torch_free(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "m")
    set_faults(model, {})
    script = f"""
import json, sys
from steadyvoice.engines.registry import build_engine
from steadyvoice.settings import Settings
import steadyvoice.engines.cosyvoice
settings = Settings(data_dir={str(tmp_path / "data")!r}, engine="cosyvoice",
                    cosyvoice={{"model_dir": {str(model)!r}, "repo_dir": {str(REPO)!r}}})
engine = build_engine(settings)
version = engine.version(engine.default_voice(), adapted=True)
print(json.dumps({{"heavy": sorted(m for m in ("torch", "torchaudio", "cosyvoice")
                                   if m in sys.modules), "version": version}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == [] and "+model-" in result["version"]
