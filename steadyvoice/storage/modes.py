"""Who may read the service's files: the data dir is 0700, the database, keys and audio 0600.

Job texts, consent statements and key hashes live in the database, so another local user must
not be able to read it. New files and folders are made private here; existing ones are never
changed behind the operator's back, but ``serve`` and ``verify`` name each one that others
can read, with the command that fixes it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from steadyvoice.settings import Settings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class LooseMode:
    """A file or folder that users other than the service's own may reach."""

    path: Path
    mode: int
    wanted: int

    def __str__(self) -> str:
        return (
            f"{self.path} is {self.mode:04o}, readable by other users; want {self.wanted:04o} "
            f"(chmod {self.wanted:o} {self.path})"
        )


def make_private_dir(path: Path) -> None:
    """``mkdir -p``, the last folder 0700 if it is new (an existing one is left as it is)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (an empty file is a valid new
    SQLite database, whose -wal and -shm files SQLite then makes with the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def loose_mode(path: Path, wanted: int) -> LooseMode | None:
    """``path``'s mode if group or others have any access to it; ``None`` if not, or if
    ``path`` does not exist."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    return LooseMode(path, mode, wanted) if mode & _OTHERS & ~wanted else None


def loose_modes(settings: Settings, sqlite_path: Path | None) -> list[LooseMode]:
    """The data dir, the SQLite database and its side files (``sqlite_path``, if the store is
    SQLite) and the first admin key, where others may read them."""
    wanted = [(settings.data_dir, PRIVATE_DIR), (settings.resolved_admin_key_file, PRIVATE_FILE)]
    if sqlite_path is not None:
        wanted.append((sqlite_path, PRIVATE_FILE))
        wanted += [(Path(f"{sqlite_path}{s}"), PRIVATE_FILE) for s in SQLITE_SIDE_FILES]
    found = (loose_mode(path, mode) for path, mode in wanted)
    return [loose for loose in found if loose is not None]
