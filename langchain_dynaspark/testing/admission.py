"""The checks an API-style request passes first: load, gone, key, line, rate limit.

The text API, spoken replies and image generation share them, and share one
rate-limit window: the free key's hourly limit counts every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from langchain_dynaspark.testing.rules import Reply
from langchain_dynaspark.testing.surface import (
    ServiceState,
    gone_page,
    reply_headers,
    scripted_fault,
)

__all__ = ["Admitted", "admit", "answered"]


@dataclass(frozen=True)
class Admitted:
    """A request past the checks: its query, its scripted reply, the headers.

    Attributes:
        query: The query parameters.
        reply: The scripted reply it takes, if one was queued.
        headers: The rate-limit headers and the scripted reply's own.
    """

    query: dict[str, str]
    reply: Reply | None
    headers: dict[str, str]


Answering = Callable[[web.Request, Admitted], Awaitable[web.StreamResponse]]
"""What a surface makes of a request past the checks."""


async def answered(
    state: ServiceState, request: web.Request, surface: str, answer: Answering
) -> web.StreamResponse:
    """Count, record and check an API-style request, then `answer` it.

    A request beyond `max_concurrent` being answered at once gets a `429` with
    `Retry-After: busy_retry_after`; then come the checks of `admit`. A
    request past them takes its scripted reply: its delay is waited, and a
    scripted drop closes the connection. While it is answered (its delay
    included), it counts as being answered at once.
    """
    state.count_connection(request)
    query = dict(request.query)
    state.record(request, query, None)
    if state.max_concurrent is not None and state.active >= state.max_concurrent:
        error = {"error": "Too many requests at once"}
        headers = {"Retry-After": state.busy_retry_after}
        return web.json_response(error, status=429, headers=headers)
    state.active += 1
    try:
        limits, refusal = admit(state, request, surface)
        if refusal is not None:
            return refusal
        reply = state.next_reply()
        dropped = await scripted_fault(request, reply)
        if dropped is not None:
            return dropped
        headers = {**(limits or {}), **reply_headers(reply)}
        return await answer(request, Admitted(query, reply, headers))
    finally:
        state.active -= 1


def admit(
    state: ServiceState, request: web.Request, surface: str
) -> tuple[dict[str, str] | None, web.Response | None]:
    """Rate-limit headers for an API request, and the refusal it gets, if any.

    A `surface` marked gone gets a `404` page; a request without the key the
    server requires a `401`; a request line over `max_request_line` bytes
    a `414`; a request over the rate limit a `429`.
    """
    if surface in state.gone:
        return None, gone_page()
    key = state.api_key
    if key is not None and request.query.get("api_key") != key:
        return None, web.json_response({"error": "Invalid API key"}, status=401)
    version = request.version
    line = f"{request.method} {request.raw_path} HTTP/{version.major}."
    line += str(version.minor)
    limit = state.max_request_line
    if limit is not None and len(line) > limit:
        error = {"error": "Request-URI Too Long"}
        return None, web.json_response(error, status=414)
    limits = _spend_rate_limit(state)
    if limits is not None and limits["X-RateLimit-Remaining"] == "-1":
        limits["X-RateLimit-Remaining"] = "0"
        error = {"error": "Rate limit exceeded"}
        return limits, web.json_response(error, status=429, headers=limits)
    return limits, None


def _spend_rate_limit(state: ServiceState) -> dict[str, str] | None:
    """Count one API request; its rate-limit headers (remaining -1: spent)."""
    if state.rate_limit is None:
        return None
    start, used = state.window
    now = time.time()
    if now >= start + state.rate_window:
        start, used = now, 0
    used += 1
    state.window = (start, used)
    return {
        "X-RateLimit-Limit": str(state.rate_limit),
        "X-RateLimit-Remaining": str(max(-1, state.rate_limit - used)),
        "X-RateLimit-Reset": str(math.ceil(start + state.rate_window)),
    }
