"""The exchanges: POST a form, GET, GET a stream, download a file.

- Each request goes through the one retry loop (`retries`) on the running
  loop's pool (`pools`). A request waits for a free slot first (and for the
  service's shared back-off, `backoff`), and its `timeout` starts once it has
  one. A stream keeps its slot as long as its connection: until its whole
  body has arrived (or it ends first).
- Redirects: 307/308 are followed with the form (at most `MAX_REDIRECTS`);
  301/302/303, which would turn the POST into a GET without the form, raise a
  `DynasparkRedirectError` naming the new location. A GET follows none: a
  redirect would carry its query away.
- A body larger than `max_response_bytes` is refused while it streams in, a
  streamed one included. A body in another charset than UTF-8 is handed on as
  UTF-8.
- A stream's `timeout` counts from the request to its first item, then from
  each item to the next (see `stream_get`).
- Fields are sent as given: what they mean is the caller's business.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp
from yarl import URL

from langchain_dynaspark.errors import (
    DynasparkError,
    DynasparkImageError,
    DynasparkInputError,
)
from langchain_dynaspark.transport.backoff import Slot, backoff_for
from langchain_dynaspark.transport.failures import (
    KEPT_REDIRECTS,
    Refused,
    broken_stream_error,
    refusal,
    scrub,
    too_long,
)
from langchain_dynaspark.transport.pools import Pool, pool_for
from langchain_dynaspark.transport.proxies import (
    Proxy,
    client_timeout,
    proxy_for,
)
from langchain_dynaspark.transport.retries import with_retries
from langchain_dynaspark.transport.settings import (
    MAX_REDIRECTS,
    USER_AGENT,
    Answer,
    Decoder,
    TransportSettings,
    Upload,
)

__all__ = ["check_encodable", "download", "get", "post_form", "stream_get"]

_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_STREAM_HEADERS = {**_HEADERS, "Accept": "text/event-stream, application/json"}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
_MAX_ERROR_BODY = 64 * 1024
"""Most bytes of an error answer read: enough for the service's message."""

T = TypeVar("T")


async def post_form(
    settings: TransportSettings, fields: Mapping[str, str], upload: Upload | None
) -> bytes:
    """POST the form, retrying transient failures, and return a `200` body.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """
    check_encodable(fields)
    timeout = client_timeout(settings.timeout, settings.connect_timeout)

    async def attempt(pool: Pool, proxy: Proxy, tried: int) -> bytes:
        url = settings.url
        # The timeout starts inside: a request waiting for a slot has not left.
        async with Slot(pool.slots, backoff_for(settings.url)):
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
                    if response.status in KEPT_REDIRECTS and location:
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
            raise refusal(response, body, fields, settings, tried, location=location)

    return await with_retries(settings, attempt)


async def get(settings: TransportSettings, params: Mapping[str, str]) -> Answer:
    """GET `settings.url` with query `params`, retrying transient failures.

    Returns:
        The `200` answer, its body read in full.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """

    async def read(response: aiohttp.ClientResponse, _slot: Slot) -> Answer:
        body = _as_utf8(
            await _read(response, settings.max_response_bytes), response.charset
        )
        response.release()
        return Answer(response.headers, response.content_type, body)

    timeout = client_timeout(settings.timeout, settings.connect_timeout)
    return await _exchange(settings, params, _HEADERS, timeout, read)


async def stream_get(
    settings: TransportSettings,
    params: Mapping[str, str],
    decoder: Callable[[Answer], Decoder[T]],
) -> AsyncGenerator[T, None]:
    """GET a streamed answer and yield its items as each read completes them.

    `decoder` is given the headers of the `200` answer and decodes its body;
    a typed error it raises before the first item goes through the retry loop
    like a refused answer. The body is refused past `max_response_bytes`, as
    in `get`. `timeout` bounds the wait for the first item (from the request)
    and then each wait for the next one: reads that complete no item, such as
    keep-alive comments, do not reset it, and time the consumer spends with an
    item does not count. Failures before the first item are retried as in
    `get`. Once an item has been yielded, a dropped connection raises
    `DynasparkConnectionError` and a wait past `timeout` raises
    `DynasparkTimeoutError`, without retry. Closing the generator early
    releases the connection without reading the rest.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """
    max_bytes = settings.max_response_bytes

    async def start(response: aiohttp.ClientResponse, slot: Slot) -> _Started[T]:
        """Read until the body gives its first items (or ends); keep the slot."""
        try:
            if (response.content_length or 0) > max_bytes:
                raise too_long(max_bytes)
            body = _Body(response, max_bytes)
            items = decoder(Answer(response.headers, response.content_type))
            while chunk := await body.read():
                if first := list(items.feed(chunk)):
                    return _Started(response, body, first, items, _kept(slot, response))
            return _Started(
                response, body, list(items.end()), None, _kept(slot, response)
            )
        except DynasparkError as error:
            # Nothing was handed on: the retry loop judges it like a refusal.
            raise Refused(error, None) from None

    timeout = client_timeout(None, settings.connect_timeout)
    started = await _exchange(
        settings, params, _STREAM_HEADERS, timeout, start, within=settings.timeout
    )
    response, rest = started.response, started.rest
    watchdog = _Watchdog(response, settings.timeout)
    try:
        watchdog.paused = True
        for item in started.first:
            yield item
        if rest is None:
            return
        try:
            watchdog.resume()
            while chunk := await started.body.read():
                items = rest.feed(chunk)
                if not items:
                    continue
                watchdog.paused = True
                for item in items:
                    yield item
                watchdog.resume()
            for item in rest.end():
                yield item
        except asyncio.TimeoutError:
            raise broken_stream_error(None, settings) from None
        except aiohttp.ClientError as exc:
            raise broken_stream_error(exc, settings) from None
    finally:
        watchdog.cancel()
        # Unread data makes aiohttp close the connection rather than reuse it.
        response.release()
        started.slot.release()


