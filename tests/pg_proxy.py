"""A TCP proxy in front of the test's PostgreSQL, for tests that cut, stall and restore it."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from tcp_proxy import TcpProxy  # type: ignore[import-not-found]


def through(proxy: TcpProxy, pg_url: str) -> str:
    """``pg_url`` reached through ``proxy``."""
    url = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


__all__ = ["TcpProxy", "through"]
