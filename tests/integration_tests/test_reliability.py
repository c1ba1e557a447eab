"""Fault injection against the local server: retries, timeouts, errors, pooling.

Every fault the free Dynaspark host produces is scripted on the local server
and met on the form (`endpoint="form"`; the API's own are in `test_api.py`),
alone and in sequences, and each test asserts how many requests were made, the
error type and message, and generous bounds on the elapsed time. Also covered:
one pooled connection per loop, clean session shutdown, cancellation, proxies,
`rate_limiter`, `cache`, and shipping a model to worker processes by pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from langchain_core.caches import InMemoryCache
from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkInputError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkResponseError,
    DynasparkTimeoutError,
    transport,
)
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply
from langchain_dynaspark.transport import (
    TransportSettings,
    Upload,
    pools,
    retries,
    sync,
)

PROMPT = "Plan the quokka heist at Zanzibar pier 7731"
"""Distinctive, so a leak of the prompt into an error message is easy to spot."""

ECHO = f"Echo: {PROMPT}"
HTML_502 = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>The service is waking up</h1></body></html>"
)
LIMIT = 5.0
"""Generous upper bound, in seconds, for anything that should be quick."""


def _model(server: DynasparkTestServer, **kwargs: Any) -> ChatDynaspark:
    kwargs.setdefault("max_retries", 2)
    kwargs.setdefault("endpoint", "form")
    return ChatDynaspark(base_url=server.url, **kwargs)


def _assert_clean(error: BaseException) -> None:
    """The error names the problem without copying the prompt."""
    assert PROMPT not in str(error)
    assert PROMPT not in repr(error)
    assert PROMPT not in str(getattr(error, "server_message", None))


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of milliseconds: the timing tests below check the real schedule."""
    monkeypatch.setattr(retries, "BACKOFF_BASE", 0.01)


def _closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listen backlog is full: connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    sockets = [listener]
    try:
        for _ in range(4):
            filler = socket.socket()
            sockets.append(filler)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        probe = socket.socket()
        sockets.append(probe)
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
        except TimeoutError:
            pass
        else:
            pytest.skip("this kernel completes connections beyond a full backlog")
        yield port
    finally:
        for sock in sockets:
            sock.close()


class SilentServer:
    """Accepts one HTTP request and never answers; notes when the client leaves."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.received = threading.Event()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
                    if b"\r\n\r\n" in data:
                        self.received.set()
            except ConnectionResetError:
                pass
        self.closed.set()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()
        self._thread.join(timeout=LIMIT)


class ForwardProxy:
    """A minimal HTTP forward proxy on loopback that records what it forwarded."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _forward(self, request: web.Request) -> web.Response:
        self.seen.append(request.raw_path)
        body = await request.read()
        headers = {"Content-Type": request.headers["Content-Type"]}
        async with (
            aiohttp.ClientSession(trust_env=False) as client,
            client.request(
                request.method, request.url, data=body, headers=headers
            ) as upstream,
        ):
            return web.Response(
                body=await upstream.read(),
                status=upstream.status,
                content_type=upstream.content_type,
            )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __enter__(self) -> ForwardProxy:
        self._loop.run_until_complete(self._start())
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        assert self._runner is not None
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in stream]


# --- Retries: each fault alone, then in sequences -----------------------------


@pytest.mark.usefixtures("fast_backoff")
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_each_transient_status_is_retried(
    server: DynasparkTestServer, status: int
) -> None:
    server.script(Reply(status=status, body=HTML_502), "recovered")
    start = time.monotonic()
    result = await _model(server).ainvoke(PROMPT)
    assert result.text == "recovered"
    assert len(server.requests) == 2
    assert server.requests[1].fields == server.requests[0].fields
    assert time.monotonic() - start < LIMIT


async def test_429_twice_then_success(server: DynasparkTestServer) -> None:
    limited = Reply(
        status=429, body={"error": "slow down"}, headers={"Retry-After": "0"}
    )
    server.script(limited, limited, "finally")
    start = time.monotonic()
    assert (await _model(server).ainvoke(PROMPT)).text == "finally"
    assert len(server.requests) == 3
    assert time.monotonic() - start < LIMIT


@pytest.mark.usefixtures("fast_backoff")
def test_503_then_success_sync(server: DynasparkTestServer) -> None:
    server.script(Reply(status=503, body=HTML_502), "awake")
    start = time.monotonic()
    assert _model(server).invoke(PROMPT).text == "awake"
    assert len(server.requests) == 2
    assert time.monotonic() - start < LIMIT


