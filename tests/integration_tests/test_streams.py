"""A stream keeps every promise a whole reply keeps, against hostile servers.

Caps on the whole stream and on one event, completeness (a cut, an empty or a
broken stream is an error, as `invoke` makes it), back-pressure on a paused
sync consumer, keep-alives that neither land in the reply nor keep a stream
alive past `timeout`, and the same usage as `invoke` after a stop cut. The
measured figures are printed (`pytest -s`) as well as bounded.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkConnectionError,
    DynasparkResponseError,
    DynasparkResponseTooLargeError,
    DynasparkTimeoutError,
)
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply
from langchain_dynaspark.transport import retries

LIMIT = 5.0
"""Generous upper bound, in seconds, for anything that should be quick."""
DONE = "data: [DONE]\n\n"


def _chunk(text: str, **extra: Any) -> str:
    """One OpenAI-style event carrying `text`."""
    body = {"choices": [{"delta": {"content": text}, "finish_reason": None}], **extra}
    return f"data: {json.dumps(body)}\n\n"


def _finish(**extra: Any) -> str:
    body = {"choices": [{"delta": {}, "finish_reason": "stop"}], **extra}
    return f"data: {json.dumps(body)}\n\n"


def _model(url: str, **kwargs: Any) -> ChatDynaspark:
    kwargs.setdefault("max_retries", 0)
    return ChatDynaspark(base_url=url, endpoint="api", **kwargs)


async def _collect(model: ChatDynaspark, into: list[str] | None = None) -> str:
    received = [] if into is None else into
    async for chunk in model.astream("Hi"):
        received.append(chunk.text)
    return "".join(received)


async def _eventually(condition: Callable[[], object]) -> bool:
    deadline = time.monotonic() + LIMIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serving(handler: Handler) -> tuple[web.AppRunner, str]:
    """A one-route hostile API on loopback; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/api/generate_response", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    return response


# --- 1. caps -------------------------------------------------------------------


async def test_the_byte_cap_covers_a_whole_stream(server: DynasparkTestServer) -> None:
    """3 MB of small events under `max_response_bytes=1_000_000`."""
    event = _chunk("x" * 100)
    server.script(Reply(raw=[event * 1000] * 25 + [_finish(), DONE]))
    model = _model(server.url, max_response_bytes=1_000_000)
    received: list[str] = []
    with pytest.raises(DynasparkResponseTooLargeError, match="max_response_bytes"):
        await _collect(model, received)
    assert 0 < len("".join(received)) < 1_000_000


async def test_a_server_that_ignores_stream_is_capped_as_invoke_is(
    server: DynasparkTestServer,
) -> None:
    """20 MB of JSON: `astream` refuses it as `ainvoke` does."""
    body = json.dumps({"response": "x" * 20_000_000})
    server.script(Reply(body=body, content_type="application/json"))
    server.script(Reply(body=body, content_type="application/json"))
    model = _model(server.url)
    with pytest.raises(DynasparkResponseTooLargeError):
        await model.ainvoke("Hi")
    with pytest.raises(DynasparkResponseTooLargeError):
        await _collect(model)


async def test_an_8_mb_single_line_event_is_refused_at_once() -> None:
    """One `data:` line of 8 MB without a newline, written in 64 KB pieces."""
    sent: list[int] = []

    async def one_line(request: web.Request) -> web.StreamResponse:
        response = await _events(request)
        await response.write(b"data: ")
        piece = b"x" * 65536
        try:
            for _ in range(128):
                await response.write(piece)
                sent.append(len(piece))
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return response

    runner, url = await _serving(one_line)
    try:
        started = time.perf_counter()
        with pytest.raises(DynasparkResponseTooLargeError, match="event"):
            await _collect(_model(url))
        elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
    print(f"\n8 MB single-line event refused in {elapsed * 1e3:.0f} ms")  # noqa: T201
    assert elapsed < LIMIT  # only catches a decoder that rescans the line
    assert sum(sent) < 8 << 20


# --- 2. completeness -------------------------------------------------------------


async def test_a_stream_cut_inside_an_event_raises(
    server: DynasparkTestServer,
) -> None:
    server.script(
        Reply(raw=[_chunk("Hello"), 'data: {"choices":[{"delta":{"cont']), "never"
    )
    received: list[str] = []
    with pytest.raises(DynasparkConnectionError, match="incomplete"):
        await _collect(_model(server.url, max_retries=2), received)
    assert received == ["Hello"]
    assert len(server.requests) == 1


async def test_a_cut_before_anything_was_delivered_is_retried(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "BACKOFF_BASE", 0.01)
    server.script(
        Reply(raw=['data: {"choices":[{"delta":{"cont']),
        Reply(events=["fine"]),
    )
    assert await _collect(_model(server.url, max_retries=1)) == "fine"
    assert len(server.requests) == 2


