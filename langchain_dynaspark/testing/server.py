"""A local stand-in for the Dynaspark service, for tests, demos and benchmarks.

It speaks the protocols `ChatDynaspark` uses:

- the form: `POST {path}` with a form (`application/x-www-form-urlencoded`, or
  `multipart/form-data` when a `file` is attached) holding `user_input`,
  `ai_model` and an optional `file`; it answers `200` with
  `{"response": "<text>"}`;
- the documented API: `GET {api_path}` with query parameters; it answers
  `{"response", "model", "usage"}` (token counts are words), or server-sent
  events with `stream=true`, in the style of `Reply.sse` (OpenAI-style chunks
  by default, then a `usage` event and `data: [DONE]`), `event_delay` seconds
  apart. With `rate_limit` set, each API answer carries `X-RateLimit-*` headers
  and a spent window answers `429`; with `max_concurrent` set, an API request
  beyond that many being answered at once answers `429` with `Retry-After:
  busy_retry_after`; a request line longer than `max_request_line` bytes
  answers `414`; with `api_key` set, an API request without that key answers
  `401`; `model=openai-audio` answers MP3 bytes, a spoken reply
  (`speech_surface`);
- image generation: `GET /api/generate_image` answers `{"image_url"}` pointing
  at a picture the server draws at the requested size (`image_surface`), with
  the API's checks and rate limit.

A surface named in `gone` (`"form"`, `"api"`, `"image"`) answers every request with a
`404` HTML page, as a moved path does (the request is still recorded).

Which answer comes back is up to you:

- `script(...)` queues answers (text, any status/body/headers, a delay, or a
  dropped connection), each used by one request, in order;
- `rules` answer prompts that match a regular expression with a fixed text;
- otherwise a literal-minded stand-in for the model answers the prompts that
  ask for tool calls or for JSON in a schema, as the instructions ask, and
  the format-repair requests that restate them
  (`langchain_dynaspark.testing.stand_in`), so examples and agents run and end;
- and any other prompt is echoed: `Echo: <user_input>`.

Every request is recorded (`requests`), including the uploaded file's bytes or
the API's query, every API stream in `streams` (how many events were written,
and whether the client went away first), and `connections` counts the TCP
connections clients opened (distinct client addresses). `files` are served at
`GET /files/<name>`, for image-URL tests that must not leave the machine;
`add_files(directory)` (`--files DIR` on the command line) adds a directory's.

Each surface of the service is a module of `langchain_dynaspark.testing`
(`form_surface`, `api_surface` and its `speech_surface`, `image_surface`,
`files_surface`, `admin_surface`), listed in
`DynasparkTestServer.surfaces`; they share the state in `surface`, answer from
the replies and rules in `rules`, and record into the types of `recording`.

Run it in-process (`with DynasparkTestServer() as server: server.url`) or as a
command: `python -m langchain_dynaspark.testing.server --port 8765`. Out of
process, `POST /__admin__/script` (a JSON list of replies: a string, or an
object of `Reply` fields), `GET /__admin__/stats` and `POST /__admin__/reset` do
the same as the methods; a malformed script is answered 400, saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web

from langchain_dynaspark.testing.admin_surface import AdminSurface
from langchain_dynaspark.testing.api_surface import (
    DEFAULT_API_MODEL,
    DEFAULT_API_PATH,
    DEFAULT_MAX_REQUEST_LINE,
    ApiSurface,
)
from langchain_dynaspark.testing.files_surface import FilesSurface
from langchain_dynaspark.testing.form_surface import DEFAULT_PATH, FormSurface
from langchain_dynaspark.testing.image_surface import ImageSurface
from langchain_dynaspark.testing.recording import (
    RecordedRequest,
    RecordedStream,
    UploadedFile,
)
from langchain_dynaspark.testing.rules import Reply, Rule, load_rules
from langchain_dynaspark.testing.surface import ServiceState, Surface

__all__ = [
    "DEFAULT_API_MODEL",
    "DEFAULT_API_PATH",
    "DEFAULT_MAX_REQUEST_LINE",
    "DEFAULT_PATH",
    "DynasparkTestServer",
    "RecordedRequest",
    "RecordedStream",
    "Reply",
    "Rule",
    "UploadedFile",
    "main",
]

_MAX_BODY = 64 * 1024 * 1024
_MAX_LINE_SIZE = 1 << 20
"""aiohttp's own request-line limit, above any `max_request_line` used here."""