@pytest.mark.usefixtures("fast_backoff")
async def test_retries_exhausted_on_503(server: DynasparkTestServer) -> None:
    server.script(*[Reply(status=503, body=HTML_502)] * 4)
    start = time.monotonic()
    with pytest.raises(DynasparkAPIError) as caught:
        await _model(server, max_retries=2).ainvoke(PROMPT)
    error = caught.value
    assert isinstance(error, ModelAPIError)
    assert error.status_code == 503
    assert error.server_message == "502 Bad Gateway"
    assert "HTTP 503 after 3 attempts" in str(error)
    assert "502 Bad Gateway" in str(error)
    assert "max_retries" in str(error)
    _assert_clean(error)
    assert len(server.requests) == 3
    assert time.monotonic() - start < LIMIT


async def test_rate_limit_exhausted(server: DynasparkTestServer) -> None:
    limited = Reply(
        status=429, body={"error": "quota exceeded"}, headers={"Retry-After": "0"}
    )
    server.script(limited, limited)
    with pytest.raises(DynasparkRateLimitError) as caught:
        await _model(server, max_retries=1).ainvoke(PROMPT)
    error = caught.value
    assert isinstance(error, ModelRateLimitError)
    assert error.retry_after == 0.0
    assert error.server_message == "quota exceeded"
    for part in ("HTTP 429", "after 2 attempts", "quota exceeded", "rate_limiter"):
        assert part in str(error)
    _assert_clean(error)
    assert len(server.requests) == 2