def _kept(slot: Slot, response: aiohttp.ClientResponse) -> Slot:
    """`slot`, kept by a stream until its whole body has arrived.

    aiohttp hands the connection back then, though the consumer may not have
    read it all: so does the slot, and a call made while the consumer holds an
    item (a nested call on one slot) is not locked out by the stream.
    """
    response.content.on_eof(slot.release)
    return slot.keep()


class _Body:
    """The reads of a streamed body, refused past `max_bytes` in all."""

    def __init__(self, response: aiohttp.ClientResponse, max_bytes: int) -> None:
        self._content = response.content
        self._max_bytes = max_bytes
        self._left = max_bytes

    async def read(self) -> bytes:
        """The next read; `b""` at the end.

        Raises:
            DynasparkResponseTooLargeError: Past `max_bytes`.
        """
        chunk = await self._content.readany()
        self._left -= len(chunk)
        if self._left < 0:
            raise too_long(self._max_bytes)
        return chunk


@dataclass(frozen=True)
class _Started(Generic[T]):
    """A streamed answer that has given its first items; the rest is unread."""

    response: aiohttp.ClientResponse
    body: _Body
    first: list[T]
    rest: Decoder[T] | None
    slot: Slot
    """The request's slot, kept: given back when the body has arrived."""


class _Watchdog:
    """Fails the read of a stream that gives no item for `timeout` seconds.

    One timer per stream, moved at most once per `timeout`, so marking
    progress costs a clock read. While `paused` (the consumer holds an item)
    the wait does not count. When time is up, the pending read raises
    `asyncio.TimeoutError`, as aiohttp's own read timeout makes it. With no
    `timeout`, it does nothing.
    """

    def __init__(self, response: aiohttp.ClientResponse, timeout: float | None) -> None:
        self._response = response
        self._timeout = math.inf if timeout is None else timeout
        self._loop = asyncio.get_running_loop()
        self._since = self._loop.time()
        self.paused = False
        self._timer = (
            None
            if timeout is None
            else self._loop.call_at(self._since + timeout, self._check)
        )

    def resume(self) -> None:
        """The stream is read again: the wait for the next item starts now."""
        self.paused = False
        self._since = self._loop.time()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        now = self._loop.time()
        due = now + self._timeout if self.paused else self._since + self._timeout
        if due > now:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._response.content.set_exception(asyncio.TimeoutError())


async def _exchange(
    settings: TransportSettings,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    read: Callable[[aiohttp.ClientResponse, Slot], Awaitable[T]],
    *,
    within: float | None = None,
) -> T:
    """A GET, retried: what `read` makes of a `200` answer.

    Once `read` has returned, it owns the response: it released it, or handed
    it on; if `read` fails, the response is released here. `read` is given the
    request's slot, given back when `read` returns unless it keeps it.
    `within` bounds each attempt, from when it has a slot until `read` returns.
    """
    check_encodable(params)

    async def attempt(pool: Pool, proxy: Proxy, tried: int) -> T:
        async with Slot(pool.slots, backoff_for(settings.url)) as slot:
            asking = ask(pool, proxy, tried, slot)
            return await (
                asking if within is None else asyncio.wait_for(asking, within)
            )

    async def ask(pool: Pool, proxy: Proxy, tried: int, slot: Slot) -> T:
        response: aiohttp.ClientResponse | None = None
        try:
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
                result = await read(response, slot)
                response = None  # `read` has released it, or handed it on.
                return result
            body = await _read_start(response, settings.max_response_bytes)
            raise refusal(
                response,
                body,
                params,
                settings,
                tried,
                location=_location(response),
                resends=False,
            )
        finally:
            if response is not None:
                response.release()

    return await with_retries(settings, attempt)


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
    timeout = client_timeout(settings.timeout, settings.connect_timeout)
    pool = await pool_for(settings.max_connections)
    try:
        proxy, proxy_auth = await proxy_for(url, settings.proxy)
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
        # The error may name the URL, or one it was redirected to, with its query.
        said = scrub(str(exc).replace(url, host), settings)
        msg = f"Downloading an image from {host} failed: {type(exc).__name__}: {said}."
        raise DynasparkImageError(msg) from None


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
            raise too_long(max_bytes)
        return await response.read()  # no more than the declared length
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > max_bytes:
            raise too_long(max_bytes)
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
