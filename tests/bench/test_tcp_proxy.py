"""bench/tcp_proxy.py against the real PostgreSQL server: forward, cut, refuse, restore."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from tcp_proxy import TcpProxy  # type: ignore[import-not-found]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as p:
        yield p


def url_through(proxy: TcpProxy, pg_admin_url: str) -> str:
    return pg_admin_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def test_forwards_then_cuts_open_connections_and_refuses_new_ones_until_restored(
    proxy: TcpProxy, pg_admin_url: str
) -> None:
    url = url_through(proxy, pg_admin_url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert proxy.cut() == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(url, connect_timeout=5)
    proxy.restore()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 2").fetchone() == (2,)
    assert proxy.connections == 2
