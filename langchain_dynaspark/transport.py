"""HTTP transport to Dynaspark: pooled sessions, retries, timeouts, typed errors.

- One `aiohttp.ClientSession` per event loop (and `max_connections`), created
  lazily on first use and reused by every `ChatDynaspark` on that loop, so a run
  of sequential calls shares one keep-alive connection. It is closed when its
  loop shuts down (`asyncio.run` and `asyncio.Runner` close it through the loop's
  async generator shutdown); the session of a loop closed without that shutdown
  is dropped quietly when the next session is made, or at exit. A session is
  never used on a loop other than its own, nor closed by a forked child.
- Stateless: the session keeps no cookies, so nothing one request is told
  reaches another caller's request (or an image download).
- At most `max_connections` requests are in flight per pool; a request waits
  for a free slot first, and its `timeout` starts once it has one.
- Redirects: 307/308 are followed with the form (at most `MAX_REDIRECTS`);
  301/302/303, which would turn the POST into a GET without the form, raise a
  `DynasparkRedirectError` naming the new location.
- A body larger than `max_response_bytes` is refused while it streams in. A
  body in another charset than UTF-8 is handed on as UTF-8.
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
import queue
import random
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from time import time
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, unquote, urlencode, urlsplit

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
    DynasparkRedirectError,
    DynasparkResponseTooLargeError,
    DynasparkTimeoutError,
)
from langchain_dynaspark.redact import scrub_url
from langchain_dynaspark.reply import server_message

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_REDIRECTS",
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "Answer",
    "Decoder",
    "TransportSettings",
    "Upload",
    "check_encodable",
    "download",
    "get",
    "iterate_sync",
    "post_form",
    "run_sync",
    "stream_get",
]

USER_AGENT = f"langchain-dynaspark/{__version__}"
BACKOFF_BASE = 0.5
"""Seconds before the first retry; doubles each attempt, with jitter."""
BACKOFF_MAX = 20.0
"""Longest backoff between two attempts, in seconds."""
MAX_RETRY_AFTER = 60.0
"""Longest wait honoured from a `Retry-After` header, in seconds."""
DEFAULT_MAX_CONNECTIONS = 10
"""Requests in flight at once per pool: the service's free tier allows 10."""
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest answer body read, in bytes: far beyond any text reply."""
MAX_REDIRECTS = 5
"""Most 307/308 redirects followed for one attempt."""

_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_STREAM_HEADERS = {**_HEADERS, "Accept": "text/event-stream, application/json"}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
_PROMPT_FIELD = "user_input"
_MAX_BACKOFF_EXPONENT = 32
_SHUTDOWN_TIMEOUT = 5.0
_MAX_ERROR_BODY = 64 * 1024
"""Most bytes of an error answer read: enough for the service's message."""
_KEPT_REDIRECTS = frozenset({307, 308})
_LOST_REDIRECTS = frozenset({301, 302, 303})
"""Redirects after which a client sends a GET, without the form."""

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_UNIX_TIME = 1e9
"""An `X-RateLimit-Reset` at least this large is a Unix time, not seconds."""


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
        secrets: Values (such as an API key) that no error message may show.
        not_found_hint: What a 404 error message tells the user to do.
        max_response_bytes: Largest answer body read, in bytes.
        max_connections: Requests in flight at once on the pool this uses.
    """

    url: str
    timeout: float | None
    connect_timeout: float | None
    max_retries: int
    proxy: str | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    secrets: tuple[str, ...] = ()
    not_found_hint: str = (
        "The form path may have moved: set `path=` (or `base_url=`) to where the "
        "service answers now."
    )


@dataclass(frozen=True)
class Answer:
    """A `200` answer: its headers and, unless streamed, its body."""

    headers: Mapping[str, str]
    content_type: str
    body: bytes = b""


class Decoder(Protocol[T_co]):
    """Turns a streamed body, read by read, into items (e.g. events)."""

    def feed(self, chunk: bytes) -> Iterable[T_co]:
        """Take the next read of the body; return the items it completes."""
        ...

    def end(self) -> Iterable[T_co]:
        """The body has ended; return the items still pending."""
        ...


async def post_form(
    settings: TransportSettings, fields: Mapping[str, str], upload: Upload | None
) -> bytes:
    """POST the form, retrying transient failures, and return a `200` body.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """
    check_encodable(fields)
    timeout = _client_timeout(settings.timeout, settings.connect_timeout)
    prompt = fields.get(_PROMPT_FIELD)

    async def attempt(pool: _Pool, proxy: _Proxy, tried: int) -> bytes:
        url = settings.url
        # The timeout starts inside: a request waiting for a slot has not left.
        async with pool.slots:
            for _ in range(MAX_REDIRECTS + 1):
                if upload is None:
                    data: Any = urlencode(fields).encode()
                    headers = _FORM_HEADERS
                else:
                    data = _multipart(fields, upload)
                    headers = _HEADERS
                async with pool.session.post(
                    url,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    proxy=proxy[0],
                    proxy_auth=proxy[1],
                    allow_redirects=False,
                ) as response:
                    location = _location(response)
                    if response.status in _KEPT_REDIRECTS and location:
                        url = location
                        continue
                    if response.status == 200:
                        return _as_utf8(
                            await _read(response, settings.max_response_bytes),
                            response.charset,
                        )
                    body = await _read_start(response, settings.max_response_bytes)
                    break
            else:
                body = b""
        raise _refusal(response, body, prompt, settings, tried, location=location)

    return await _with_retries(settings, attempt)


async def get(settings: TransportSettings, params: Mapping[str, str]) -> Answer:
    """GET `settings.url` with query `params`, retrying transient failures.

    Returns:
        The `200` answer, its body read in full.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """

    async def read(response: aiohttp.ClientResponse) -> Answer:
        body = _as_utf8(
            await _read(response, settings.max_response_bytes), response.charset
        )
        response.release()
        return Answer(response.headers, response.content_type, body)

    timeout = _client_timeout(settings.timeout, settings.connect_timeout)
    return await _exchange(settings, params, _HEADERS, timeout, read)


async def stream_get(
    settings: TransportSettings,
    params: Mapping[str, str],
    decoder: Callable[[Answer], Decoder[T]],
) -> AsyncGenerator[T, None]:
    """GET a streamed answer and yield its items as each read completes them.

    `decoder` is given the headers of the `200` answer and decodes its body.
    Failures before the first item are retried as in `get`. Once an item has
    been yielded, a dropped connection raises `DynasparkConnectionError` and a
    silence of `timeout` seconds raises `DynasparkTimeoutError`, without retry.
    `timeout` bounds each wait for data, not the whole stream, so a long stream
    that keeps delivering is never cut. Closing the generator early releases
    the connection without reading the rest.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """

    async def start(response: aiohttp.ClientResponse) -> _Started[T]:
        """Read until the body gives its first items (or ends)."""
        body = decoder(Answer(response.headers, response.content_type))
        async for chunk in response.content.iter_any():
            if first := list(body.feed(chunk)):
                return _Started(response, first, body)
        return _Started(response, list(body.end()), None)

    timeout = _stream_timeout(settings.timeout, settings.connect_timeout)
    started = await _exchange(settings, params, _STREAM_HEADERS, timeout, start)
    try:
        for item in started.first:
            yield item
        if started.rest is None:
            return
        try:
            async for chunk in started.response.content.iter_any():
                for item in started.rest.feed(chunk):
                    yield item
            for item in started.rest.end():
                yield item
        except asyncio.TimeoutError:
            raise _broken_stream_error(None, settings) from None
        except aiohttp.ClientError as exc:
            raise _broken_stream_error(exc, settings) from None
    finally:
        # Unread data makes aiohttp close the connection rather than reuse it.
        started.response.release()


@dataclass(frozen=True)
class _Started(Generic[T]):
    """A streamed answer that has given its first items; the rest is unread."""

    response: aiohttp.ClientResponse
    first: list[T]
    rest: Decoder[T] | None


async def _exchange(
    settings: TransportSettings,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
) -> T:
    """A GET, retried: what `read` makes of a `200` answer.

    Once `read` has returned, it owns the response: it released it, or handed
    it on; if `read` fails, the response is released here.
    """
    check_encodable(params)
    prompt = params.get(_PROMPT_FIELD)

    async def attempt(pool: _Pool, proxy: _Proxy, tried: int) -> T:
        response: aiohttp.ClientResponse | None = None
        try:
            # The slot is held until the answer has started (its first items).
            async with pool.slots:
                # No redirects: they would carry the query, and its key, away.
                response = await pool.session.get(
                    settings.url,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    proxy=proxy[0],
                    proxy_auth=proxy[1],
                    allow_redirects=False,
                )
                if response.status == 200:
                    result = await read(response)
                    response = None  # `read` has released it, or handed it on.
                    return result
                body = await _read_start(response, settings.max_response_bytes)
            raise _refusal(response, body, prompt, settings, tried)
        finally:
            if response is not None:
                response.release()

    return await _with_retries(settings, attempt)


class _Refused(Exception):
    """A non-`200` answer: the error it is, and the wait the service asked for."""

    def __init__(self, error: DynasparkError, retry_after: float | None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


def _refusal(
    response: aiohttp.ClientResponse,
    body: bytes,
    prompt: str | None,
    settings: TransportSettings,
    attempt: int,
    *,
    location: str | None = None,
) -> _Refused:
    """What a non-`200` answer means, as the `_Refused` the retry loop reads."""
    retry_after = _retry_after(response.headers)
    said = server_message(body, prompt=prompt)
    said = said and _scrub(said, settings)
    error = _status_error(
        response.status, retry_after, said, settings, attempt, location=location
    )
    return _Refused(error, retry_after)


async def _with_retries(
    settings: TransportSettings,
    attempt: Callable[[_Pool, _Proxy, int], Awaitable[T]],
) -> T:
    """The retry loop of every request: `attempt` until it returns, or gives up.

    `attempt` gets the pool, the proxy and its own number (from 1), and returns
    the answer or raises: `_Refused` for a non-`200` answer, or aiohttp's and
    asyncio's own errors, which become typed errors here. Transient failures
    are retried with backoff, or after the service's `Retry-After`; a wait
    longer than `MAX_RETRY_AFTER` raises at once.
    """
    pool = await _pool(settings.max_connections)
    proxy = await _proxy_for(settings.url, settings.proxy)
    attempts = settings.max_retries + 1
    for tried in range(1, attempts + 1):
        retry_after: float | None = None
        try:
            return await attempt(pool, proxy, tried)
        except _Refused as refused:
            error, retry_after = refused.error, refused.retry_after
        except asyncio.TimeoutError as exc:
            error = _timeout_error(exc, settings, tried)
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            msg = (
                f"Cannot send a request to {_scrub(str(exc), settings)!r}: it is not "
                "an http(s) URL. Check `base_url` and the endpoint's path."
            )
            raise DynasparkInputError(msg) from None
        except aiohttp.ClientError as exc:
            error = _connection_error(exc, settings, tried, proxy=proxy[0])
        if tried == attempts or not _retryable(error) or _wait_too_long(retry_after):
            raise error
        await asyncio.sleep(_wait_before_retry(retry_after, tried))
    msg = "unreachable: the retry loop always returns or raises"
    raise AssertionError(msg)


_DONE = object()


def iterate_sync(stream: AsyncGenerator[T, None]) -> Iterator[T]:
    """Iterate `stream` from sync code: it runs on the private background loop.

    Each item is handed over as soon as it is produced. Closing the iterator
    early (or an interrupt while waiting) cancels the stream, which releases
    its connection.
    """
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    result: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def pump() -> None:
        async with contextlib.aclosing(stream):
            async for item in stream:
                items.put(item)

    result.add_done_callback(lambda _: items.put(_DONE))
    try:
        _background.loop().call_soon_threadsafe(_start, pump(), result)
        while (item := items.get()) is not _DONE:
            yield item
        result.result()
    finally:
        result.cancel()


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
    pool = await _pool(settings.max_connections)
    try:
        proxy, proxy_auth = await _proxy_for(url, settings.proxy)
        async with (
            pool.slots,
            pool.session.get(
                url,
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
                headers=_HEADERS,
            ) as response,
        ):
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


def check_encodable(fields: Mapping[str, str]) -> None:
    """Refuse a request field UTF-8 cannot encode, naming the field, not its text.

    Every request goes through it, the form's fields and the API's query alike.
    """
    for name, value in fields.items():
        if value.isascii():  # ASCII always encodes; the check is O(1)
            continue
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            msg = (
                f"The request field {name!r} holds a character that cannot be sent "
                f"(U+{ord(value[exc.start]):04X} at offset {exc.start}: {exc.reason})."
            )
            raise DynasparkInputError(msg) from None


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The whole body of a `200`, refused past `max_bytes` while it streams in."""
    length = response.content_length
    if length is not None:
        if length > max_bytes:
            raise _too_long(max_bytes)
        return await response.read()  # no more than the declared length
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > max_bytes:
            raise _too_long(max_bytes)
    return bytes(body)