async def test_max_retries_zero_means_one_attempt(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(status=503), "never asked")
    with pytest.raises(DynasparkAPIError, match="after 1 attempt"):
        await _model(server, max_retries=0).ainvoke(PROMPT)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "core_type"),
    [
        (400, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (401, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (403, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (404, DynasparkNotFoundError, ModelNotFoundError),
        (408, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (413, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (422, DynasparkInvalidRequestError, ModelInvalidRequestError),
        (501, DynasparkAPIError, ModelAPIError),
    ],
)
async def test_other_statuses_are_never_retried(
    server: DynasparkTestServer,
    status: int,
    error_type: type[DynasparkError],
    core_type: type[Exception],
) -> None:
    server.script(Reply(status=status, body={"error": "no such thing"}), "unused")
    with pytest.raises(error_type) as caught:  # pinned: "auto" would move on a 404
        await _model(server, max_retries=3, endpoint="form").ainvoke(PROMPT)
    error = caught.value
    assert isinstance(error, core_type)
    assert error.status_code == status  # type: ignore[attr-defined]
    assert error.server_message == "no such thing"  # type: ignore[attr-defined]
    assert "no such thing" in str(error)
    assert not error.is_retryable  # type: ignore[attr-defined]
    _assert_clean(error)
    assert len(server.requests) == 1


@pytest.mark.usefixtures("fast_backoff")
async def test_dropped_connection_is_retried(server: DynasparkTestServer) -> None:
    server.script(Reply(drop=True), "second time lucky")
    assert (await _model(server).ainvoke(PROMPT)).text == "second time lucky"
    assert len(server.requests) == 2


@pytest.mark.usefixtures("fast_backoff")
async def test_dropped_connections_exhaust_retries(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(drop=True), Reply(drop=True), "unused")
    with pytest.raises(DynasparkConnectionError) as caught:
        await _model(server, max_retries=1).ainvoke(PROMPT)
    assert isinstance(caught.value, ModelConnectionError)
    assert "after 2 attempts" in str(caught.value)
    assert f"{server.host}:{server.port}" in str(caught.value)
    _assert_clean(caught.value)
    assert len(server.requests) == 2


async def test_connection_refused_is_retried_then_raised(
    sleeps: list[float],
) -> None:
    port = _closed_port()
    model = ChatDynaspark(
        base_url=f"http://127.0.0.1:{port}", endpoint="form", max_retries=2
    )
    start = time.monotonic()
    with pytest.raises(DynasparkConnectionError) as caught:
        await model.ainvoke(PROMPT)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "after 3 attempts" in message
    assert "Check the network" in message
    _assert_clean(caught.value)
    assert len(sleeps) == 2
    assert time.monotonic() - start < LIMIT


@pytest.mark.usefixtures("fast_backoff")
def test_connect_timeout_is_separate_from_the_total(unanswered_port: int) -> None:
    model = ChatDynaspark(
        base_url=f"http://127.0.0.1:{unanswered_port}",
        connect_timeout=0.3,
        timeout=30,
        max_retries=1,
    )
    start = time.monotonic()
    with pytest.raises(DynasparkTimeoutError) as caught:
        model.invoke(PROMPT)
    elapsed = time.monotonic() - start
    assert isinstance(caught.value, ModelTimeoutError)
    assert "connect_timeout=0.3 s" in str(caught.value)
    assert "(2 attempts)" in str(caught.value)
    _assert_clean(caught.value)
    assert 0.5 <= elapsed < LIMIT


@pytest.mark.usefixtures("fast_backoff")
async def test_slow_reply_then_success(server: DynasparkTestServer) -> None:
    server.script(Reply(delay=3.0, text="too late"), "in time")
    start = time.monotonic()
    result = await _model(server, timeout=0.5, max_retries=1).ainvoke(PROMPT)
    assert result.text == "in time"
    assert len(server.requests) == 2
    assert time.monotonic() - start < LIMIT


@pytest.mark.usefixtures("fast_backoff")
async def test_a_mixed_run_of_faults_then_success(server: DynasparkTestServer) -> None:
    server.script(
        Reply(status=429, headers={"Retry-After": "0"}),
        Reply(status=502, body=HTML_502),
        Reply(drop=True),
        Reply(delay=3.0, text="too late"),
        "made it",
    )
    start = time.monotonic()
    model = _model(server, timeout=0.5, max_retries=4)
    assert (await model.ainvoke(PROMPT)).text == "made it"
    assert len(server.requests) == 5
    assert time.monotonic() - start < LIMIT


# --- Backoff and Retry-After -------------------------------------------------


async def test_backoff_grows_exponentially_with_jitter(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(*[Reply(status=503)] * 4, "ok")
    assert (await _model(server, max_retries=4).ainvoke(PROMPT)).text == "ok"
    base = retries.BACKOFF_BASE
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        full = base * 2**attempt
        assert 0.5 * full <= wait <= full


async def test_backoff_is_capped(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(*[Reply(status=500)] * 9)
    with pytest.raises(DynasparkAPIError):
        await _model(server, max_retries=8).ainvoke(PROMPT)
    assert len(sleeps) == 8
    assert all(wait <= retries.BACKOFF_MAX for wait in sleeps)
    assert sleeps[-1] >= 0.5 * retries.BACKOFF_MAX


def test_backoff_really_waits(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "BACKOFF_BASE", 0.2)
    server.script(Reply(status=503), Reply(status=503), "ok")
    start = time.monotonic()
    assert _model(server).invoke(PROMPT).text == "ok"
    elapsed = time.monotonic() - start
    # Two waits of at least half of 0.2 s and 0.4 s.
    assert 0.3 <= elapsed < LIMIT


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_honoured(
    server: DynasparkTestServer, sleeps: list[float], status: int
) -> None:
    server.script(Reply(status=status, headers={"Retry-After": "7"}), "ok")
    assert (await _model(server).ainvoke(PROMPT)).text == "ok"
    assert sleeps == [7.0]


async def test_retry_after_http_date_is_honoured(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=10)
    retry_after = format_datetime(when, usegmt=True)
    server.script(Reply(status=429, headers={"Retry-After": retry_after}), "ok")
    assert (await _model(server).ainvoke(PROMPT)).text == "ok"
    assert len(sleeps) == 1
    assert 8.0 <= sleeps[0] <= 10.0


@pytest.mark.parametrize("status", [429, 503])
async def test_a_wait_longer_than_the_cap_raises_at_once(
    server: DynasparkTestServer, sleeps: list[float], status: int
) -> None:
    server.script(Reply(status=status, headers={"Retry-After": "3600"}), "ok")
    with pytest.raises(DynasparkError, match="3600 s") as caught:
        await _model(server).ainvoke(PROMPT)
    assert caught.value.status_code == status
    assert getattr(caught.value, "retry_after", 3600.0) == 3600.0
    assert sleeps == []
    assert len(server.requests) == 1


async def test_a_wait_within_the_cap_is_honoured(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    wait = f"{retries.MAX_RETRY_AFTER:g}"
    server.script(Reply(status=429, headers={"Retry-After": wait}), "ok")
    assert (await _model(server).ainvoke(PROMPT)).text == "ok"
    assert sleeps == [retries.MAX_RETRY_AFTER]


async def test_unreadable_retry_after_falls_back_to_backoff(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "whenever"}), "ok")
    assert (await _model(server).ainvoke(PROMPT)).text == "ok"
    assert len(sleeps) == 1
    assert 0.5 * retries.BACKOFF_BASE <= sleeps[0] <= retries.BACKOFF_BASE


async def test_rate_limit_error_reports_retry_after(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "42"}))
    with pytest.raises(DynasparkRateLimitError) as caught:
        await _model(server, max_retries=0).ainvoke(PROMPT)
    assert caught.value.retry_after == 42.0
    assert "Wait 42 s" in str(caught.value)
    assert sleeps == []


# --- Timeouts on every path --------------------------------------------------


def _streaming_invoke(model: ChatDynaspark) -> Any:
    return model.model_copy(update={"streaming": True}).invoke(PROMPT)


CALLS: dict[str, Callable[[ChatDynaspark], Any]] = {
    "invoke": lambda model: model.invoke(PROMPT),
    "invoke-streaming": _streaming_invoke,
    "stream": lambda model: list(model.stream(PROMPT)),
    "batch": lambda model: model.batch([PROMPT, PROMPT]),
    "ainvoke": lambda model: asyncio.run(model.ainvoke(PROMPT)),
    "astream": lambda model: asyncio.run(_collect(model.astream(PROMPT))),
    "abatch": lambda model: asyncio.run(model.abatch([PROMPT, PROMPT])),
}


@pytest.mark.parametrize("call", CALLS)
def test_timeout_is_honoured_on_every_path(
    server: DynasparkTestServer, call: str
) -> None:
    server.script(*[Reply(delay=3.0, text="too late")] * 2)
    model = _model(server, timeout=0.3, max_retries=0)
    start = time.monotonic()
    with pytest.raises(DynasparkTimeoutError) as caught:
        CALLS[call](model)
    elapsed = time.monotonic() - start
    assert isinstance(caught.value, ModelTimeoutError)
    assert "timeout=0.3 s" in str(caught.value)
    assert "(1 attempt)" in str(caught.value)
    _assert_clean(caught.value)
    assert 0.25 <= elapsed < LIMIT


def test_batch_returns_errors_as_exceptions_never_as_content(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(delay=3.0, text="too late"), Reply(status=400))
    model = _model(server, timeout=0.3, max_retries=0)
    results = model.batch([PROMPT, PROMPT], return_exceptions=True)
    assert sorted(type(result).__name__ for result in results) == [
        "DynasparkInvalidRequestError",
        "DynasparkTimeoutError",
    ]


# --- A 200 that is not the reply ---------------------------------------------


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(body=HTML_502, status=200), "an HTML page"),
        (Reply(body="upstream busy", status=200), "not JSON"),
        (Reply(body={"error": "Model overloaded"}, status=200), "Model overloaded"),
        (Reply(body={"text": "hi"}, status=200), "no `response` field"),
        (Reply(body={"response": 42}, status=200), "non-string `response`"),
    ],
    ids=["html", "text", "error", "missing", "not-a-string"],
)
@pytest.mark.parametrize("call", ["invoke", "ainvoke", "stream", "astream"])
def test_a_200_that_is_not_a_reply_is_an_error(
    server: DynasparkTestServer, reply: Reply, words: str, call: str
) -> None:
    server.script(reply, "unused")
    with pytest.raises(DynasparkResponseError) as caught:
        CALLS[call](_model(server))
    assert isinstance(caught.value, ModelAPIError)
    assert caught.value.status_code == 200
    assert words in str(caught.value)
    _assert_clean(caught.value)
    assert len(server.requests) == 1


