"""A local stand-in for the Dynaspark form endpoint, for tests, demos and benchmarks.

It speaks the protocol `ChatDynaspark` uses: `POST {path}` with a form
(`application/x-www-form-urlencoded`, or `multipart/form-data` when a `file` is
attached) holding `user_input`, `ai_model` and an optional `file`; it answers
`200` with `{"response": "<text>"}`. Which answer comes back is up to you:

- `script(...)` queues answers (text, any status/body/headers, a delay, or a
  dropped connection), each used by one request, in order;
- `rules` answer prompts that match a regular expression with a fixed text;
- otherwise a literal-minded stand-in for the model answers the prompts that
  ask for tool calls or for JSON in a schema, as the instructions ask
  (`langchain_dynaspark.testing.stand_in`), so examples and agents run and end;
- and any other prompt is echoed: `Echo: <user_input>`.

Every request is recorded (`requests`), including the uploaded file's bytes,
and `connections` counts the TCP connections clients opened (distinct client
addresses). `files` are served
at `GET /files/<name>`, for image-URL tests that must not leave the machine;
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
import mimetypes
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from langchain_dynaspark.testing import stand_in

__all__ = [
    "DEFAULT_PATH",
    "DynasparkTestServer",
    "RecordedRequest",
    "Reply",
    "Rule",
    "UploadedFile",
    "main",
]

DEFAULT_PATH = "/generate_response"
_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    With only `text`, the answer is `200 {"response": text}`. `status`, `body`
    (bytes, str, or a dict sent as JSON), `content_type` and `headers` shape any
    other answer. `delay` waits before answering; `drop` closes the connection
    without answering.
    """

    text: str | None = None
    status: int = 200
    body: bytes | str | dict[str, Any] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


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
    """What one request to the form endpoint carried."""

    method: str
    path: str
    content_type: str
    headers: Mapping[str, str]
    fields: Mapping[str, str]
    file: UploadedFile | None


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
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.rules = [(re.compile(rule.pattern), rule.reply) for rule in rules]
        self.requests: list[RecordedRequest] = []
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
        self._peers.clear()
        self.connections = 0

    def app(self) -> web.Application:
        """The aiohttp application, for running it on a loop of your own."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(self.path, self._generate)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_post("/__admin__/script", self._admin_script)
        app.router.add_get("/__admin__/stats", self._admin_stats)
        app.router.add_post("/__admin__/reset", self._admin_reset)
        return app

    async def start_async(self) -> None:
        """Start serving on the running loop."""
        self._runner = web.AppRunner(self.app(), access_log=None)
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

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        if peer not in self._peers:
            self._peers.add(peer)
            self.connections += 1
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        file = (
            UploadedFile(upload.filename, upload.content_type, upload.file.read())
            if isinstance(upload, web.FileField)
            else None
        )
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
        return web.json_response(
            {"requests": len(self.requests), "connections": self.connections}
        )

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


_REPLY_TYPES: Mapping[str, tuple[type[Any], ...]] = {
    "text": (str, type(None)),
    "status": (int,),
    "body": (str, dict, type(None)),
    "content_type": (str, type(None)),
    "headers": (dict,),
    "delay": (int, float),
    "drop": (bool,),
}
_SCRIPT_FORMAT = (
    "a JSON list of replies, each a string (the reply text) or an object with "
    "any of the fields text (string), status (integer), body (string or object), "
    "content_type (string), headers (object of strings), delay (seconds), drop "
    '(true/false); e.g. ["Bonjour !", {"status": 503}]'
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
        host=args.host, port=args.port, path=args.path, rules=rules
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
