"""HTTP transport to Dynaspark: pooled sessions, retries, timeouts, typed errors.

- One `aiohttp.ClientSession` per event loop, created lazily on first use and
  reused by every `ChatDynaspark` on that loop, so a run of sequential calls
  shares one keep-alive connection. It is closed when its loop shuts down
  (`asyncio.run` and `asyncio.Runner` close it through the loop's async
  generator shutdown), and a session is never used on a loop other than its own.
- Sync calls run on one private background event loop (a daemon thread), never
  through `asyncio.run` and never on the caller's loop, so a sync `invoke` also
  works from code already running inside an event loop, such as a notebook cell.
- Retries with exponential backoff and jitter on 429, 500, 502, 503, 504,
  connection errors and timeouts; `Retry-After` (seconds or an HTTP date) is
  honoured up to `MAX_RETRY_AFTER`. Other 4xx are never retried.
- Every failure is raised as a typed `DynasparkError`, never returned as text.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from time import time
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp

from langchain_dynaspark._version import __version__
from langchain_dynaspark.errors import (
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkHTTPError,
    DynasparkImageError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkTimeoutError,
)
from langchain_dynaspark.reply import server_message

__all__ = [
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "TransportSettings",
    "Upload",
    "download",
    "post_form",
    "run_sync",
]

USER_AGENT = f"langchain-dynaspark/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
"""Seconds before the first retry; doubles each attempt, with jitter."""
BACKOFF_MAX = 20.0
"""Longest backoff between two attempts, in seconds."""
MAX_RETRY_AFTER = 60.0
"""Longest wait honoured from a `Retry-After` header, in seconds."""

_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}

T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    """One file for the form's `file` field."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class TransportSettings:
    """How to reach the service and how hard to try.

    Attributes:
        url: The full form URL, `{base_url}{path}`.
        timeout: Seconds one attempt may take in all, or `None` for no limit.
        connect_timeout: Seconds to open a connection, or `None` for no limit.
        max_retries: Retries after the first attempt (`0` means one attempt).
        proxy: An HTTP(S) proxy URL; `None` uses the `HTTP(S)_PROXY` environment.
    """

    url: str
    timeout: float | None
    connect_timeout: float | None
    max_retries: int
    proxy: str | None = None


async def post_form(
    settings: TransportSettings, fields: Mapping[str, str], upload: Upload | None
) -> bytes:
    """POST the form, retrying transient failures, and return a `200` body.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """
    session = await _session()
    timeout = _client_timeout(settings.timeout, settings.connect_timeout)
    attempts = settings.max_retries + 1
    for attempt in range(1, attempts + 1):
        if upload is None:
            data: Any = urlencode(fields).encode()
            headers = _FORM_HEADERS
        else:
            data = _multipart(fields, upload)
            headers = _HEADERS
        try:
            async with session.post(
                settings.url,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=settings.proxy,
            ) as response:
                body = await response.read()
                if response.status == 200:
                    return body
                error: DynasparkError = _status_error(
                    response.status, response.headers, body, settings, attempt
                )
        except asyncio.TimeoutError as exc:
            error = _timeout_error(exc, settings, attempt)
        except aiohttp.ClientError as exc:
            error = _connection_error(exc, settings, attempt)
        if attempt == attempts or not _retryable(error):
            raise error
        await asyncio.sleep(_wait_before_retry(error, attempt))
    msg = "unreachable: the retry loop always returns or raises"
    raise AssertionError(msg)