# --- Message hygiene ---------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=400, body={"error": f"Refused: {PROMPT}"}),
        Reply(status=503, body=f"<html><title>Busy with {PROMPT}</title></html>"),
        Reply(status=500, body=f"Traceback: user_input={PROMPT}"),
        Reply(status=429, body={"error": f"Too many: {PROMPT}"}),
        Reply(status=200, body={"error": f"Blocked: {PROMPT}"}),
        Reply(status=200, body=f"You asked: {PROMPT}"),
        Reply(status=200, body={"answer": PROMPT}),
    ],
    ids=["400", "503-html", "500-text", "429", "200-error", "200-text", "200-json"],
)
async def test_errors_never_quote_the_prompt(
    server: DynasparkTestServer, reply: Reply
) -> None:
    server.script(reply)
    with pytest.raises(DynasparkError) as caught:
        await _model(server, max_retries=0).ainvoke(PROMPT)
    _assert_clean(caught.value)


async def test_errors_never_show_credentials(server: DynasparkTestServer) -> None:
    port = _closed_port()
    for model in (
        ChatDynaspark(
            base_url=f"http://alice:s3cret@127.0.0.1:{port}",
            endpoint="form",
            max_retries=0,
        ),
        ChatDynaspark(
            base_url=server.url,
            proxy=f"http://bob:hunter2@127.0.0.1:{port}",
            max_retries=0,
        ),
    ):
        with pytest.raises(DynasparkConnectionError) as caught:
            await model.ainvoke(PROMPT)
        assert "s3cret" not in str(caught.value)
        assert "hunter2" not in str(caught.value)
        _assert_clean(caught.value)
    assert len(server.requests) == 0


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1:21", "http://"])
async def test_an_unusable_url_fails_once_as_an_input_error(base_url: str) -> None:
    with pytest.raises(DynasparkInputError, match="base_url"):
        await ChatDynaspark(base_url=base_url, endpoint="form", max_retries=3).ainvoke(
            PROMPT
        )


