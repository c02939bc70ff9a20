#!/usr/bin/env bash
# Create the heavy environment for the CosyVoice contract suite (tests/contract/cosyvoice/,
# docs/engines/cosyvoice.md): upstream CosyVoice's inference code on the CPU. It is kept apart
# from the project's .venv (which must never carry torchaudio, transformers and friends).
# Usage: cosyvoice-env.sh [VENV]   (default .venv-cosyvoice); about 2 GB.
# What differs from upstream's requirements.txt, and why (each seen on a CPU-only host):
# - torch 2.13.0, the CPU build (pip takes it from this machine's disk where it lies there);
#   upstream pins 2.3.1.
# - torchaudio 2.11.1 without its dependencies and with its compiled lib/*.so removed: those are
#   CUDA builds that fail to load here, and what upstream uses of torchaudio (kaldi fbank,
#   resampling) is pure Python. torchaudio.load needs torchcodec (CUDA-only here): the suite
#   replaces it with a soundfile reader.
# - openai-whisper at upstream's pin (20231117), with --no-deps: only its log-mel is used, and its
#   dependencies would pull triton < 3, a CUDA package. It is an sdist whose build needs
#   pkg_resources, which setuptools 81 removed, hence the build constraint.
set -euo pipefail
venv="${1:-.venv-cosyvoice}"
py=python3.11
command -v "$py" >/dev/null 2>&1 || py=python3
if [ ! -x "$venv/bin/python" ]; then "$py" -m venv "$venv"; fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"$venv/bin/python" -m pip install -q --upgrade pip
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" --no-deps "torchaudio==2.11.1"
constraints="$(mktemp)"; trap 'rm -f "$constraints"' EXIT
echo 'setuptools<81' > "$constraints"
"${pip[@]}" --no-deps --build-constraint "$constraints" "openai-whisper==20231117"
"${pip[@]}" "torch==2.13.0" \
  "transformers==4.51.3" "diffusers==0.29.0" HyperPyYAML omegaconf einops x-transformers \
  conformer lightning hydra-core librosa inflect tiktoken modelscope onnx onnxruntime tokenizers \
  more-itertools numba tqdm rich pyarrow gdown wget matplotlib "setuptools<81"
# The project itself and what its test harness imports (tests/conftest.py).
"${pip[@]}" -e . "torch==2.13.0" "pytest>=8" "pytest-timeout>=2.3" "httpx>=0.27" "httpx2>=2.16" "hypothesis>=6.100"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -f "$site"/torchaudio/lib/*.so
"$venv/bin/python" -c 'import torch, torchaudio, transformers, whisper, onnxruntime; print("cosyvoice env ready: torch", torch.__version__, "torchaudio", torchaudio.__version__)'
