"""Fixtures shared by the API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from speech_calls import Worker  # type: ignore[import-not-found]


@pytest.fixture
def worker_for() -> Iterator[Callable[[TestClient], Worker]]:
    """Stand-in workers (heartbeat kept) for a TestClient's app, closed after the test."""
    made: list[Worker] = []

    def make(client: TestClient) -> Worker:
        made.append(Worker(client))
        return made[-1]

    yield make
    for w in made:
        w.close()