# --- One pooled connection ---------------------------------------------------


async def test_fifty_sequential_async_calls_use_one_connection(
    server: DynasparkTestServer,
) -> None:
    first, second = _model(server), _model(server, model="gemini-2.0-flash")
    for i in range(50):
        model = first if i % 2 else second
        assert (await model.ainvoke(f"call {i}")).text == f"Echo: call {i}"
    assert len(server.requests) == 50
    assert server.connections == 1


def test_fifty_sequential_sync_calls_use_one_connection(
    server: DynasparkTestServer,
) -> None:
    model = _model(server)
    for i in range(50):
        if i % 5:
            assert model.invoke(f"call {i}").text == f"Echo: call {i}"
        else:
            assert "".join(c.text for c in model.stream(f"call {i}")) == (
                f"Echo: call {i}"
            )
    assert len(server.requests) == 50
    assert server.connections == 1


@pytest.mark.usefixtures("fast_backoff")
async def test_error_answers_keep_the_connection(server: DynasparkTestServer) -> None:
    server.script(
        Reply(status=503, body=HTML_502),
        Reply(status=429, headers={"Retry-After": "0"}),
        "ok",
        Reply(status=400, body={"error": "bad"}),
    )
    model = _model(server)
    assert (await model.ainvoke(PROMPT)).text == "ok"
    with pytest.raises(DynasparkInvalidRequestError):
        await model.ainvoke(PROMPT)
    assert (await model.ainvoke(PROMPT)).text == ECHO
    assert len(server.requests) == 5
    assert server.connections == 1


async def test_requests_identify_the_client(server: DynasparkTestServer) -> None:
    await _model(server).ainvoke(PROMPT)
    headers = server.requests[0].headers
    assert headers["User-Agent"] == transport.USER_AGENT
    assert server.requests[0].content_type == "application/x-www-form-urlencoded"


@pytest.mark.usefixtures("fast_backoff")
async def test_an_upload_is_sent_again_on_retry(server: DynasparkTestServer) -> None:
    server.script(Reply(status=502), "seen it")
    settings = TransportSettings(
        url=f"{server.url}/generate_response",
        timeout=10,
        connect_timeout=5,
        max_retries=1,
    )
    upload = Upload("image_1.png", "image/png", b"\x89PNG fake bytes")
    body = await transport.post_form(
        settings, {"user_input": PROMPT, "ai_model": "gemini-2.0-flash"}, upload
    )
    assert json.loads(body) == {"response": "seen it"}
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.file is not None
        assert request.file.data == upload.data
        assert request.fields["user_input"] == PROMPT


# --- Sessions: per loop, closed cleanly, never bound to a closed loop --------


def test_closed_loops_are_not_kept_alive(server: DynasparkTestServer) -> None:
    model = _model(server)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def call() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return (await model.ainvoke(PROMPT)).text

    for _ in range(3):
        assert asyncio.run(call()) == ECHO
    with asyncio.Runner() as runner:
        assert runner.run(call()) == ECHO
        assert runner.run(call()) == ECHO
    gc.collect()
    assert [ref() for ref in loops] == [None] * len(loops)
    assert len(server.requests) == 5
    assert server.connections == 4


