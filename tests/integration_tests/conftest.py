"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from langchain_dynaspark.transport import backoff


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record each `asyncio.sleep` wait instead of waiting it.

    The shared back-off's clock sees the time as waited.
    """
    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def record(delay: float, result: Any = None) -> Any:
        if delay > 0:
            waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", record)
    monkeypatch.setattr(backoff, "monotonic", lambda: time.monotonic() + sum(waits))
    return waits