async def download(
    url: str, *, max_bytes: int, settings: TransportSettings
) -> tuple[bytes, str]:
    """Download `url` on the pooled session, refusing more than `max_bytes`.

    The cap is enforced while the body streams in, not after.

    Returns:
        The body and the `Content-Type` the server declared.

    Raises:
        DynasparkImageError: If the download fails, is too large or times out.
    """
    host = urlsplit(url).hostname or url
    timeout = _client_timeout(settings.timeout, settings.connect_timeout)
    session = await _session()
    try:
        async with session.get(
            url, timeout=timeout, proxy=settings.proxy, headers=_HEADERS
        ) as response:
            if response.status != 200:
                msg = (
                    f"Downloading an image from {host} failed: HTTP {response.status}."
                )
                raise DynasparkImageError(msg)
            if (response.content_length or 0) > max_bytes:
                raise DynasparkImageError(_too_large(host, max_bytes))
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > max_bytes:
                    raise DynasparkImageError(_too_large(host, max_bytes))
            return bytes(body), response.content_type
    except asyncio.TimeoutError:
        msg = (
            f"Downloading an image from {host} timed out after {settings.timeout} s. "
            "Download it yourself and pass the bytes as a base64 image block."
        )
        raise DynasparkImageError(msg) from None
    except aiohttp.ClientError as exc:
        msg = f"Downloading an image from {host} failed: {type(exc).__name__}: {exc}."
        raise DynasparkImageError(msg) from None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the private background loop and wait for its result.

    Safe to call from any thread, including one whose event loop is running.
    If the wait is interrupted (e.g. `KeyboardInterrupt`), the coroutine is
    cancelled.
    """
    future = asyncio.run_coroutine_threadsafe(coro, _background.loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def _too_large(host: str, max_bytes: int) -> str:
    return (
        f"The image at {host} is larger than max_image_download_bytes "
        f"({max_bytes} bytes). Raise the limit or send a smaller image."
    )


def _multipart(fields: Mapping[str, str], upload: Upload) -> aiohttp.FormData:
    form = aiohttp.FormData(fields)
    form.add_field(
        "file", upload.data, filename=upload.filename, content_type=upload.content_type
    )
    return form


@lru_cache(maxsize=32)
def _client_timeout(
    total: float | None, connect: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


def _retryable(error: DynasparkError) -> bool:
    if isinstance(error, DynasparkHTTPError):
        return error.status_code in RETRY_STATUSES
    return isinstance(error, DynasparkTimeoutError | DynasparkConnectionError)


def _wait_before_retry(error: DynasparkError, attempt: int) -> float:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(
        0.5, 1.0
    )


def _attempts(attempt: int) -> str:
    return f"{attempt} attempt{'s' if attempt > 1 else ''}"


def _status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    settings: TransportSettings,
    attempt: int,
) -> DynasparkError:
    said = server_message(body)
    said_part = f" The service said: {said}." if said else ""
    if status == 429:
        retry_after = _parse_retry_after(headers.get("Retry-After"))
        wait = f"Wait {retry_after:g} s" if retry_after is not None else "Wait"
        msg = (
            f"Dynaspark rate limit hit (HTTP 429) after {_attempts(attempt)}."
            f"{said_part} {wait} before calling again, space calls out with a "
            "`rate_limiter`, or raise `max_retries`."
        )
        return DynasparkRateLimitError(
            msg, server_message=said, retry_after=retry_after
        )
    if status >= 500:
        msg = (
            f"Dynaspark failed with HTTP {status} after {_attempts(attempt)}."
            f"{said_part} Its free host sleeps when idle and may answer 502/503 "
            "while waking: retry in a minute, or raise `max_retries`."
        )
        return DynasparkAPIError(msg, status_code=status, server_message=said)
    if status == 404:
        msg = (
            f"Dynaspark answered 404 Not Found at {urlsplit(settings.url).path}."
            f"{said_part} The form path may have moved: set `path=` (or "
            "`base_url=`) to where the service answers now."
        )
        return DynasparkNotFoundError(msg, status_code=status, server_message=said)
    hint = (
        " The upload is too large: send a smaller image or a shorter prompt."
        if status == 413
        else " Check the model name and the input."
    )
    msg = f"Dynaspark rejected the request with HTTP {status}.{said_part}{hint}"
    return DynasparkInvalidRequestError(msg, status_code=status, server_message=said)


def _timeout_error(
    exc: asyncio.TimeoutError, settings: TransportSettings, attempt: int
) -> DynasparkTimeoutError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        what = f"connect within connect_timeout={settings.connect_timeout} s"
    else:
        what = f"answer within timeout={settings.timeout} s"
    msg = (
        f"Dynaspark did not {what} ({_attempts(attempt)}). The service sleeps "
        "when idle and its first answer can take a minute: raise the timeout, "
        "or retry."
    )
    return DynasparkTimeoutError(msg)


def _connection_error(
    exc: aiohttp.ClientError, settings: TransportSettings, attempt: int
) -> DynasparkConnectionError:
    host = urlsplit(settings.url).netloc
    msg = (
        f"Could not talk to Dynaspark at {host} ({type(exc).__name__}: {exc}) "
        f"after {_attempts(attempt)}. Check the network, `base_url` and any "
        "proxy settings, then retry."
    )
    return DynasparkConnectionError(msg)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[None]]
] = weakref.WeakKeyDictionary()
_inherited: list[object] = []


async def _session() -> aiohttp.ClientSession:
    """The pooled session of the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    session = aiohttp.ClientSession(trust_env=True)
    closer = _close_at_loop_shutdown(session)
    _sessions[loop] = (session, closer)
    await anext(closer)
    return session


async def _close_at_loop_shutdown(
    session: aiohttp.ClientSession,
) -> AsyncIterator[None]:
    """Close `session` when its loop shuts down its async generators.

    The loop tracks this generator from its first step; `asyncio.run`,
    `asyncio.Runner` and our background loop all finalise tracked generators
    before closing, which runs the `finally` below on the session's own loop.
    """
    try:
        yield
    finally:
        await session.close()


class _BackgroundLoop:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="langchain-dynaspark", daemon=True
                )
                thread.start()
                self._loop = loop
        return self._loop

    def shutdown(self) -> None:
        """Close the loop's sessions and stop it; used at interpreter exit."""
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        done = asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop)
        try:
            done.result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    def forget(self) -> None:
        """Drop the loop inherited across `fork`: its thread did not come along."""
        self._loop = None
        self._lock = threading.Lock()


_background = _BackgroundLoop()
atexit.register(_background.shutdown)


def _after_fork_in_child() -> None:
    """Never reuse (or close) the parent's sessions in a forked child.

    They share the parent's sockets; closing them here could disturb the parent's
    connections. Keep them referenced so they are not finalised with warnings.
    """
    _inherited.extend(_sessions.items())
    _sessions.clear()
    _background.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