def test_background_loop_shutdown_closes_its_session_and_loop(
    server: DynasparkTestServer,
) -> None:
    """What runs at interpreter exit for the loop behind the sync API."""
    background = sync._BackgroundLoop()
    loop = background.loop()
    settings = TransportSettings(
        url=f"{server.url}/generate_response",
        timeout=10,
        connect_timeout=5,
        max_retries=0,
    )

    async def call() -> aiohttp.ClientSession:
        await transport.post_form(settings, {"user_input": PROMPT}, None)
        return (await pools.pool_for(settings.max_connections)).session

    session = asyncio.run_coroutine_threadsafe(call(), loop).result(LIMIT)
    assert not session.closed
    background.shutdown()
    assert session.closed
    assert loop.is_closed()
    assert loop not in pools._sessions
    assert len(server.requests) == 1


async def test_sync_invoke_inside_a_running_loop(server: DynasparkTestServer) -> None:
    """As a notebook cell does: no `nest_asyncio`, the caller's loop untouched."""
    loop = asyncio.get_running_loop()
    run_until_complete = loop.run_until_complete
    model = _model(server)
    assert model.invoke(PROMPT).text == ECHO
    assert [c.text for c in model.stream(PROMPT)] == [ECHO]
    assert [r.text for r in model.batch([PROMPT, PROMPT])] == [ECHO, ECHO]
    assert asyncio.get_running_loop() is loop
    assert loop.run_until_complete == run_until_complete
    assert "nest_asyncio" not in sys.modules
    assert (await model.ainvoke(PROMPT)).text == ECHO


_HYGIENE_SCRIPT = """
import asyncio, gc, json, sys, urllib.request
from langchain_dynaspark import ChatDynaspark, DynasparkTimeoutError

url = sys.argv[1]
model = ChatDynaspark(base_url=url, endpoint="form", max_retries=0)


def script(*replies):
    request = urllib.request.Request(
        url + "/__admin__/script",
        data=json.dumps(list(replies)).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).read()


async def calls():
    await model.ainvoke("a")
    [chunk async for chunk in model.astream("b")]
    await model.abatch(["c", "d", "e"])
    return model.invoke("from inside a running loop").text


for _ in range(5):
    asyncio.run(calls())
    model.invoke("sync")
    list(model.stream("sync"))
    model.batch(["x", "y"])
with asyncio.Runner() as runner:
    runner.run(model.ainvoke("runner one"))
    runner.run(model.ainvoke("runner two"))


async def cancelled():
    task = asyncio.create_task(model.ainvoke("slow"))
    await asyncio.sleep(0.3)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"


script({"delay": 2.0, "text": "slow"})
print(asyncio.run(cancelled()))
script({"delay": 2.0, "text": "slow"}, {"delay": 2.0, "text": "slow"})
impatient = model.model_copy(update={"timeout": 0.3})
try:
    impatient.invoke("t")
except DynasparkTimeoutError:
    print("sync-timeout")
try:
    asyncio.run(impatient.ainvoke("t"))
except DynasparkTimeoutError:
    print("async-timeout")
gc.collect()
print("done")
"""


def test_no_unclosed_session_warnings(server: DynasparkTestServer) -> None:
    """Many loops, sync calls, a cancel and timeouts: no resource warnings at all."""
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            _HYGIENE_SCRIPT,
            server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDEVMODE": "1", "NO_PROXY": "*"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "cancelled",
        "sync-timeout",
        "async-timeout",
        "done",
    ]
    for trouble in ("unclosed", "resourcewarning", "traceback", "never awaited"):
        assert trouble not in result.stderr.lower(), result.stderr
    assert len(server.requests) == 5 * 10 + 2 + 1 + 2


# --- Cancellation ------------------------------------------------------------


