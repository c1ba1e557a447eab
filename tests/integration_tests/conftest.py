"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record each `asyncio.sleep` wait instead of waiting it."""
    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def record(delay: float, result: Any = None) -> Any:
        if delay > 0:
            waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", record)
    return waits
