"""The one retry loop of every request, and how long it waits between attempts.

Retries with exponential backoff and jitter on 429, 500, 502, 503, 504,
connection errors and timeouts; `Retry-After` (seconds or an HTTP date) is
honoured up to `MAX_RETRY_AFTER`. Other 4xx are never retried. A 429 closes the
service's shared gate (`backoff`) for its wait, so every caller waits it out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from langchain_core.exceptions import ModelError

from langchain_dynaspark.errors import DynasparkError, DynasparkRateLimitError
from langchain_dynaspark.transport.backoff import backoff_for
from langchain_dynaspark.transport.failures import (
    Refused,
    connection_error,
    not_http_error,
    timeout_error,
)
from langchain_dynaspark.transport.pools import Pool, pool_for
from langchain_dynaspark.transport.proxies import Proxy, proxy_for
from langchain_dynaspark.transport.settings import TransportSettings

__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "MAX_RETRY_AFTER", "with_retries"]

BACKOFF_BASE = 0.5
"""Seconds before the first retry; doubles each attempt, with jitter."""
BACKOFF_MAX = 20.0
"""Longest backoff between two attempts, in seconds."""
MAX_RETRY_AFTER = 60.0
"""Longest wait honoured from a `Retry-After` header, in seconds."""
_MAX_BACKOFF_EXPONENT = 32

T = TypeVar("T")


async def with_retries(
    settings: TransportSettings,
    attempt: Callable[[Pool, Proxy, int], Awaitable[T]],
) -> T:
    """The retry loop of every request: `attempt` until it returns, or gives up.

    `attempt` gets the pool, the proxy and its own number (from 1), and returns
    the answer or raises: `Refused` for a non-`200` answer, or aiohttp's and
    asyncio's own errors, which become typed errors here. Transient failures
    are retried with backoff, or after the service's `Retry-After`; a wait
    longer than `MAX_RETRY_AFTER` raises at once. A 429's wait (at most
    `MAX_RETRY_AFTER`) holds every caller of the service back (`Backoff.hold`),
    also when this call gives up.
    """
    backoff = backoff_for(settings.url)
    pool = await pool_for(settings.max_connections)
    proxy = await proxy_for(settings.url, settings.proxy)
    attempts = settings.max_retries + 1
    for tried in range(1, attempts + 1):
        retry_after: float | None = None
        try:
            return await attempt(pool, proxy, tried)
        except Refused as refused:
            error, retry_after = refused.error, refused.retry_after
        except asyncio.TimeoutError as exc:
            error = timeout_error(exc, settings, tried)
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise not_http_error(exc, settings) from None
        except aiohttp.ClientError as exc:
            error = connection_error(exc, settings, tried, proxy=proxy[0])
        wait = _wait_before_retry(retry_after, tried)
        if isinstance(error, DynasparkRateLimitError):
            # Every caller waits, even when this one gives up (at most
            # `MAX_RETRY_AFTER`: a longer wait is the caller's to choose).
            wait = backoff.hold(wait)
        if tried == attempts or not _retryable(error) or _wait_too_long(retry_after):
            raise error
        await asyncio.sleep(wait)
    msg = "unreachable: the retry loop always returns or raises"
    raise AssertionError(msg)


def _retryable(error: DynasparkError) -> bool:
    """Whether `error` is transient: the `is_retryable` of `langchain_core`."""
    return isinstance(error, ModelError) and error.is_retryable


def _wait_too_long(retry_after: float | None) -> bool:
    """Whether the service asked for a longer wait than we retry after."""
    return retry_after is not None and retry_after > MAX_RETRY_AFTER


def _wait_before_retry(retry_after: float | None, attempt: int) -> float:
    """Seconds to wait after failed `attempt`: `Retry-After`, else backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    backoff = BACKOFF_BASE * 2.0 ** min(attempt - 1, _MAX_BACKOFF_EXPONENT)
    return min(BACKOFF_MAX, backoff) * random.uniform(0.5, 1.0)
