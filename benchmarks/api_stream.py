"""The API endpoint streaming: a 1,000-event reply, and the first event's lag.

Per event, `astream` and sync `stream` against a bare aiohttp SSE line reader
plus the do-nothing model streaming 1,000 chunks; and the time from the server
writing the first event (its own timestamp) to the client having it.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import harness
from floor import BareApiClient, DoNothingStreamingModel
from harness import (
    FIRST_PROMPT,
    STREAM_EVENTS,
    STREAM_PROMPT,
    Call,
    Goal,
    Options,
    Sample,
    Section,
    row,
)

GOAL_FIRST_EVENT_MS = {"astream": 1.0, "stream": 2.0}
"""Most milliseconds by which the first event may lag the bare reader's."""
FIRST_LABELS = {
    "bare": "bare aiohttp SSE line reader",
    "astream": "ChatDynaspark.astream",
    "stream": "ChatDynaspark.stream (sync)",
}


async def measure(url: str, options: Options) -> dict[str, Any]:
    """CPU and wall time per stream, after a warm-up; then first-event lags."""
    from langchain_dynaspark import ChatDynaspark

    bare = BareApiClient(url)
    streaming = DoNothingStreamingModel()
    model = ChatDynaspark(endpoint="api", base_url=url)

    async def sync_stream() -> None:
        for _ in model.stream(STREAM_PROMPT):
            pass

    contenders: dict[str, Call] = {
        "bare": lambda: bare.stream(STREAM_PROMPT),
        "nothing.astream": lambda: harness.drain(streaming.astream(STREAM_PROMPT)),
        "astream": lambda: harness.drain(model.astream(STREAM_PROMPT)),
        "stream": sync_stream,
    }
    try:
        streams = await harness.warmed_sequential(
            url,
            contenders,
            warm_up=1,
            rounds=options.rounds,
            calls=max(2, options.calls // 20),
        )
        first = await first_event_latency(url, bare, model, max(3, options.calls // 4))
        return {"streams": streams, "first_event_ms": first}
    finally:
        await bare.close()


async def first_event_latency(
    url: str, bare: BareApiClient, model: Any, calls: int
) -> dict[str, float]:
    """Median ms from the server writing the first event to the client having it."""

    async def bare_first() -> float:
        first: list[float] = []
        await bare.stream(FIRST_PROMPT, first)
        return first[0]

    async def astream_first() -> float:
        seen: float | None = None
        async for _ in model.astream(FIRST_PROMPT):
            seen = seen or time.time()
        assert seen is not None
        return seen

    async def stream_first() -> float:
        seen: float | None = None
        for _ in model.stream(FIRST_PROMPT):
            seen = seen or time.time()
        assert seen is not None
        return seen

    contenders = {"bare": bare_first, "astream": astream_first, "stream": stream_first}
    lags: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    for turn in range(calls):
        random.Random(turn).shuffle(order)
        for name, first in order:
            seen = await first()
            stats = await asyncio.to_thread(harness.admin, url, "stats")
            lags[name].append((seen - stats["first_write_at"]) * 1e3)
    return {name: statistics.median(values) for name, values in lags.items()}


def section(figures: dict[str, Any]) -> Section:
    """The per-event and first-event rows, under the API's `ainvoke`; goals."""
    streams: dict[str, Sample] = figures["streams"]
    bare, nothing = streams["bare"], streams["nothing.astream"]
    floor = (bare.cpu_us + nothing.cpu_us) / STREAM_EVENTS
    lines = [
        f"streaming a {STREAM_EVENTS:,}-event reply, per event",
        row("bare aiohttp SSE line reader (floor: HTTP)", bare.cpu_us / STREAM_EVENTS),
        row(
            "do-nothing BaseChatModel.astream (floor: LangChain)",
            nothing.cpu_us / STREAM_EVENTS,
        ),
    ]
    ratios: dict[str, float] = {}
    for method in ("astream", "stream"):
        per_event = streams[method].cpu_us / STREAM_EVENTS
        ratios[method] = per_event / floor
        lines.append(
            row(
                f"ChatDynaspark.{method}",
                f"{per_event:.1f}",
                f"{streams[method].wall_us / STREAM_EVENTS:.1f}",
                f"{ratios[method]:.2f}x",
            )
        )
    first = figures["first_event_ms"]
    lines.append("first event: server writes it -> the client has it (median ms)")
    lines += [
        row(label, "", f"{first[name]:.2f}") for name, label in FIRST_LABELS.items()
    ]
    goals = [
        harness.ratio_goal(
            f"{STREAM_EVENTS:,}-event astream CPU per event"
            f" ≤ {harness.GOAL_CPU}x floor",
            ratios["astream"],
        ),
        *(
            Goal(
                f"first event via {method} within {limit:g} ms of the bare reader",
                f"+{first[method] - first['bare']:.2f} ms",
                first[method] - first["bare"] <= limit,
            )
            for method, limit in GOAL_FIRST_EVENT_MS.items()
        ),
    ]
    return Section(lines, goals, continued=True)


def run(options: Options) -> Section:
    with harness.local_server() as url:
        return section(asyncio.run(measure(url, options)))
