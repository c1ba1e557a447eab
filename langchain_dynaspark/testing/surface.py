"""What every surface of the local server shares.

A surface is one part of the service the server speaks (the form, the API,
the files, the admin routes): a `Surface` that lists its routes, answering on
the `ServiceState` all surfaces share (the script, the rules, the recorded
requests and streams, the settings). Adding a surface is adding a module with
one such class and listing it in `DynasparkTestServer.surfaces`.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web

from langchain_dynaspark.testing import rules as rules_module
from langchain_dynaspark.testing.recording import (
    RecordedRequest,
    RecordedStream,
    UploadedFile,
    recorded,
)
from langchain_dynaspark.testing.rules import Reply, Rule

__all__ = [
    "ServiceState",
    "Surface",
    "gone_page",
    "missing_input",
    "raw_response",
    "reply_headers",
    "scripted_fault",
]


class Surface(Protocol):
    """One surface of the service: the routes it answers."""

    def routes(self) -> list[web.RouteDef]:
        """The routes to register on the application."""
        ...


class ServiceState:
    """The state the surfaces share: settings, script, rules and records."""

    def __init__(
        self,
        *,
        rules: Iterable[Rule],
        event_delay: float,
        rate_limit: int | None,
        rate_window: float,
        max_request_line: int | None,
    ) -> None:
        self.event_delay = event_delay
        self.rate_limit = rate_limit
        """API requests allowed per `rate_window` seconds; `None`: no limit."""
        self.rate_window = rate_window
        self.max_concurrent: int | None = None
        """API requests answered at once; one more gets a `429`. `None`: any."""
        self.busy_retry_after = "1"
        """The `Retry-After` of a `429` for too many requests at once."""
        self.active = 0
        """API requests being answered now."""
        self.max_request_line = max_request_line
        self.rules = rules_module.compile_rules(rules)
        self.requests: list[RecordedRequest] = []
        self.streams: list[RecordedStream] = []
        self.window: tuple[float, int] = (0.0, 0)
        """Start and API requests so far of the current rate-limit window."""
        self.files: dict[str, tuple[bytes, str]] = {}
        self.connections = 0
        self.queue: deque[Reply] = deque()
        """Scripted answers not used yet, in order."""
        self.gone: set[str] = set()
        """Surfaces (`"form"`, `"api"`, `"image"`) that answer `404`, as a moved
        path does."""
        self.api_key: str | None = None
        """The key the API requires (`401` without it); `None`: any or none."""
        self._peers: set[object] = set()

    def script(self, *replies: Reply | str) -> None:
        """Queue answers for the next requests (a `str` is a plain text reply)."""
        self.queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def add_files(self, directory: Path) -> None:
        """Serve every file directly in `directory` at `GET /files/<name>`."""
        for path in sorted(Path(directory).iterdir()):
            if path.is_file():
                content_type = mimetypes.guess_type(path.name)[0]
                self.files[path.name] = (
                    path.read_bytes(),
                    content_type or "application/octet-stream",
                )

    def reset(self) -> None:
        """Forget queued answers, recorded requests and the connection count."""
        self.queue.clear()
        self.requests.clear()
        self.streams.clear()
        self._peers.clear()
        self.window = (0.0, 0)
        self.connections = 0

    def next_reply(self) -> Reply | None:
        """The next scripted answer, used up; `None` if none is queued."""
        return self.queue.popleft() if self.queue else None

    def count_connection(self, request: web.Request) -> None:
        """Count the connection `request` came on, if it is a new one."""
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        if peer not in self._peers:
            self._peers.add(peer)
            self.connections += 1

    def record(
        self,
        request: web.Request,
        fields: Mapping[str, str],
        file: UploadedFile | None,
    ) -> None:
        """Record `request`, which carried `fields` and `file`."""
        self.requests.append(recorded(request, fields, file))

    def answer(self, prompt: str, file: UploadedFile | None) -> str:
        """The unscripted answer to `prompt`: a rule's, or the default."""
        return rules_module.answer(self.rules, prompt, file)


async def scripted_fault(
    request: web.Request, reply: Reply | None
) -> web.Response | None:
    """Wait the delay `reply` scripts; if it drops the connection, drop it.

    Returns:
        The (never sent) response of a dropped connection; `None` otherwise.
    """
    if reply is not None and reply.delay:
        await asyncio.sleep(reply.delay)
    if reply is not None and reply.drop:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()
    return None


def gone_page() -> web.Response:
    """What a path that is not there (any more) answers: a `404` HTML page."""
    page = (
        "<!doctype html><html><head><title>404 Not Found</title></head>"
        "<body><h1>Not Found</h1><p>The requested URL was not found on the "
        "server.</p></body></html>"
    )
    return web.Response(text=page, status=404, content_type="text/html")


def missing_input() -> web.Response:
    """The answer to a request without a `user_input`."""
    return web.json_response({"error": "user_input is required"}, status=400)


def reply_headers(reply: Reply | None) -> dict[str, str]:
    """The headers a scripted reply adds (none without one)."""
    return dict(reply.headers) if reply is not None else {}


def raw_response(reply: Reply) -> web.Response:
    """A scripted reply sent as it is: its status, body and headers."""
    body = reply.body
    if body is None and reply.text is not None:
        body = {"response": reply.text}
    if isinstance(body, dict):
        return web.json_response(
            body, status=reply.status, headers=reply_headers(reply)
        )
    if isinstance(body, str):
        body = body.encode()
    content_type = reply.content_type or (
        "text/html" if body and body.lstrip()[:1] == b"<" else "text/plain"
    )
    return web.Response(
        body=body or b"",
        status=reply.status,
        headers={**reply_headers(reply), "Content-Type": content_type},
    )
