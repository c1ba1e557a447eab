"""The back-off every caller of one service shares, and what governs a wait.

Against the local server's limit on requests answered at once (a `429` with
`Retry-After` over it): many gathered calls, and calls from several threads with
their own loops, all come through, waiting behind one shared back-off with
jitter instead of failing. Also: which answers the `X-RateLimit-*` window
governs, resets that are in the past, in milliseconds, or not numbers, and a
stream that keeps its connection keeping its slot too, so that queueing for a
connection is not counted in `timeout`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkRateLimitError,
)
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply
from langchain_dynaspark.transport import backoff, retries

PROMPT = "Plan the quokka heist at Zanzibar pier 7731"
HANG = 120.0
"""Generous bound, in seconds, that only a hang exceeds."""


def _model(server: DynasparkTestServer, **kwargs: Any) -> ChatDynaspark:
    return ChatDynaspark(base_url=server.url, endpoint="api", **kwargs)


@pytest.fixture
def busy_server(server: DynasparkTestServer) -> Iterator[DynasparkTestServer]:
    """The local server, answering at most 5 requests at once (`Retry-After: 1`)."""
    server.max_concurrent = 5
    server.busy_retry_after = "1"
    try:
        yield server
    finally:
        server.max_concurrent = None


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every `asyncio.sleep` longer than the server's own delays; still waited."""
    real_sleep = asyncio.sleep
    asked: list[float] = []

    async def record(delay: float, result: Any = None) -> Any:
        if delay > 0.1:  # the server's own delays here are 0.1 s
            asked.append(delay)
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", record)
    return asked


# --- Concurrent callers back off together -----------------------------------------


async def test_gathered_calls_wait_out_a_concurrency_limit_together(
    busy_server: DynasparkTestServer, waits: list[float]
) -> None:
    busy_server.script(*[Reply(text=f"ok {i}", delay=0.1) for i in range(100)])
    model = _model(busy_server)  # default max_retries
    start = time.monotonic()
    results = await asyncio.gather(
        *(model.ainvoke(f"{PROMPT} {i}") for i in range(100)), return_exceptions=True
    )
    assert time.monotonic() - start < HANG
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert sorted(r.text for r in results if not isinstance(r, BaseException)) == (
        sorted(f"ok {i}" for i in range(100))
    )
    refused = len(busy_server.requests) - 100
    assert refused >= 1  # the limit was hit, and waited out
    # The waits behind the one back-off are spread, never all the same, and
    # never longer than what the service asked plus the jitter.
    assert len(set(waits)) > 1
    assert any(wait > 1.0 for wait in waits)  # `Retry-After: 1`, plus jitter
    assert all(wait <= 1.5 for wait in waits)  # half of the wait at most


def test_threads_with_their_own_loops_share_the_back_off(
    busy_server: DynasparkTestServer,
) -> None:
    busy_server.max_concurrent = 10
    busy_server.script(*[Reply(text="ok", delay=0.1) for _ in range(120)])
    model = _model(busy_server)
    outcomes: list[list[object]] = []

    async def forty() -> list[object]:
        return await asyncio.gather(
            *(model.ainvoke(PROMPT) for _ in range(40)), return_exceptions=True
        )

    def run() -> None:
        outcomes.append(asyncio.run(forty()))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG)
    assert not any(thread.is_alive() for thread in threads)
    results = [result for outcome in outcomes for result in outcome]
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(results) == 120
    assert len(busy_server.requests) > 120  # the limit was hit, and waited out


async def test_callers_queue_behind_a_429_without_spending_retries(
    server: DynasparkTestServer,
) -> None:
    """One caller's 429 holds back the calls that start during its wait."""
    server.script(Reply(status=429, headers={"Retry-After": "2"}), *(["ok"] * 11))
    model = _model(server, max_retries=1)
    first = asyncio.ensure_future(model.ainvoke(PROMPT))
    for _ in range(500):
        if server.requests:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the 429 is in: the gate is closed
    others = _model(server, max_retries=0)
    later = [asyncio.ensure_future(others.ainvoke(PROMPT)) for _ in range(10)]
    await asyncio.sleep(0.3)  # well inside the 2 s wait
    sent_during_the_wait = len(server.requests)
    results = await asyncio.gather(first, *later)
    assert [r.text for r in results] == ["ok"] * 11
    assert sent_during_the_wait == 1  # none of the 10 went out during the wait
    assert len(server.requests) == 12


# --- What governs a wait ------------------------------------------------------------


