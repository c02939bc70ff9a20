"""A standalone worker's metrics dir has a predictable name: it is used only when this user
owns it alone (another user could have made it first, or a link to elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadyvoice.observability.worker_metrics import check_private
from steadyvoice.settings import ConfigurationError


def test_only_a_private_dir_of_our_own_is_used(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    check_private(private)

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    with pytest.raises(ConfigurationError, match="mode 0700"):
        check_private(shared)

    link = tmp_path / "link"
    link.symlink_to(private)
    with pytest.raises(ConfigurationError, match="not a directory"):
        check_private(link)
