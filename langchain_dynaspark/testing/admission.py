"""The checks an API request passes before it is answered: line length, rate limit.

The text API, spoken replies and image generation share them, and share one
rate-limit window: the free key's hourly limit counts every request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from aiohttp import web

from langchain_dynaspark.testing.rules import Reply
from langchain_dynaspark.testing.surface import (
    ServiceState,
    reply_headers,
    scripted_fault,
)

__all__ = ["Admitted", "admit", "admitted"]


@dataclass(frozen=True)
class Admitted:
    """A request past the checks: its query, its scripted reply, the headers.

    Attributes:
        query: The query parameters.
        reply: The scripted reply it takes, if one was queued.
        headers: The rate-limit headers and the scripted reply's own.
        response: The answer already decided (a refusal, a dropped
            connection), if any: send it and nothing else.
    """

    query: dict[str, str]
    reply: Reply | None
    headers: dict[str, str]
    response: web.StreamResponse | None = None


async def admitted(state: ServiceState, request: web.Request) -> Admitted:
    """Count and record an API request, check it, and take its scripted reply.

    The scripted reply's delay is waited, and a scripted drop closes the
    connection (`response` is then set).
    """
    state.count_connection(request)
    query = dict(request.query)
    state.record(request, query, None)
    limits, refusal = admit(state, request)
    if refusal is not None:
        return Admitted(query, None, {}, refusal)
    reply = state.next_reply()
    headers = {**(limits or {}), **reply_headers(reply)}
    dropped = await scripted_fault(request, reply)
    return Admitted(query, reply, headers, dropped)


def admit(
    state: ServiceState, request: web.Request
) -> tuple[dict[str, str] | None, web.Response | None]:
    """Rate-limit headers for an API request, and the refusal it gets, if any.

    A request line over `max_request_line` bytes gets a `414`; a request
    over the rate limit gets a `429`.
    """
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