async def test_an_openai_stream_without_done_or_finish_raises(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(raw=[_chunk("Hel"), _chunk("lo")]))
    received: list[str] = []
    with pytest.raises(DynasparkConnectionError, match=r"\[DONE\]"):
        await _collect(_model(server.url), received)
    assert received == ["Hel", "lo"]


async def test_a_finish_reason_without_done_completes_a_stream(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(raw=[_chunk("Hel"), _chunk("lo"), _finish()]))
    assert await _collect(_model(server.url)) == "Hello"


@pytest.mark.parametrize(
    "body",
    ["", ": keep-alive\n\n: keep-alive\n\n", "event: x\nid: 1\n\nretry: 5\n\n"],
    ids=["no bytes", "only comments", "only data-less events"],
)
async def test_a_stream_without_content_raises_what_invoke_raises(
    server: DynasparkTestServer, body: str
) -> None:
    server.script(
        Reply(raw=[body] if body else []),
        Reply(body=body, content_type="text/event-stream"),
    )
    model = _model(server.url)
    with pytest.raises(DynasparkResponseError) as streamed:
        await _collect(model)
    with pytest.raises(DynasparkResponseError) as invoked:
        await model.ainvoke("Hi")
    assert type(streamed.value) is type(invoked.value)
    assert streamed.value.status_code == invoked.value.status_code == 200


async def test_an_event_with_broken_json_is_never_content(
    server: DynasparkTestServer,
) -> None:
    broken = 'data: {"choices": [{"delta": {"content": "X"}}\n\n'
    raw = [_chunk("Hel"), broken, _chunk("lo"), _finish(), DONE]
    server.script(Reply(raw=raw, event_delay=0.05))
    received: list[str] = []
    with pytest.raises(DynasparkResponseError, match="not valid JSON"):
        await _collect(_model(server.url), received)
    assert received == ["Hel"]


# --- 3. back-pressure on sync streams -------------------------------------------

_PAUSED_CLIENT = textwrap.dedent(
    """
    import sys, time, tracemalloc
    from langchain_dynaspark import ChatDynaspark

    model = ChatDynaspark(base_url=sys.argv[1], endpoint="api", max_retries=0)
    tracemalloc.start()
    stream = model.stream("Hi")
    next(stream)
    time.sleep(2.0)
    print(tracemalloc.get_traced_memory()[1])
    stream.close()
    """
)