async def test_a_503_keeps_its_backoff_whatever_the_rate_limit_window(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    in_an_hour = str(int(time.time()) + 3600)
    in_20_s = str(int(time.time()) + 20)
    server.script(
        Reply(
            status=503,
            headers={"X-RateLimit-Remaining": "57", "X-RateLimit-Reset": in_an_hour},
        ),
        Reply(
            status=503,
            headers={"X-RateLimit-Remaining": "57", "X-RateLimit-Reset": in_20_s},
        ),
        "ok",
    )
    assert (await _model(server, max_retries=2).ainvoke(PROMPT)).text == "ok"
    assert len(server.requests) == 3
    base = retries.BACKOFF_BASE
    assert len(sleeps) == 2
    assert 0.5 * base <= sleeps[0] <= base
    assert base <= sleeps[1] <= 2 * base


async def test_a_spent_window_governs_any_refusal(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    in_20_s = str(int(time.time()) + 20)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": in_20_s}
    server.script(Reply(status=503, headers=headers), "ok")
    assert (await _model(server, max_retries=1).ainvoke(PROMPT)).text == "ok"
    assert len(sleeps) == 1
    assert 18.0 <= sleeps[0] <= 20.0


async def test_a_reset_in_the_past_falls_back_to_backoff(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    past = str(int(time.time()) - 100)
    server.script(*[Reply(status=429, headers={"X-RateLimit-Reset": past})] * 6)
    with pytest.raises(DynasparkRateLimitError) as caught:
        await _model(server, max_retries=5).ainvoke(PROMPT)
    assert len(server.requests) == 6
    assert len(sleeps) == 5
    for attempt, wait in enumerate(sleeps):
        full = retries.BACKOFF_BASE * 2**attempt
        assert 0.5 * full <= wait <= full
    assert caught.value.retry_after is None
    assert "Wait 0 s" not in str(caught.value)


async def test_a_reset_in_milliseconds_is_a_unix_time(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    reset = str(int((time.time() + 20) * 1000))
    server.script(Reply(status=429, headers={"X-RateLimit-Reset": reset}), "ok")
    assert (await _model(server, max_retries=1).ainvoke(PROMPT)).text == "ok"
    assert len(sleeps) == 1
    assert 18.0 <= sleeps[0] <= 20.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
async def test_non_numbers_never_reach_the_rate_limit_metadata(
    server: DynasparkTestServer, sleeps: list[float], value: str
) -> None:
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": value,
        "X-RateLimit-Reset": value,
    }
    server.script(
        Reply(status=429, headers={"X-RateLimit-Reset": value}),
        Reply(text="ok", headers=headers),
    )
    reply = await _model(server, max_retries=1).ainvoke(PROMPT)
    assert reply.response_metadata["rate_limit"] == {"limit": 100}
    assert len(sleeps) == 1
    assert 0.5 * retries.BACKOFF_BASE <= sleeps[0] <= retries.BACKOFF_BASE


# --- Queue time is not timeout --------------------------------------------------------


async def test_a_call_queued_behind_open_streams_is_not_timed_out(
    server: DynasparkTestServer,
) -> None:
    server.script(
        Reply(events=["slow ", "stream"], event_delay=1.5),
        Reply(events=["slow ", "stream"], event_delay=1.5),
        "ok",
    )
    streaming = _model(server, max_connections=2, timeout=30)
    streams = [streaming.astream(PROMPT) for _ in range(2)]
    firsts = [await anext(stream) for stream in streams]
    assert [chunk.text for chunk in firsts] == ["slow "] * 2

    async def drain(stream: Any) -> str:
        return "".join([chunk.text async for chunk in stream])

    rests = [asyncio.ensure_future(drain(stream)) for stream in streams]
    reply = await asyncio.wait_for(
        _model(server, max_connections=2, timeout=2, max_retries=0).ainvoke(PROMPT),
        HANG,
    )
    assert reply.text == "ok"
    assert len(server.requests) == 3
    assert await asyncio.gather(*rests) == ["stream", "stream"]


async def test_a_call_made_while_holding_a_streamed_piece_gets_the_slot(
    server: DynasparkTestServer,
) -> None:
    # One slot: the stream's whole body arrives while its consumer waits on
    # the nested call, and with it go the connection and the slot.
    server.script(Reply(events=["one ", "two ", "three"], event_delay=0.1))
    model = _model(server, max_connections=1, max_retries=0)
    nested: list[str] = []

    async def consume() -> str:
        text = ""
        async for chunk in model.astream(PROMPT):
            text += chunk.text
            if chunk.text and not nested:
                nested.append((await model.ainvoke("nested")).text)
        return text

    assert await asyncio.wait_for(consume(), HANG) == "one two three"
    assert nested == ["Echo: nested"]


async def test_a_429_its_caller_gives_up_on_still_holds_the_others_back(
    server: DynasparkTestServer, waits: list[float]
) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "1"}), "ok")
    with pytest.raises(DynasparkRateLimitError):
        await _model(server, max_retries=0).ainvoke(PROMPT)
    assert waits == []  # the caller that got it did not wait

    reply = await _model(server, max_retries=0).ainvoke(PROMPT)

    assert reply.text == "ok"
    [held] = waits  # the other waited at the shared gate before sending
    assert 0.5 < held <= 1.0 + backoff.JITTER