async def test_cancelling_ainvoke_cancels_the_request(
    server: DynasparkTestServer,
) -> None:
    with SilentServer() as silent:
        model = ChatDynaspark(
            base_url=silent.url, endpoint="form", max_retries=0, timeout=60
        )
        task = asyncio.create_task(model.ainvoke(PROMPT))
        assert await asyncio.to_thread(silent.received.wait, LIMIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(silent.closed.wait, LIMIT)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert (await _model(server).ainvoke(PROMPT)).text == ECHO


async def test_a_deadline_around_ainvoke_closes_the_request() -> None:
    with SilentServer() as silent:
        model = ChatDynaspark(
            base_url=silent.url, endpoint="form", max_retries=0, timeout=60
        )
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(model.ainvoke(PROMPT), 0.5)
        assert time.monotonic() - start < LIMIT
        assert await asyncio.to_thread(silent.closed.wait, LIMIT)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_during_a_retry_wait_stops_retrying(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(status=503, headers={"Retry-After": "30"}), "never sent")
    task = asyncio.create_task(_model(server).ainvoke(PROMPT))
    start = time.monotonic()
    assert await asyncio.to_thread(_eventually, lambda: server.requests)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < LIMIT
    await asyncio.sleep(0.2)
    assert len(server.requests) == 1


async def _other_tasks() -> int:
    return len(asyncio.all_tasks() - {asyncio.current_task()})


def _eventually(condition: Callable[[], object]) -> bool:
    """Poll `condition` until it holds, for at most `LIMIT` seconds."""
    deadline = time.monotonic() + LIMIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_interrupting_a_sync_invoke_cancels_the_request(
    server: DynasparkTestServer,
) -> None:
    """Ctrl-C while `invoke` waits cancels the request on the background loop."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("KeyboardInterrupt is delivered to the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("something else handles SIGINT here")
    main = threading.main_thread().ident
    assert main is not None
    with SilentServer() as silent:
        model = ChatDynaspark(
            base_url=silent.url, endpoint="form", max_retries=0, timeout=60
        )

        def interrupt_once_sent() -> None:
            if silent.received.wait(LIMIT):
                signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=interrupt_once_sent, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            model.invoke(PROMPT)
        assert time.monotonic() - start < LIMIT
        assert silent.closed.wait(LIMIT)
    assert _eventually(lambda: transport.run_sync(_other_tasks()) == 0)
    assert _model(server).invoke(PROMPT).text == ECHO


# --- Proxies -----------------------------------------------------------------


@pytest.fixture
def no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_env_proxy")
def test_proxy_argument(server: DynasparkTestServer) -> None:
    with ForwardProxy() as proxy:
        model = _model(server, proxy=proxy.url)
        assert model.invoke(PROMPT).text == ECHO
        assert asyncio.run(model.ainvoke(PROMPT)).text == ECHO
    target = f"{server.url}/generate_response"
    assert proxy.seen == [target, target]
    assert len(server.requests) == 2


@pytest.mark.usefixtures("no_env_proxy")
def test_proxy_from_the_environment(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        model = _model(server)
        assert model.invoke(PROMPT).text == ECHO
        assert asyncio.run(model.ainvoke(PROMPT)).text == ECHO
        assert len(proxy.seen) == 2

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert model.invoke(PROMPT).text == ECHO
        assert len(proxy.seen) == 2
    assert len(server.requests) == 3


@pytest.mark.usefixtures("no_env_proxy", "fast_backoff")
def test_unreachable_proxy_is_a_connection_error(server: DynasparkTestServer) -> None:
    port = _closed_port()
    model = _model(server, proxy=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(DynasparkConnectionError, match="proxy"):
        model.invoke(PROMPT)
    assert len(server.requests) == 0


# --- rate_limiter and cache from BaseChatModel -------------------------------


class CountingRateLimiter(InMemoryRateLimiter):
    """An `InMemoryRateLimiter` that counts how often it is consulted."""

    def __init__(self) -> None:
        super().__init__(
            requests_per_second=10, check_every_n_seconds=0.01, max_bucket_size=1
        )
        self.consulted = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.consulted += 1
        return super().acquire(blocking=blocking)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.consulted += 1
        return await super().aacquire(blocking=blocking)


def test_rate_limiter_spaces_sync_calls(server: DynasparkTestServer) -> None:
    limiter = CountingRateLimiter()
    model = _model(server, rate_limiter=limiter)
    start = time.monotonic()
    for _ in range(4):
        assert model.invoke(PROMPT).text == ECHO
    assert limiter.consulted == 4
    assert len(server.requests) == 4
    # One token per 0.1 s, starting from an empty bucket.
    assert time.monotonic() - start >= 0.3


async def test_rate_limiter_spaces_async_calls(server: DynasparkTestServer) -> None:
    limiter = CountingRateLimiter()
    model = _model(server, rate_limiter=limiter)
    start = time.monotonic()
    results = await model.abatch([PROMPT] * 4)
    assert [r.text for r in results] == [ECHO] * 4
    assert limiter.consulted == 4
    assert len(server.requests) == 4
    assert time.monotonic() - start >= 0.3


def test_cache_hit_makes_no_request(server: DynasparkTestServer) -> None:
    model = _model(server, cache=InMemoryCache())
    first = model.invoke(PROMPT)
    assert first.text == ECHO
    assert model.invoke(PROMPT).text == ECHO
    assert asyncio.run(model.ainvoke(PROMPT)).text == ECHO
    assert len(server.requests) == 1
    assert model.invoke("something else").text == "Echo: something else"
    assert len(server.requests) == 2


def test_errors_are_not_cached(server: DynasparkTestServer) -> None:
    model = _model(server, cache=InMemoryCache(), max_retries=0)
    server.script(Reply(status=503))
    with pytest.raises(DynasparkAPIError):
        model.invoke(PROMPT)
    assert model.invoke(PROMPT).text == ECHO
    assert model.invoke(PROMPT).text == ECHO
    assert len(server.requests) == 2


def test_cache_hit_does_not_consult_the_rate_limiter(
    server: DynasparkTestServer,
) -> None:
    limiter = CountingRateLimiter()
    model = _model(server, cache=InMemoryCache(), rate_limiter=limiter)
    for _ in range(3):
        assert model.invoke(PROMPT).text == ECHO
    assert limiter.consulted == 1
    assert len(server.requests) == 1


# --- Pickling: ship a model to worker processes ------------------------------


def _ask_in_worker(model: ChatDynaspark, prompt: str) -> tuple[int, str, str]:
    """Run in a worker process: one sync and one async call."""
    sync = model.invoke(prompt).text
    in_loop = asyncio.run(model.ainvoke(prompt)).text
    return os.getpid(), sync, in_loop


def test_a_used_model_pickles_without_session_loop_or_thread(
    server: DynasparkTestServer,
) -> None:
    model = _model(server, timeout=33, max_retries=4)
    model.invoke(PROMPT)
    asyncio.run(model.ainvoke(PROMPT))
    data = pickle.dumps(model)
    for unwanted in (b"aiohttp", b"asyncio", b"threading", b"_thread", b"Session"):
        assert unwanted not in data
    copy = pickle.loads(data)
    assert copy == model
    assert copy.invoke(PROMPT).text == ECHO
    assert len(server.requests) == 3


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_model_runs_in_a_process_pool(server: DynasparkTestServer, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method on this platform")
    model = _model(server)
    assert model.invoke("warm up the parent's session").text.startswith("Echo")
    context = multiprocessing.get_context(method)
    prompts = [f"worker call {i}" for i in range(4)]
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(_ask_in_worker, [model] * 4, prompts))
    assert all(pid != os.getpid() for pid, _, _ in results)
    assert [(sync, in_loop) for _, sync, in_loop in results] == [
        (f"Echo: {p}", f"Echo: {p}") for p in prompts
    ]
    assert len(server.requests) == 1 + 2 * len(prompts)
    assert model.invoke(PROMPT).text == ECHO


def _invoke_or_fail(model: ChatDynaspark) -> None:
    """Run in a forked child: exits non-zero unless the call works."""
    assert model.invoke(PROMPT).text == ECHO


def test_fork_while_another_thread_makes_a_session(
    server: DynasparkTestServer,
) -> None:
    """A lock held by another thread at `fork` must not deadlock the child."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no 'fork' start method on this platform")
    context = multiprocessing.get_context("fork")
    with pools._sessions_lock:
        child = context.Process(target=_invoke_or_fail, args=(_model(server),))
        child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert len(server.requests) == 1


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_errors_come_back_from_worker_processes(
    server: DynasparkTestServer, method: str
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method on this platform")
    server.script(Reply(status=503, body=HTML_502, headers={"Retry-After": "0"}))
    model = _model(server, max_retries=0)
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_ask_in_worker, model, PROMPT)
        with pytest.raises(DynasparkAPIError) as caught:
            future.result(timeout=60)
    assert caught.value.status_code == 503
    assert caught.value.server_message == "502 Bad Gateway"
    assert "HTTP 503 after 1 attempt" in str(caught.value)
    _assert_clean(caught.value)
