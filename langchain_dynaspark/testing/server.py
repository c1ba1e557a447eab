"""A local stand-in for the Dynaspark service, for tests, demos and benchmarks.

It speaks both protocols `ChatDynaspark` uses:

- the form: `POST {path}` with a form (`application/x-www-form-urlencoded`, or
  `multipart/form-data` when a `file` is attached) holding `user_input`,
  `ai_model` and an optional `file`; it answers `200` with
  `{"response": "<text>"}`;
- the documented API: `GET {api_path}` with query parameters; it answers
  `{"response", "model", "usage"}` (token counts are words), or server-sent
  events with `stream=true`, in the style of `Reply.sse` (OpenAI-style chunks
  by default, then a `usage` event and `data: [DONE]`), `event_delay` seconds
  apart. With `rate_limit` set, each API answer carries `X-RateLimit-*` headers
  and a spent window answers `429`; a request line longer than
  `max_request_line` bytes answers `414`.

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
import json
import math
import mimetypes
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from langchain_dynaspark.testing import stand_in

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

DEFAULT_PATH = "/generate_response"
DEFAULT_API_PATH = "/api/generate_response"
DEFAULT_API_MODEL = "local-echo"
"""The model the API stand-in says it used when the request names none."""
DEFAULT_MAX_REQUEST_LINE = 4094
"""gunicorn's default limit on the request line, in bytes."""
_MAX_BODY = 64 * 1024 * 1024
_MAX_LINE_SIZE = 1 << 20
"""aiohttp's own request-line limit, above any `max_request_line` used here."""
_PIECES = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    With only `text`, the answer is `200 {"response": text}`. `status`, `body`
    (bytes, str, or a dict sent as JSON), `content_type` and `headers` shape any
    other answer. `delay` waits before answering; `drop` closes the connection
    without answering.

    On an API stream: `events` are the texts of the events (by default the
    reply split into words), written in the style `sse` (`"openai"` chunks,
    `{"response": ...}` objects or plain `"text"`), `event_delay` seconds apart
    (default: the server's); `drop_after` closes the connection after that many
    events; `raw` replaces the whole body with these pieces, written as they
    are. `model` is the model the API says it used; `usage=False` leaves token
    counts out.
    """

    text: str | None = None
    status: int = 200
    body: bytes | str | dict[str, Any] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    events: Sequence[str] | None = None
    sse: Literal["openai", "response", "text"] = "openai"
    event_delay: float | None = None
    drop_after: int | None = None
    raw: Sequence[bytes | str] | None = None
    model: str | None = None
    usage: bool = True


@dataclass(frozen=True)
class Rule:
    """Answer prompts that match `pattern` (a regular expression) with `reply`."""

    pattern: str
    reply: str


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


class DynasparkTestServer:
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
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.api_path = api_path
        self.event_delay = event_delay
        self.rate_limit = rate_limit
        """API requests allowed per `rate_window` seconds; `None`: no limit."""
        self.rate_window = rate_window
        self.max_request_line = max_request_line
        self.rules = [(re.compile(rule.pattern), rule.reply) for rule in rules]
        self.requests: list[RecordedRequest] = []
        self.streams: list[RecordedStream] = []
        self._window: tuple[float, int] = (0.0, 0)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.connections = 0
        self._script: deque[Reply] = deque()
        self._peers: set[object] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL to give `ChatDynaspark(base_url=...)`."""
        return f"http://{self.host}:{self.port}"

    def script(self, *replies: Reply | str) -> None:
        """Queue answers for the next requests (a `str` is a plain text reply)."""
        self._script.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

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
        self._script.clear()
        self.requests.clear()
        self.streams.clear()
        self._peers.clear()
        self._window = (0.0, 0)
        self.connections = 0

    def app(self) -> web.Application:
        """The aiohttp application, for running it on a loop of your own."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(self.path, self._generate)
        app.router.add_get(self.api_path, self._api)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_post("/__admin__/script", self._admin_script)
        app.router.add_get("/__admin__/stats", self._admin_stats)
        app.router.add_post("/__admin__/reset", self._admin_reset)
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

    def _count_connection(self, request: web.Request) -> None:
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        if peer not in self._peers:
            self._peers.add(peer)
            self.connections += 1

    def _record(
        self,
        request: web.Request,
        fields: Mapping[str, str],
        file: UploadedFile | None,
    ) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                content_type=request.content_type,
                headers=dict(request.headers),
                fields=fields,
                file=file,
            )
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self._count_connection(request)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        file = (
            UploadedFile(upload.filename, upload.content_type, upload.file.read())
            if isinstance(upload, web.FileField)
            else None
        )
        self._record(request, fields, file)
        reply = self._script.popleft() if self._script else None
        if reply is not None and reply.delay:
            await asyncio.sleep(reply.delay)
        if reply is not None and reply.drop:
            request.transport.abort()
            return web.Response()
        if reply is not None and (reply.text is None or reply.status != 200):
            return _raw_response(reply)
        if "user_input" not in fields or not fields["user_input"]:
            return web.json_response({"error": "user_input is required"}, status=400)
        text = reply.text if reply is not None else self._answer(fields, file)
        return web.json_response({"response": text}, headers=_headers(reply))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self._count_connection(request)
        query = dict(request.query)
        self._record(request, query, None)
        limits, refusal = self._admit(request)
        if refusal is not None:
            return refusal
        reply = self._script.popleft() if self._script else None
        headers = {**(limits or {}), **_headers(reply)}
        if reply is not None and reply.delay:
            await asyncio.sleep(reply.delay)
        if reply is not None and reply.drop:
            request.transport.abort()
            return web.Response()
        if reply is not None and (reply.status != 200 or _no_text(reply)):
            return _raw_response(replace(reply, headers=headers))
        if not query.get("user_input"):
            return web.json_response({"error": "user_input is required"}, status=400)
        text = self._answer(query, None) if reply is None else _text_of(reply)
        model = (reply.model if reply else None) or query.get("model")
        model = model or DEFAULT_API_MODEL
        usage = _usage(query, text) if reply is None or reply.usage else None
        if query.get("stream") == "true":
            return await self._stream(
                request, reply, text=text, model=model, usage=usage, headers=headers
            )
        body: dict[str, Any] = {"response": text, "model": model}
        if usage is not None:
            body["usage"] = usage
        return web.json_response(body, headers=headers)

    def _admit(
        self, request: web.Request
    ) -> tuple[dict[str, str] | None, web.Response | None]:
        """Rate-limit headers for an API request, and the refusal it gets, if any.

        A request line over `max_request_line` bytes gets a `414`; a request
        over the rate limit gets a `429`.
        """
        version = request.version
        line = f"{request.method} {request.raw_path} HTTP/{version.major}."
        line += str(version.minor)
        if self.max_request_line is not None and len(line) > self.max_request_line:
            error = {"error": "Request-URI Too Long"}
            return None, web.json_response(error, status=414)
        limits = self._spend_rate_limit()
        if limits is not None and limits["X-RateLimit-Remaining"] == "-1":
            limits["X-RateLimit-Remaining"] = "0"
            error = {"error": "Rate limit exceeded"}
            return limits, web.json_response(error, status=429, headers=limits)
        return limits, None

    def _spend_rate_limit(self) -> dict[str, str] | None:
        """Count one API request; its rate-limit headers (remaining -1: spent)."""
        if self.rate_limit is None:
            return None
        start, used = self._window
        now = time.time()
        if now >= start + self.rate_window:
            start, used = now, 0
        used += 1
        self._window = (start, used)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(-1, self.rate_limit - used)),
            "X-RateLimit-Reset": str(math.ceil(start + self.rate_window)),
        }

    async def _stream(
        self,
        request: web.Request,
        reply: Reply | None,
        *,
        text: str,
        model: str,
        usage: dict[str, int] | None,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        reply = reply or Reply()
        pieces = (
            list(reply.raw)
            if reply.raw is not None
            else _sse_events(reply, text, model, usage)
        )
        record = RecordedStream(planned=len(pieces))
        self.streams.append(record)
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "text/event-stream"}
        )
        delay = self.event_delay if reply.event_delay is None else reply.event_delay
        try:
            await response.prepare(request)
            for index, piece in enumerate(pieces):
                if reply.drop_after is not None and index >= reply.drop_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if index and delay:
                    await asyncio.sleep(delay)
                if not index:
                    record.first_write_at = time.time()
                await response.write(
                    piece.encode() if isinstance(piece, str) else piece
                )
                record.events += 1
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            record.disconnected = True
        return response

    def _answer(self, fields: Mapping[str, str], file: UploadedFile | None) -> str:
        prompt = fields["user_input"]
        for pattern, reply in self.rules:
            if pattern.search(prompt):
                return reply
        literal = stand_in.reply(prompt)
        if literal is not None:
            return literal
        if file is None:
            return f"Echo: {prompt}"
        return (
            f"Echo: {prompt} (with {file.filename}, {file.content_type}, "
            f"{len(file.data)} bytes)"
        )

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound
        data, content_type = self.files[name]
        return web.Response(body=data, content_type=content_type)

    async def _admin_script(self, request: web.Request) -> web.Response:
        try:
            replies = _script_from_json(await request.text())
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        self.script(*replies)
        return web.json_response({"queued": len(self._script)})

    async def _admin_stats(self, request: web.Request) -> web.Response:
        last = self.streams[-1] if self.streams else None
        return web.json_response(
            {
                "requests": len(self.requests),
                "connections": self.connections,
                "first_write_at": last.first_write_at if last else None,
            }
        )

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def _no_text(reply: Reply) -> bool:
    """Whether a scripted reply is a raw body rather than a reply text."""
    return reply.text is None and reply.events is None and reply.raw is None


def _text_of(reply: Reply) -> str:
    if reply.text is not None:
        return reply.text
    return "".join(reply.events or ())


def _usage(query: Mapping[str, str], text: str) -> dict[str, int]:
    """Token counts as the stand-in counts them: words."""
    prompt = len(query.get("system", "").split()) + len(query["user_input"].split())
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse_events(
    reply: Reply, text: str, model: str, usage: dict[str, int] | None
) -> list[str]:
    """The events of a streamed reply, each a complete `data:` event."""
    texts = list(reply.events) if reply.events is not None else _PIECES.findall(text)
    if reply.sse == "text":
        return [_data(piece) for piece in texts]
    if reply.sse == "response":
        last: dict[str, Any] = {"response": "", "model": model}
        if usage is not None:
            last["usage"] = usage
        return [
            *(_data(json.dumps({"response": piece})) for piece in texts),
            _data(json.dumps(last)),
            _data("[DONE]"),
        ]
    chunks = [
        {
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            ],
        }
        for piece in texts
    ]
    final: dict[str, Any] = {
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    if usage is not None:
        final["usage"] = usage
    return [*(_data(json.dumps(chunk)) for chunk in [*chunks, final]), _data("[DONE]")]


def _data(text: str) -> str:
    """One SSE event carrying `text`, one `data:` line per line of it."""
    return "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


_REPLY_TYPES: Mapping[str, tuple[type[Any], ...]] = {
    "text": (str, type(None)),
    "status": (int,),
    "body": (str, dict, type(None)),
    "content_type": (str, type(None)),
    "headers": (dict,),
    "delay": (int, float),
    "drop": (bool,),
    "events": (list, type(None)),
    "sse": (str,),
    "event_delay": (int, float, type(None)),
    "drop_after": (int, type(None)),
    "raw": (list, type(None)),
    "model": (str, type(None)),
    "usage": (bool,),
}
_SCRIPT_FORMAT = (
    "a JSON list of replies, each a string (the reply text) or an object with "
    "any of the fields text (string), status (integer), body (string or object), "
    "content_type (string), headers (object of strings), delay (seconds), drop "
    "(true/false), and for API streams events (list of strings), sse "
    '("openai", "response" or "text"), event_delay (seconds), drop_after '
    "(integer), raw (list of strings), model (string), usage (true/false); "
    'e.g. ["Bonjour !", {"status": 503}]'
)


def _script_from_json(text: str) -> list[Reply | str]:
    """The replies in an admin script request.

    Raises:
        ValueError: Saying what was expected, if the body is not such a list.
    """
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if not isinstance(items, list):
        msg = f"Expected {_SCRIPT_FORMAT}; got {text[:80]!r}."
        raise ValueError(msg)
    replies: list[Reply | str] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            replies.append(item)
            continue
        wrong = (
            [
                name
                for name, value in item.items()
                if not isinstance(value, _REPLY_TYPES.get(name, ()))
                or (name in {"status", "delay"} and isinstance(value, bool))
                or (name == "headers" and not all(map(_is_str, value.values())))
            ]
            if isinstance(item, dict)
            else ["(not an object)"]
        )
        if wrong:
            msg = f"Reply {index}: bad {', '.join(wrong)}. Expected {_SCRIPT_FORMAT}."
            raise ValueError(msg)
        replies.append(Reply(**item))
    return replies


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _headers(reply: Reply | None) -> dict[str, str]:
    return dict(reply.headers) if reply is not None else {}


def _raw_response(reply: Reply) -> web.Response:
    body = reply.body
    if body is None and reply.text is not None:
        body = {"response": reply.text}
    if isinstance(body, dict):
        return web.json_response(body, status=reply.status, headers=_headers(reply))
    if isinstance(body, str):
        body = body.encode()
    content_type = reply.content_type or (
        "text/html" if body and body.lstrip()[:1] == b"<" else "text/plain"
    )
    return web.Response(
        body=body or b"",
        status=reply.status,
        headers={**_headers(reply), "Content-Type": content_type},
    )


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
    rules = (
        [Rule(**r) for r in json.loads(args.rules.read_text())] if args.rules else []
    )
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