async def _endless(request: web.Request) -> web.StreamResponse:
    """Events as fast as the client takes them, up to 400 MB."""
    response = await _events(request)
    burst = _chunk("x").encode() * 1000
    try:
        for _ in range(400_000_000 // len(burst)):
            await response.write(burst)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def test_a_paused_sync_stream_stays_small() -> None:
    """Peak memory traced in a client from its call through a 2 s pause."""
    runner, url = await _serving(_endless)
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PAUSED_CLIENT,
            url,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(client.communicate(), 60)
    finally:
        await runner.cleanup()
    assert client.returncode == 0, err.decode()
    peak = int(out)
    print(f"\npaused sync stream: peak traced memory {peak / 1e6:.2f} MB")  # noqa: T201
    assert peak < 20_000_000


async def test_a_dropped_sync_iterator_releases_its_connection() -> None:
    left = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = await _events(request)
        try:
            for _ in range(200):
                await response.write(_chunk("a").encode())
                await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            left.set()
        return response

    runner, url = await _serving(slow)
    try:

        def first_then_drop() -> str:
            stream = _model(url).stream("Hi")
            text = next(stream).text
            del stream
            gc.collect()
            return text

        assert await asyncio.to_thread(first_then_drop) == "a"
        await asyncio.wait_for(left.wait(), LIMIT)
    finally:
        await runner.cleanup()


async def test_a_sync_consumer_that_pauses_is_not_timed_out(
    server: DynasparkTestServer,
) -> None:
    """Time spent holding a chunk does not count against `timeout`."""
    server.script(Reply(events=["a", "b", "c"], event_delay=0.05))

    def slow_consumer() -> list[str]:
        received = []
        for chunk in _model(server.url, timeout=0.5).stream("Hi"):
            received.append(chunk.text)
            time.sleep(0.8)
        return received

    assert await asyncio.to_thread(slow_consumer) == ["a", "b", "c", ""]


# --- 8. events without text --------------------------------------------------------


@pytest.mark.parametrize(
    "keep_alive",
    ["data: {}\n\n", 'data: {"type": "ping"}\n\n', "event: ping\ndata: ping\n\n"],
)
@pytest.mark.parametrize("style", ["openai", "text"])
async def test_events_without_text_are_skipped(
    server: DynasparkTestServer, keep_alive: str, style: str
) -> None:
    hel, lo = (
        (_chunk("Hel"), _chunk("lo"))
        if style == "openai"
        else ("data: Hel\n\n", "data: lo\n\n")
    )
    end = [_finish(), DONE] if style == "openai" else []
    server.script(Reply(raw=[keep_alive, hel, keep_alive, lo, keep_alive, *end]))
    assert await _collect(_model(server.url)) == "Hello"


async def test_a_null_error_is_no_error_as_in_invoke(
    server: DynasparkTestServer,
) -> None:
    server.script(
        Reply(
            raw=[
                _chunk("Hel", error=None),
                'data: {"error": null}\n\n',
                _chunk("lo"),
                DONE,
            ]
        ),
        Reply(body={"response": "Hello", "error": None}),
    )
    model = _model(server.url)
    assert await _collect(model) == "Hello"
    assert (await model.ainvoke("Hi")).text == "Hello"


# --- 9. keep-alives and `timeout` ----------------------------------------------------


def _keep_alive(first: list[str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await _events(request)
        try:
            for event in first:
                await response.write(event.encode())
            for _ in range(100):
                await response.write(b": keep-alive\n\n")
                await asyncio.sleep(0.2)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return handler


@pytest.mark.parametrize("first", [[], [_chunk("a")]], ids=["first event", "idle"])
async def test_keep_alive_comments_do_not_reset_the_timeout(first: list[str]) -> None:
    runner, url = await _serving(_keep_alive(first))
    received: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(DynasparkTimeoutError, match="timeout=1"):
            await asyncio.wait_for(_collect(_model(url, timeout=1), received), 8)
        elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert received == [
        json.loads(e[6:])["choices"][0]["delta"]["content"] for e in first
    ]
    assert elapsed < LIMIT


# --- 11. the same reply as invoke -------------------------------------------------


async def test_usage_after_a_stop_cut_is_kept_as_invoke_keeps_it(
    server: DynasparkTestServer,
) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    raw = [_chunk("Paris."), _chunk("\nUser: and Rome?"), _finish(usage=usage), DONE]
    whole = {"response": "Paris.\nUser: and Rome?", "usage": usage}
    server.script(Reply(raw=raw), Reply(body=whole))
    model = _model(server.url, stop=["\nUser:"])
    chunks: list[AIMessageChunk] = [c async for c in model.astream("Hi")]
    full = sum(chunks[1:], chunks[0])
    invoked = await model.ainvoke("Hi")
    assert full.text == invoked.text == "Paris."
    assert full.response_metadata["finish_reason"] == "stop_sequence"
    assert invoked.response_metadata["finish_reason"] == "stop_sequence"
    assert (
        full.usage_metadata
        == invoked.usage_metadata
        == {
            "input_tokens": 3,
            "output_tokens": 5,
            "total_tokens": 8,
        }
    )


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.parametrize("endpoint", ["api", "auto"])
def test_streaming_true_keeps_the_invalid_tool_calls_invoke_keeps(
    server: DynasparkTestServer, endpoint: str
) -> None:
    text = (
        'Adding.\n{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}, '
        '{"name": "nope", "arguments": {}}, {"name": "add", "arguments": "a=1"}, '
        '{"name": "add", "arguments": {"a": "x"}}]}'
    )
    server.script(text, text)  # streamed word by word when a stream is asked for

    def seen(streaming: bool) -> tuple[object, ...]:
        model = ChatDynaspark(
            base_url=server.url, endpoint=endpoint, streaming=streaming, max_retries=0
        )
        message = model.bind_tools([add]).invoke("Add", format_retries=0)
        return (
            message.text,
            [(c["name"], c["args"]) for c in message.tool_calls],
            [(c["name"], c["args"], c["error"]) for c in message.invalid_tool_calls],
        )

    invoked, streamed = seen(False), seen(True)
    assert invoked[1] == [("add", {"a": 1, "b": 2})]
    assert [call[0] for call in invoked[2]] == ["nope", "add", "add"]  # type: ignore[attr-defined]
    assert streamed == invoked


async def test_usage_after_text_that_follows_a_stop_cut_is_kept(
    server: DynasparkTestServer,
) -> None:
    # The local server streams word by word, then a usage event.
    model = _model(server.url, stop=["beta"])
    invoked = await model.ainvoke("alpha beta gamma delta")
    chunks = [c async for c in model.astream("alpha beta gamma delta")]
    full = sum(chunks[1:], chunks[0])
    assert full.text == invoked.text == "Echo: alpha "
    assert invoked.usage_metadata is not None
    assert full.usage_metadata == invoked.usage_metadata
    assert full.response_metadata["finish_reason"] == "stop_sequence"
