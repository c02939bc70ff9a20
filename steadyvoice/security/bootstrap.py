"""First start: with no keys at all, make an admin key and leave it in a 0600 file."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

from steadyvoice.security.keys import KeyStore
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.security")


def ensure_admin_key(keys: KeyStore, settings: Settings) -> Path | None:
    """Make the first admin key if there is none; return the file it was written to."""
    if not settings.security.bootstrap_admin_key:
        return None
    issued = keys.create_first_admin(by=f"bootstrap:{_user()}")
    if issued is None:
        return None
    path = settings.resolved_admin_key_file
    write_private(path, issued.token + "\n")
    log.warning(
        "created the first admin API key in %s (mode 0600); it is shown nowhere else",
        path,
        extra={"event": "security.admin_key_created", "key_id": issued.record.id},
    )
    return path


def write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (0600 from the first byte), replacing any old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
