"""Typed errors from what went wrong: a status, a timeout, a lost connection. Pure.

Every failure is raised as a typed `DynasparkError`, never returned as text.
Messages quote the service's own words but not the prompt (the value of the
settings' `prompt_field`), and never a password from the URL or the proxy, a
query string, nor one of the settings' `secrets` in any encoding. `Retry-After`
(seconds or an HTTP date) says how long the service asked to wait; on a 429
(or an answer with `X-RateLimit-Remaining: 0`), so does `X-RateLimit-Reset`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time
from urllib.parse import quote, quote_plus, unquote, urlsplit

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
    "conceal",
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
_UNIX_TIME_MS = 1e12
"""An `X-RateLimit-Reset` at least this large is a Unix time in milliseconds."""
_QUERY = re.compile(r"(?<=[\w/%.\-])\?[^\s'\"<>]*=[^\s'\"<>]*")
"""A query string in a URL or request target: it carries the request's fields."""
_HIDDEN_QUERY = "?[query]"
_PROMPT = "[your prompt]"
_MIN_PROMPT = 8
"""Shorter prompts are too likely to be ordinary words to be replaced."""


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
    resends: bool = True,
) -> Refused:
    """What a non-`200` answer to `fields` means, as the `Refused` retries read.

    `resends`: the request is one sent on with its body after a 307 or 308.
    """
    retry_after = _retry_after(response.status, response.headers)
    field = settings.prompt_field
    prompt = fields.get(field) if field else None
    said = server_message(body, prompt=prompt)
    said = said and scrub(said, settings, prompt=prompt)
    error = status_error(
        response.status,
        retry_after,
        said,
        settings,
        attempt,
        location=location,
        resends=resends,
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
    resends: bool = True,
) -> DynasparkError:
    """The typed error of a non-`200` `status`, after `attempt` attempts.

    `resends`: the request is one sent on with its body after a 307 or 308
    (a form); otherwise it follows no redirect.
    """
    said_part = f" The service said: {said}." if said else ""
    if status in _LOST_REDIRECTS or status in KEPT_REDIRECTS:
        return _redirect_error(status, said, settings, location, resends=resends)
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
            "environment variable (or pass `api_key`) to a key it accepts."
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


def _redirect_error(
    status: int,
    said: str | None,
    settings: TransportSettings,
    location: str | None,
    *,
    resends: bool,
) -> DynasparkRedirectError:
    """A redirect that was not followed, saying why."""
    # A redirect may point at the request's own query (its prompt, its key).
    where = scrub(scrub_url(location), settings) if location else None
    what = "the form" if resends else "the request"
    went = f"redirecting {what} to {where}" if where else "without a `Location`"
    if not resends:
        why = "This request follows no redirect: its query would go to another address"
    elif status in _LOST_REDIRECTS:
        why = "A client follows it with a GET that drops the form"
    elif where is None:
        why = "There is nowhere to follow it to"
    else:
        why = f"More than {MAX_REDIRECTS} redirects in a row"
    msg = (
        f"Dynaspark answered HTTP {status}, {went}. {why}, so it was not "
        f"followed: {settings.moved_hint}"
    )
    return DynasparkRedirectError(
        msg, status_code=status, server_message=said, location=where
    )


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


def scrub(text: str, settings: TransportSettings, *, prompt: str | None = None) -> str:
    """`text` without credentials, query strings, `secrets` or `prompt`.

    Credentials are those of the service or proxy URL; `secrets` and the
    `prompt` go in every encoding a request may carry them in.
    """
    for url in (settings.url, settings.proxy):
        if url is None:
            continue
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        password = userinfo.partition(":")[2]
        for secret in (userinfo, password, unquote(password)):
            if secret:
                text = text.replace(secret, "***")
    return conceal(text, settings.secrets, prompt=prompt)


def conceal(text: str, secrets: tuple[str, ...], *, prompt: str | None = None) -> str:
    """`text` without query strings, nor `secrets` or `prompt` in any encoding.

    A query string, which carries the request's fields, reads `?[query]`; a
    secret reads `***` and the prompt `[your prompt]` (raw, percent- or
    `+`-encoded), a prompt shorter than a few characters excepted.
    """
    text = _QUERY.sub(_HIDDEN_QUERY, text) if "?" in text else text
    for secret in secrets:
        for form in _encodings(secret):
            text = text.replace(form, "***")
    if prompt is not None and len(prompt.strip()) >= _MIN_PROMPT:
        for form in _encodings(prompt.strip()):
            text = text.replace(form, _PROMPT)
    return text


def _encodings(value: str) -> list[str]:
    """`value` as it may travel: raw, percent-, `+`- or query-encoded; longest first."""
    query = URL.build(query={"v": value}).raw_query_string[2:]
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), query}
    return sorted((form for form in forms if form), key=len, reverse=True)


def _retry_after(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `Retry-After`, else a sane reset window, else `None`.

    The `X-RateLimit-Reset` window governs a 429, or an answer that says its
    window is spent (`X-RateLimit-Remaining: 0`), and only when it is ahead.
    """
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None or (
        status != 429 and _number(headers.get("X-RateLimit-Remaining")) != 0
    ):
        return retry_after
    return _reset_wait(headers.get("X-RateLimit-Reset"))


def _reset_wait(value: str | None) -> float | None:
    """Seconds until an `X-RateLimit-Reset`; `None` if unreadable or not ahead.

    The header is a number of seconds, a Unix time, or a Unix time in
    milliseconds, told apart by size.
    """
    reset = _number(value)
    if reset is None:
        return None
    if reset >= _UNIX_TIME_MS:
        reset /= 1000.0
    if reset >= _UNIX_TIME:
        reset -= time()
    return reset if reset > 0 else None


def _number(value: str | None) -> float | None:
    """A header's finite number; `None` when missing, unreadable, nan or inf."""
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


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