async def _read_start(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The start of an error answer: enough for the service's message."""
    limit = min(max_bytes, _MAX_ERROR_BODY)
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def _too_long(max_bytes: int) -> DynasparkResponseTooLargeError:
    msg = (
        f"Dynaspark's answer is larger than max_response_bytes ({max_bytes} bytes) "
        "and was not read. Raise `max_response_bytes` if such replies are expected."
    )
    return DynasparkResponseTooLargeError(msg, status_code=200)


def _as_utf8(body: bytes, charset: str | None) -> bytes:
    """`body` re-encoded as UTF-8 when the answer declared another charset."""
    if charset is None or charset.lower().replace("_", "-") in ("utf-8", "utf8"):
        return body
    try:
        return body.decode(charset).encode()
    except (LookupError, UnicodeDecodeError):
        return body


def _location(response: aiohttp.ClientResponse) -> str | None:
    """Where a redirect points, as an absolute URL; `None` if it does not say."""
    location = response.headers.get("Location")
    if not location:
        return None
    try:
        return str(response.url.join(URL(location)))
    except ValueError:
        return None


def _multipart(fields: Mapping[str, str], upload: Upload) -> aiohttp.FormData:
    form = aiohttp.FormData(fields)
    form.add_field(
        "file", upload.data, filename=upload.filename, content_type=upload.content_type
    )
    return form


@lru_cache(maxsize=32)
def _stream_timeout(read: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    """No total limit: `read` bounds each wait for data, from the headers on."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


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


_Proxy = tuple[str | URL | None, aiohttp.BasicAuth | None]
"""A proxy and its credentials, as `_proxy_for` finds them."""


async def _proxy_for(url: str, proxy: str | None) -> _Proxy:
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


def _wait_too_long(retry_after: float | None) -> bool:
    """Whether the service asked for a longer wait than we retry after."""
    return retry_after is not None and retry_after > MAX_RETRY_AFTER


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
    *,
    location: str | None = None,
) -> DynasparkError:
    said_part = f" The service said: {said}." if said else ""
    if status in _LOST_REDIRECTS or status in _KEPT_REDIRECTS:
        where = scrub_url(location) if location else "nowhere it names"
        why = (
            "A client follows it with a GET that drops the form"
            if status in _LOST_REDIRECTS
            else f"More than {MAX_REDIRECTS} redirects, or one without a location"
        )
        msg = (
            f"Dynaspark answered HTTP {status}, redirecting the form to {where}. "
            f"{why}, so it was not followed: set `base_url` (and `path`) to the "
            "new location."
        )
        return DynasparkRedirectError(
            msg,
            status_code=status,
            server_message=said,
            location=scrub_url(location) if location else None,
        )
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
            f"{said_part} {settings.not_found_hint}"
        )
        return DynasparkNotFoundError(msg, status_code=status, server_message=said)
    hints = {
        413: " The upload is too large: send a smaller image or a shorter prompt.",
        414: (
            " The request line is too long for the server: lower "
            "`max_request_line` so this is caught before sending, shorten the "
            "conversation, or use `endpoint='form'`."
        ),
    }
    hint = hints.get(status, " Check the model name and the input.")
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


def _broken_stream_error(
    exc: aiohttp.ClientError | None, settings: TransportSettings
) -> DynasparkError:
    """A stream that broke off after part of the reply was delivered."""
    if exc is None:
        msg = (
            f"Dynaspark's stream went silent for timeout={settings.timeout} s after "
            "part of the reply had arrived, so the reply is incomplete. It is not "
            "retried, because part of it was already delivered: call again, or "
            "raise `timeout`."
        )
        return DynasparkTimeoutError(msg)
    msg = (
        f"Dynaspark's stream from {_where(settings.url)} broke off "
        f"({type(exc).__name__}: {_scrub(str(exc), settings)}) after part of the "
        "reply had arrived, so the reply is incomplete. It is not retried, because "
        "part of it was already delivered: call again."
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
    for secret in settings.secrets:
        for form in (secret, quote(secret, safe=""), quote(secret)):
            if form:
                text = text.replace(form, "***")
    return text


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `Retry-After`, else `X-RateLimit-Reset`, else `None`.

    `X-RateLimit-Reset` is a Unix time (a number of seconds when it is small).
    """
    retry_after = _parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    try:
        reset = float(headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    return max(0.0, reset - time() if reset >= _UNIX_TIME else reset)


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


@dataclass(frozen=True)
class _Pool:
    """One loop's pooled session, and the slots that bound its requests in flight."""

    session: aiohttp.ClientSession
    slots: asyncio.Semaphore
    closer: AsyncIterator[None]


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Pool]] = (
    weakref.WeakKeyDictionary()
)
_sessions_lock = threading.Lock()
_inherited: list[object] = []


async def _pool(max_connections: int) -> _Pool:
    """The running loop's pool for `max_connections`, created on first use.

    The session keeps no cookies (a stateless client), and its connector and
    slots allow `max_connections` requests in flight.
    """
    loop = asyncio.get_running_loop()
    pool = _sessions.get(loop, {}).get(max_connections)
    if pool is not None and not pool.session.closed:
        return pool
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    pool = _Pool(
        session,
        asyncio.Semaphore(max_connections),
        _close_at_loop_shutdown(loop, session),
    )
    with _sessions_lock:
        dropped = _drop_closed_loops()
        _sessions.setdefault(loop, {})[max_connections] = pool
    for old in dropped:
        _discard(old.session)
    await anext(pool.closer)
    return pool


def _drop_closed_loops() -> list[_Pool]:
    """Forget the pools of loops closed without closing them; hold the lock."""
    closed = [loop for loop in _sessions if loop.is_closed()]
    return [pool for loop in closed for pool in _sessions.pop(loop).values()]


def _discard(session: aiohttp.ClientSession) -> None:
    """Close quietly the session of a loop that was closed under it.

    A closed loop runs nothing, so closing schedules nothing: the connector
    marks itself closed and forgets its connections, whose sockets close as
    they are collected, and the awaitable it returns completes at its first
    step. The session then counts as closed: no "Unclosed client session".
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    with contextlib.suppress(StopIteration):
        connector.close().__await__().send(None)


async def _close_at_loop_shutdown(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncIterator[None]:
    """Close `session` when `loop` shuts down its async generators.

    The loop tracks this generator from its first step; `asyncio.run`,
    `asyncio.Runner` and our background loop all finalise tracked generators
    before closing, which runs the `finally` below on the session's own loop.
    It also forgets the session: the entry refers to its loop, which would
    otherwise never be freed. (A loop closed without that shutdown cannot close
    its session; it is dropped quietly when the next session is made, or at
    exit.) A child forked from the process that made the session leaves it
    alone: its sockets, and their registration in the epoll the two processes
    share, are the parent's.
    """
    owner = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == owner:
            with _sessions_lock:
                pools = _sessions.get(loop, {})
                for key, pool in list(pools.items()):
                    if pool.session is session:
                        del pools[key]
                if not pools:
                    _sessions.pop(loop, None)
            await session.close()


def _discard_closed_loops() -> None:
    """At exit: drop quietly the sessions of loops closed by hand."""
    with _sessions_lock:
        dropped = _drop_closed_loops()
    for pool in dropped:
        _discard(pool.session)


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
atexit.register(_discard_closed_loops)
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
