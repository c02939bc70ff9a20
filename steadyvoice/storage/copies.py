"""Local copies of stored files, for code that needs a path (an engine reading a voice's
reference, a conversion decoding an output).

On the local backend the stored file is the copy. On S3 it is downloaded once into a cache
folder under its SHA-256 (content-addressed: a name can never hold stale bytes), checked
against that SHA-256 on the way in, and renamed into place only whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from steadyvoice.storage.backend import Storage
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage


class LocalCopies:
    """Paths to ``storage``'s files: the files themselves on disk, cached downloads else."""

    def __init__(self, storage: Storage, cache_dir: Path) -> None:
        self.storage = storage
        self.cache_dir = cache_dir

    def path(self, name: str, sha256: str) -> Path:
        """A local file holding ``name``, whose content is ``sha256``. Where the object is
        absent, or its bytes do not hash to ``sha256``, a path that does not exist: callers
        report the file missing, as they would on disk."""
        if isinstance(self.storage, LocalStorage):
            return self.storage.path(name)
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name.rpartition("/")[2] else ""
        copy = self.cache_dir / f"{sha256}{suffix}"
        if copy.is_file():
            return copy
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.cache_dir)  # 0600
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as fh:
                for block in self.storage.chunks(name):
                    digest.update(block)
                    fh.write(block)
            if digest.hexdigest() == sha256:
                os.replace(tmp, copy)
        except FileNotFoundError:
            pass
        finally:
            Path(tmp).unlink(missing_ok=True)
        return copy