class DynasparkTestServer(ServiceState):
    """A scriptable Dynaspark form endpoint on loopback.

    Example:
        ```python
        from langchain_dynaspark import ChatDynaspark
        from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

        with DynasparkTestServer() as server:
            server.script(Reply(status=503), "Bonjour !")
            model = ChatDynaspark(base_url=server.url)
            assert model.invoke("Say hello in French").text == "Bonjour !"
            assert len(server.requests) == 2
        ```
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_PATH,
        rules: Iterable[Rule] = (),
        api_path: str = DEFAULT_API_PATH,
        event_delay: float = 0.0,
        rate_limit: int | None = None,
        rate_window: float = 3600.0,
        max_request_line: int | None = DEFAULT_MAX_REQUEST_LINE,
        gone: Iterable[str] = (),
        api_key: str | None = None,
    ) -> None:
        super().__init__(
            rules=rules,
            event_delay=event_delay,
            rate_limit=rate_limit,
            rate_window=rate_window,
            max_request_line=max_request_line,
        )
        self.gone.update(gone)
        self.api_key = api_key
        self.host = host
        self.port = port
        self.path = path
        self.api_path = api_path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL to give `ChatDynaspark(base_url=...)`."""
        return f"http://{self.host}:{self.port}"

    def surfaces(self) -> list[Surface]:
        """The surfaces of the service this server speaks, on its shared state."""
        return [
            FormSurface(self, self.path),
            ApiSurface(self, self.api_path),
            ImageSurface(self),
            FilesSurface(self),
            AdminSurface(self),
        ]

    def app(self) -> web.Application:
        """The aiohttp application, for running it on a loop of your own."""
        app = web.Application(client_max_size=_MAX_BODY)
        for surface in self.surfaces():
            app.add_routes(surface.routes())
        return app

    async def start_async(self) -> None:
        """Start serving on the running loop."""
        self._runner = web.AppRunner(
            self.app(), access_log=None, max_line_size=_MAX_LINE_SIZE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_async(self) -> None:
        """Stop serving and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> DynasparkTestServer:
        """Serve from a background thread until `stop()`."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(
            target=serve, name="dynaspark-test-server", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background server started by `start()`."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop = self._thread = None

    def __enter__(self) -> DynasparkTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the test server until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_dynaspark.testing.server",
        description="Serve a local stand-in for the Dynaspark form endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--api-path", default=DEFAULT_API_PATH)
    parser.add_argument(
        "--event-delay",
        type=float,
        default=0.0,
        help="seconds between the events of an API stream",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        help="API requests allowed per --rate-window (default: no limit)",
    )
    parser.add_argument("--rate-window", type=float, default=3600.0)
    parser.add_argument(
        "--max-request-line", type=int, default=DEFAULT_MAX_REQUEST_LINE
    )
    parser.add_argument(
        "--gone",
        action="append",
        choices=("form", "api", "image"),
        default=[],
        help="a surface that answers 404, as a moved path does (repeatable)",
    )
    parser.add_argument("--api-key", help="the key the API requires (401 without)")
    parser.add_argument(
        "--rules",
        type=Path,
        help='JSON file: a list of {"pattern": "<regex>", "reply": "<text>"}',
    )
    parser.add_argument(
        "--files",
        type=Path,
        metavar="DIR",
        help="serve the files in DIR at /files/<name> (e.g. images for URL inputs)",
    )
    args = parser.parse_args(argv)
    rules = load_rules(args.rules) if args.rules else []
    server = DynasparkTestServer(
        host=args.host,
        port=args.port,
        path=args.path,
        rules=rules,
        api_path=args.api_path,
        event_delay=args.event_delay,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        max_request_line=args.max_request_line,
        gone=args.gone,
        api_key=args.api_key,
    )
    if args.files is not None:
        server.add_files(args.files)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))


async def _serve_forever(server: DynasparkTestServer) -> None:
    """Serve until cancelled, announcing the bound address (also for `--port 0`)."""
    await server.start_async()
    print(f"Dynaspark test server on {server.url}", flush=True)  # noqa: T201
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop_async()


if __name__ == "__main__":
    main()
