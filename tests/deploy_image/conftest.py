"""The real image, built by ``make test-deploy`` (deploy/docker/build-image.sh) and named by
STEADYVOICE_TEST_IMAGE; these tests run it with Docker. pyproject's addopts keep this folder
out of the default run (``--ignore=tests/deploy_image``); ``make test-deploy`` runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from docker_containers import Container, docker, wait_healthy  # type: ignore[import-not-found]


@pytest.fixture(scope="session")
def image() -> str:
    name = os.environ.get("STEADYVOICE_TEST_IMAGE")
    if not name:
        pytest.fail("STEADYVOICE_TEST_IMAGE is unset: run these with `make test-deploy`")
    docker("image", "inspect", name)
    return name


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    running = Container(image)
    try:
        wait_healthy(running.name)
        yield running
    finally:
        running.remove()
