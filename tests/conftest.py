"""Shared test setup: socket policy and the local Dynaspark server.

Unit tests run with sockets disabled (`--disable-socket` in pyproject). Tests
under `integration_tests/` may connect to 127.0.0.1 only, where the local
server runs; with `DYNASPARK_LIVE=1` they may reach the real service instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_dynaspark.endpoints import gone
from langchain_dynaspark.testing.server import DynasparkTestServer
from langchain_dynaspark.transport import backoff

LIVE = os.environ.get("DYNASPARK_LIVE") == "1"
LIVE_BASE_URL = os.environ.get("DYNASPARK_BASE_URL", "https://dynaspark.onrender.com")
_INTEGRATION = Path(__file__).parent / "integration_tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION in Path(str(item.path)).parents:
            marker = (
                pytest.mark.enable_socket
                if LIVE
                else pytest.mark.allow_hosts(["127.0.0.1"])
            )
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def fresh_backoff() -> Iterator[None]:
    """Each test starts with no back-off learned from another's 429s.

    The back-off is shared by every caller in the process, and every test talks
    to the same local server.
    """
    backoff.reset()
    yield
    backoff.reset()


@pytest.fixture(autouse=True)
def _no_surface_remembered_as_gone() -> Iterator[None]:
    """Each test starts with no surface remembered as gone (nor as answered)."""
    gone.forget()
    yield
    gone.forget()


def _restore(server: DynasparkTestServer) -> None:
    server.reset()
    server.gone.clear()
    server.api_key = None


@pytest.fixture(scope="session")
def dynaspark_server() -> Iterator[DynasparkTestServer]:
    """One local server for the whole run."""
    with DynasparkTestServer() as server:
        yield server


@pytest.fixture
def server(dynaspark_server: DynasparkTestServer) -> Iterator[DynasparkTestServer]:
    """The local server, reset for this test. Skipped in live runs: it scripts."""
    if LIVE:
        pytest.skip("scripts the local server; not meaningful against the live service")
    _restore(dynaspark_server)
    yield dynaspark_server
    _restore(dynaspark_server)


@pytest.fixture
def base_url(dynaspark_server: DynasparkTestServer) -> str:
    """Where integration tests send requests: the local server, or live."""
    return LIVE_BASE_URL if LIVE else dynaspark_server.url
