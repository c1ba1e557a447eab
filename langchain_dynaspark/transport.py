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
  Messages quote the service's own words but not the prompt, and never a
  password from `base_url` or `proxy`.
- Proxies: `proxy`, else `HTTP(S)_PROXY`/`NO_PROXY` from the environment, looked
  up once per URL and again only when one of those variables changes. (Letting
  aiohttp read the environment, `trust_env`, costs two worker-thread round trips
  and a `~/.netrc` read per request: about as much CPU as all the rest of a call.)
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ipaddress
import math
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
from urllib.parse import unquote, urlencode, urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from langchain_core.exceptions import ModelError
from yarl import URL

from langchain_dynaspark._version import __version__
from langchain_dynaspark.errors import (
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkImageError,
    DynasparkInputError,
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
BACKOFF_BASE = 0.5
"""Seconds before the first retry; doubles each attempt, with jitter."""
BACKOFF_MAX = 20.0
"""Longest backoff between two attempts, in seconds."""
MAX_RETRY_AFTER = 60.0
"""Longest wait honoured from a `Retry-After` header, in seconds."""

_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
_PROMPT_FIELD = "user_input"
_MAX_BACKOFF_EXPONENT = 32
_SHUTDOWN_TIMEOUT = 5.0

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
    proxy, proxy_auth = await _proxy_for(settings.url, settings.proxy)
    prompt = fields.get(_PROMPT_FIELD)
    attempts = settings.max_retries + 1
    for attempt in range(1, attempts + 1):
        retry_after: float | None = None
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
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                body = await response.read()
                if response.status == 200:
                    return body
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                said = server_message(body, prompt=prompt)
                error: DynasparkError = _status_error(
                    response.status, retry_after, said, settings, attempt
                )
        except asyncio.TimeoutError as exc:
            error = _timeout_error(exc, settings, attempt)
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            msg = (
                f"Cannot send a request to {_scrub(str(exc), settings)!r}: it is not "
                "an http(s) URL. Check `base_url` and `path`."
            )
            raise DynasparkInputError(msg) from None
        except aiohttp.ClientError as exc:
            error = _connection_error(exc, settings, attempt, proxy=proxy)
        if attempt == attempts or not _retryable(error):
            raise error
        await asyncio.sleep(_wait_before_retry(retry_after, attempt))
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
        proxy, proxy_auth = await _proxy_for(url, settings.proxy)
        async with session.get(
            url,
            timeout=timeout,
            proxy=proxy,
            proxy_auth=proxy_auth,
            headers=_HEADERS,
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
        said = str(exc).replace(url, host)
        msg = f"Downloading an image from {host} failed: {type(exc).__name__}: {said}."
        raise DynasparkImageError(msg) from None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the private background loop and wait for its result.

    Safe to call from any thread, including one whose event loop is running.
    If the wait is interrupted (e.g. `KeyboardInterrupt`), the coroutine is
    cancelled.
    """
    loop = _background.loop()
    # The future exists before anything is scheduled, so an interrupt at any
    # point below (even inside the scheduling call) can still cancel the work.
    result: concurrent.futures.Future[T] = concurrent.futures.Future()
    try:
        loop.call_soon_threadsafe(_start, coro, result)
        return result.result()
    except BaseException:
        result.cancel()
        raise


def _start(coro: Coroutine[Any, Any, T], result: concurrent.futures.Future[T]) -> None:
    """On the background loop: run `coro` as a task that reports to `result`.

    Cancelling `result` (from any thread) cancels the task; a `result`
    cancelled before this runs means the coroutine never starts.
    """
    if result.cancelled():
        coro.close()
        return
    task = asyncio.ensure_future(coro)
    loop = task.get_loop()

    def cancel_task(done: concurrent.futures.Future[T]) -> None:
        if done.cancelled():
            loop.call_soon_threadsafe(task.cancel)

    def report(task: asyncio.Future[T]) -> None:
        if task.cancelled():
            result.cancel()
            return
        error = task.exception()
        if not result.set_running_or_notify_cancel():
            return
        if error is None:
            result.set_result(task.result())
        else:
            result.set_exception(error)

    result.add_done_callback(cancel_task)
    task.add_done_callback(report)


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


_PROXY_ENVIRONMENT = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
)
"""The variables that decide the proxy for an http(s) URL (`urllib.request`)."""
_MAX_ENV_PROXIES = 64
_env_proxies: dict[tuple[str | None, ...], tuple[URL | None, aiohttp.BasicAuth | None]]
_env_proxies = {}


async def _proxy_for(
    url: str, proxy: str | None
) -> tuple[str | URL | None, aiohttp.BasicAuth | None]:
    """The proxy for `url`, and its credentials: `proxy`, else the environment's.

    The environment's answer (`HTTP(S)_PROXY`, `NO_PROXY`, proxy credentials
    from `~/.netrc`) is the one aiohttp's `trust_env` gives, looked up on a
    worker thread once and kept until one of the variables changes.
    """
    if proxy is not None:
        return proxy, None
    key = (url, *map(os.environ.get, _PROXY_ENVIRONMENT))
    found = _env_proxies.get(key)
    if found is None:
        found = await asyncio.to_thread(_env_proxy, url)
        if len(_env_proxies) >= _MAX_ENV_PROXIES:
            _env_proxies.clear()
        _env_proxies[key] = found
    return found


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    try:
        return get_env_proxy_for_url(URL(url))
    except (LookupError, ValueError):
        return None, None


def _retryable(error: DynasparkError) -> bool:
    """Whether `error` is transient: the `is_retryable` of `langchain_core`."""
    return isinstance(error, ModelError) and error.is_retryable


def _wait_before_retry(retry_after: float | None, attempt: int) -> float:
    """Seconds to wait after failed `attempt`: `Retry-After`, else backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    backoff = BACKOFF_BASE * 2.0 ** min(attempt - 1, _MAX_BACKOFF_EXPONENT)
    return min(BACKOFF_MAX, backoff) * random.uniform(0.5, 1.0)


def _attempts(attempt: int) -> str:
    return f"{attempt} attempt{'s' if attempt > 1 else ''}"


def _status_error(
    status: int,
    retry_after: float | None,
    said: str | None,
    settings: TransportSettings,
    attempt: int,
) -> DynasparkError:
    said_part = f" The service said: {said}." if said else ""
    if status == 429:
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
        when = f"{retry_after:g} s" if retry_after is not None else "a minute"
        msg = (
            f"Dynaspark failed with HTTP {status} after {_attempts(attempt)}."
            f"{said_part} Its free host sleeps when idle and may answer 502/503 "
            f"while waking: retry in {when}, or raise `max_retries`."
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
        msg = (
            f"Could not connect to Dynaspark at {_where(settings.url)} within "
            f"connect_timeout={settings.connect_timeout} s ({_attempts(attempt)}). "
            "Check the network and any proxy settings, or raise `connect_timeout`."
        )
    else:
        msg = (
            f"Dynaspark did not answer within timeout={settings.timeout} s "
            f"({_attempts(attempt)}). The service sleeps when idle and its first "
            "answer can take a minute: raise `timeout`, or retry."
        )
    return DynasparkTimeoutError(msg)


def _connection_error(
    exc: aiohttp.ClientError,
    settings: TransportSettings,
    attempt: int,
    *,
    proxy: str | URL | None = None,
) -> DynasparkConnectionError:
    msg = (
        f"Could not talk to Dynaspark at {_where(settings.url)} "
        f"({type(exc).__name__}: {_scrub(str(exc), settings)}) after "
        f"{_attempts(attempt)}. Check the network, `base_url` and any proxy "
        f"settings, then retry.{_proxy_hint(settings, proxy)}"
    )
    return DynasparkConnectionError(msg)


def _proxy_hint(settings: TransportSettings, proxy: str | URL | None) -> str:
    """Why a request to a local server failed through a proxy, and the fix."""
    if proxy is None or not _is_loopback(urlsplit(settings.url).hostname):
        return ""
    if settings.proxy is not None:
        return (
            " This loopback address was asked through `proxy`, and a proxy "
            "usually cannot reach a local server: leave `proxy` unset for it."
        )
    return (
        " This loopback address was asked through the proxy in HTTP(S)_PROXY, "
        "and a proxy usually cannot reach a local server: add the host to "
        "NO_PROXY (NO_PROXY=127.0.0.1,localhost)."
    )


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return host is not None
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _where(url: str) -> str:
    """`host[:port]` of `url`, without the credentials it may carry."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _scrub(text: str, settings: TransportSettings) -> str:
    """`text` without the credentials in the service or proxy URL."""
    for url in (settings.url, settings.proxy):
        if url is None:
            continue
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        password = userinfo.partition(":")[2]
        for secret in (userinfo, password, unquote(password)):
            if secret:
                text = text.replace(secret, "***")
    return text


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date).

    `None` when the header is missing or unreadable; a date in the past is `0`.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[None]]
] = weakref.WeakKeyDictionary()
_sessions_lock = threading.Lock()
_inherited: list[object] = []


async def _session() -> aiohttp.ClientSession:
    """The pooled session of the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    session = aiohttp.ClientSession()
    closer = _close_at_loop_shutdown(loop, session)
    with _sessions_lock:
        for closed in [other for other in _sessions if other.is_closed()]:
            del _sessions[closed]
        _sessions[loop] = (session, closer)
    await anext(closer)
    return session


async def _close_at_loop_shutdown(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncIterator[None]:
    """Close `session` when `loop` shuts down its async generators.

    The loop tracks this generator from its first step; `asyncio.run`,
    `asyncio.Runner` and our background loop all finalise tracked generators
    before closing, which runs the `finally` below on the session's own loop.
    It also forgets the session: the entry refers to its loop, which would
    otherwise never be freed. (A loop closed without that shutdown cannot close
    its session; the entry is dropped when the next session is made.)
    """
    try:
        yield
    finally:
        with _sessions_lock:
            entry = _sessions.get(loop)
            if entry is not None and entry[0] is session:
                del _sessions[loop]
        await session.close()


class _BackgroundLoop:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
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
                self._loop, self._thread = loop, thread
        return self._loop

    def shutdown(self) -> None:
        """Close the loop's sessions, then stop and close the loop.

        Used at interpreter exit. A loop that does not stop within
        `_SHUTDOWN_TIMEOUT` is left to die with its daemon thread.
        """
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            closing.result(timeout=_SHUTDOWN_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
            loop.close()

    def forget(self) -> None:
        """Drop the loop inherited across `fork`: its thread did not come along."""
        self._loop = self._thread = None
        self._lock = threading.Lock()


_background = _BackgroundLoop()
atexit.register(_background.shutdown)


def _after_fork_in_child() -> None:
    """Never reuse (or close) the parent's sessions in a forked child.

    They share the parent's sockets; closing them here could disturb the parent's
    connections. Keep them referenced so they are not finalised with warnings.
    A lock another thread held at the fork stays held in the child: replace it.
    """
    global _sessions_lock  # noqa: PLW0603
    _sessions_lock = threading.Lock()
    _inherited.extend(_sessions.items())
    _sessions.clear()
    _background.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
