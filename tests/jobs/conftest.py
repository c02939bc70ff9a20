"""Fixtures shared by the job tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_proxy import TcpProxy  # type: ignore[import-not-found]
from sqlalchemy.engine import make_url


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    """A proxy the test can cut, stall and restore, in front of ``pg_url``'s server."""
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p
