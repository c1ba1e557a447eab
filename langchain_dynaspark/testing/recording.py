"""What the local server records of each request and each API stream."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

__all__ = ["RecordedRequest", "RecordedStream", "UploadedFile", "recorded"]


@dataclass(frozen=True)
class UploadedFile:
    """The `file` part of a multipart request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """What one request carried (`fields` holds the API's query parameters)."""

    method: str
    path: str
    content_type: str
    headers: Mapping[str, str]
    fields: Mapping[str, str]
    file: UploadedFile | None

    @property
    def seen(self) -> str:
        """All the text the model sees: the API's `system`, then `user_input`."""
        parts = (self.fields.get("system"), self.fields.get("user_input"))
        return "\n\n".join(part for part in parts if part)


@dataclass
class RecordedStream:
    """One streamed API answer: events written, and whether the client left.

    `first_write_at` is the `time.time()` just before the first event was
    written, for measuring how soon a client sees it.
    """

    events: int = 0
    planned: int = 0
    disconnected: bool = False
    first_write_at: float | None = None


def recorded(
    request: web.Request, fields: Mapping[str, str], file: UploadedFile | None
) -> RecordedRequest:
    """The record of `request`, which carried `fields` and `file`."""
    return RecordedRequest(
        method=request.method,
        path=request.path,
        content_type=request.content_type,
        headers=dict(request.headers),
        fields=fields,
        file=file,
    )
