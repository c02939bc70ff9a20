"""Batch fixtures: an in-process API (fake engine, no worker)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def batch_client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


@pytest.fixture
def fast_client(client_factory: Callable[..., TestClient]) -> Iterator[TestClient]:
    """A client whose data (database, outputs) lives in memory (/dev/shm where there is one):
    every job's fsyncs cost nothing, so hundreds of items run in seconds. 8 kHz audio keeps
    the archives small."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="sv-batch-", dir=shm if shm.is_dir() else None))
    try:
        yield client_factory(data_dir=root / "data", fake={"sample_rate": 8000})
    finally:
        shutil.rmtree(root, ignore_errors=True)
