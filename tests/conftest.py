"""Fixtures shared by the test folders: the real hub per backend, started once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.composition import install
from tests.running_hub import Hub, running_hub


@pytest.fixture(scope="session", autouse=True)
def composed() -> None:
    """The domains wired together as create_app, the CLI and the worker wire them."""
    install()


@pytest.fixture(scope="session", params=["embedded", pytest.param("production", marks=pytest.mark.production)])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """`rathaus serve --demo` on the embedded default, and on this machine's PostgreSQL and Redis."""
    backend = request.param
    with running_hub(backend, tmp_path_factory.mktemp(f"hub-{backend}")) as started:
        yield started
