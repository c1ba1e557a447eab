"""Typed errors from what went wrong: a status, a timeout, a lost connection. Pure.

Every failure is raised as a typed `DynasparkError`, never returned as text.
Messages quote the service's own words but not the prompt (the value of the
settings' `prompt_field`), and never a password from the URL or the proxy, nor
one of the settings' `secrets`. `Retry-After` (seconds or an HTTP date) and
`X-RateLimit-Reset` say how long the service asked to wait.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from yarl import URL

from langchain_dynaspark.errors import (
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
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
from langchain_dynaspark.transport.settings import MAX_REDIRECTS, TransportSettings

__all__ = [
    "KEPT_REDIRECTS",
    "Refused",
    "broken_stream_error",
    "connection_error",
    "not_http_error",
    "parse_retry_after",
    "refusal",
    "scrub",
    "status_error",
    "timeout_error",
    "too_long",
]

_GONE = {404: "Not Found", 405: "Method Not Allowed", 410: "Gone"}
"""Statuses that say the path itself is not there (any more)."""

KEPT_REDIRECTS = frozenset({307, 308})
"""Redirects a client follows with the same method and body."""
_LOST_REDIRECTS = frozenset({301, 302, 303})
"""Redirects after which a client sends a GET, without the form."""
_UNIX_TIME = 1e9
"""An `X-RateLimit-Reset` at least this large is a Unix time, not seconds."""


class Refused(Exception):
    """A non-`200` answer: the error it is, and the wait the service asked for."""

    def __init__(self, error: DynasparkError, retry_after: float | None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


def refusal(
    response: aiohttp.ClientResponse,
    body: bytes,
    fields: Mapping[str, str],
    settings: TransportSettings,
    attempt: int,
    *,
    location: str | None = None,
) -> Refused:
    """What a non-`200` answer to `fields` means, as the `Refused` retries read."""
    retry_after = _retry_after(response.headers)
    field = settings.prompt_field
    said = server_message(body, prompt=fields.get(field) if field else None)
    said = said and scrub(said, settings)
    error = status_error(
        response.status, retry_after, said, settings, attempt, location=location
    )
    return Refused(error, retry_after)


def _attempts(attempt: int) -> str:
    return f"{attempt} attempt{'s' if attempt > 1 else ''}"


def status_error(
    status: int,
    retry_after: float | None,
    said: str | None,
    settings: TransportSettings,
    attempt: int,
    *,
    location: str | None = None,
) -> DynasparkError:
    """The typed error of a non-`200` `status`, after `attempt` attempts."""
    said_part = f" The service said: {said}." if said else ""
    if status in _LOST_REDIRECTS or status in KEPT_REDIRECTS:
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
    if status in _GONE:
        msg = (
            f"Dynaspark answered {status} {_GONE[status]} at "
            f"{urlsplit(settings.url).path}.{said_part} {settings.not_found_hint}"
        )
        return DynasparkNotFoundError(msg, status_code=status, server_message=said)
    hints = {
        401: (
            " The service refused the API key: set the `DYNASPARK_API_KEY` "
            "environment variable (or `api_key=`) to a key it accepts."
        ),
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


def timeout_error(
    exc: asyncio.TimeoutError, settings: TransportSettings, attempt: int
) -> DynasparkTimeoutError:
    """An attempt that timed out, connecting or waiting for the answer."""
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


def connection_error(
    exc: aiohttp.ClientError,
    settings: TransportSettings,
    attempt: int,
    *,
    proxy: str | URL | None = None,
) -> DynasparkConnectionError:
    """An attempt that could not talk to the service (through `proxy`, if set)."""
    msg = (
        f"Could not talk to Dynaspark at {_where(settings.url)} "
        f"({type(exc).__name__}: {scrub(str(exc), settings)}) after "
        f"{_attempts(attempt)}. Check the network, `base_url` and any proxy "
        f"settings, then retry.{_proxy_hint(settings, proxy)}"
    )
    return DynasparkConnectionError(msg)


def not_http_error(
    exc: aiohttp.ClientError, settings: TransportSettings
) -> DynasparkInputError:
    """A URL aiohttp cannot send a request to."""
    msg = (
        f"Cannot send a request to {scrub(str(exc), settings)!r}: it is not "
        "an http(s) URL. Check `base_url` and the endpoint's path."
    )
    return DynasparkInputError(msg)


def broken_stream_error(
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
        f"({type(exc).__name__}: {scrub(str(exc), settings)}) after part of the "
        "reply had arrived, so the reply is incomplete. It is not retried, because "
        "part of it was already delivered: call again."
    )
    return DynasparkConnectionError(msg)


def too_long(max_bytes: int) -> DynasparkResponseTooLargeError:
    """A `200` answer larger than `max_bytes`, refused unread."""
    msg = (
        f"Dynaspark's answer is larger than max_response_bytes ({max_bytes} bytes) "
        "and was not read. Raise `max_response_bytes` if such replies are expected."
    )
    return DynasparkResponseTooLargeError(msg, status_code=200)


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


def scrub(text: str, settings: TransportSettings) -> str:
    """`text` without the credentials in the service or proxy URL, or `secrets`."""
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
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    try:
        reset = float(headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    return max(0.0, reset - time() if reset >= _UNIX_TIME else reset)


def parse_retry_after(value: str | None) -> float | None:
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
