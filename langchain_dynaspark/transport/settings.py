"""The values the transport is given and hands back. Pure.

`TransportSettings` says where to send and how hard to try; `Upload` is a file
for a form; `Answer` is a `200` answer; a `Decoder` turns a streamed body into
items. None of them knows what a request means: the caller names the field
that holds its prompt and the hint a 404 gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from langchain_dynaspark._version import __version__

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "Answer",
    "Decoder",
    "TransportSettings",
    "Upload",
]

USER_AGENT = f"langchain-dynaspark/{__version__}"
DEFAULT_MAX_CONNECTIONS = 10
"""Requests in flight at once per pool: the service's free tier allows 10."""
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest answer body read, in bytes: far beyond any text reply."""
MAX_REDIRECTS = 5
"""Most 307/308 redirects followed for one attempt."""

T_co = TypeVar("T_co", covariant=True)


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
        url: The full URL, `{base_url}{path}`.
        timeout: Seconds one attempt may take in all, or `None` for no limit.
        connect_timeout: Seconds to open a connection, or `None` for no limit.
        max_retries: Retries after the first attempt (`0` means one attempt).
        proxy: An HTTP(S) proxy URL; `None` uses the `HTTP(S)_PROXY` environment.
        max_response_bytes: Largest answer body read, in bytes.
        max_connections: Requests in flight at once on the pool this uses.
        secrets: Values (such as an API key) that no error message may show.
        not_found_hint: What a 404 error message tells the user to do.
        moved_hint: What an error for a redirect that was not followed tells
            the user to do.
        prompt_field: The request field (form or query) that holds the prompt:
            where the service's words quote its value, an error says
            `[your prompt]` instead. `None` when no field holds one.
    """

    url: str
    timeout: float | None
    connect_timeout: float | None
    max_retries: int
    proxy: str | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    secrets: tuple[str, ...] = ()
    not_found_hint: str = "Check `base_url` and the path the service answers at."
    prompt_field: str | None = None
    moved_hint: str = "set `base_url` (and the path) to the new location."


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
