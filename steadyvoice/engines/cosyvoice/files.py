"""Content hashes of a model directory and of upstream's code, for the engine version.

A CosyVoice model directory holds several GB. Each file's SHA-256 is remembered by its identity
and stat (path, inode, size, mtime and ctime, which no user can set back), in memory and in a
small JSON file, so a worker that starts again does not read the weights twice; any write to a
file changes its ctime and makes it hashed afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path

# Written into the model dir by upstream on first start, from files that are hashed already:
# the TensorRT plan (from flow.decoder.estimator.fp32.onnx) and the vLLM export (from llm.pt).
GENERATED_DIRS = frozenset({"vllm", "__pycache__"})
GENERATED_SUFFIXES = (".plan",)

FileFilter = Callable[[Path], bool]


def is_model_file(path: Path) -> bool:
    """Every weight, config and tokenizer file; not hidden hub metadata nor generated files."""
    return not path.name.startswith(".") and not path.name.endswith(GENERATED_SUFFIXES)


def is_code_file(path: Path) -> bool:
    return path.suffix in (".py", ".yaml", ".json", ".txt")


class FileHashes:
    """SHA-256 of files and of whole trees, cached by stat; thread-safe."""

    def __init__(self, cache_file: Path | None = None) -> None:
        self._cache_file = cache_file
        self._known: dict[str, str] = self._read_cache()
        self._lock = threading.Lock()

    def tree(self, root: Path, keep: FileFilter) -> str:
        """One digest over every kept file's relative path and content hash, in sorted order."""
        digest = hashlib.sha256()
        changed = False
        for path in sorted(_walk(root, keep)):
            file_hash, fresh = self._file(path)
            changed = changed or fresh
            digest.update(f"{path.relative_to(root).as_posix()}\0{file_hash}\n".encode())
        if changed:
            self._write_cache()
        return digest.hexdigest()

    def _file(self, path: Path) -> tuple[str, bool]:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known, False
        with path.open("rb") as handle:
            value = hashlib.file_digest(handle, "sha256").hexdigest()
        with self._lock:
            self._known[key] = value
        return value, True

    def _read_cache(self) -> dict[str, str]:
        if self._cache_file is None:
            return {}
        try:
            data = json.loads(self._cache_file.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _write_cache(self) -> None:
        """Best effort: a cache that cannot be written only costs hashing again next start."""
        if self._cache_file is None:
            return
        with self._lock:
            data = json.dumps(self._known, sort_keys=True)
        tmp = self._cache_file.with_name(f"{self._cache_file.name}.{os.getpid()}.tmp")
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(data, "utf-8")
            tmp.replace(self._cache_file)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _walk(root: Path, keep: FileFilter) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in GENERATED_DIRS]
        for name in files:
            path = Path(folder) / name
            if path.is_file() and keep(path):
                yield path


def runtime_label(dists: list[str]) -> str:
    """``name-version`` of each installed distribution, joined with ``+``."""
    # A local version label ("2.3.1+cu121") keeps its meaning without the "+" we join with.
    return "+".join(f"{d}-{v.replace('+', '_')}" for d in dists if (v := _installed(d)) is not None)


def _installed(dist: str) -> str | None:
    try:
        return dist_version(dist)
    except PackageNotFoundError:
        return None
