"""Fixtures shared by the test folders: the real hub per backend, started once per run (per core)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from hub.composition import install
from tests.running_hub import Hub, running_hub


@pytest.fixture(scope="session", autouse=True)
def composed() -> None:
    """The domains wired together as create_app, the CLI and the worker wire them."""
    install()


class StartedHubs:
    """Each backend's hub, started when a test first asks for it and kept until the run ends.

    On both cores each core runs a module at a time, each module's tests on one backend after the
    other: kept, the hubs are started once per core, not once per module and backend.
    """

    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._stack, self._tmp_path_factory, self._hubs = stack, tmp_path_factory, dict[str, Hub]()

    def get(self, backend: str) -> Hub:
        if backend not in self._hubs:
            folder = self._tmp_path_factory.mktemp(f"hub-{backend}")
            self._hubs[backend] = self._stack.enter_context(running_hub(backend, folder))
        return self._hubs[backend]


@pytest.fixture(scope="session")
def started_hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartedHubs]:
    with ExitStack() as stack:
        yield StartedHubs(stack, tmp_path_factory)


@pytest.fixture(scope="session", params=["embedded", pytest.param("production", marks=pytest.mark.production)])
def hub(request: pytest.FixtureRequest, started_hubs: StartedHubs) -> Hub:
    """`rathaus serve --demo` on the embedded default, and on this machine's PostgreSQL and Redis."""
    return started_hubs.get(request.param)
