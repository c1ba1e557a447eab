"""What every benchmark scenario shares: options, the server, timing, the table.

A scenario is a module with `run(options) -> Section`: it measures (starting the
local test server itself if it needs one, with `local_server`), and returns its
rows of the table and its goals. `run.py` lists the scenarios, in table order.

The local test server runs in its own process, so the client's cost is neither
hidden by nor mixed with the server's. Per call, the client process's CPU time
(`time.process_time`: all its threads) and the wall time are measured.
Sequential contenders take turns call by call, in a shuffled order each time,
so drift, cache and CPU-frequency effects fall on all of them alike; concurrent
batches (`asyncio.gather`) take turns batch by batch. Figures are medians over
rounds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
MODEL = "gemini-2.0-flash"
STREAM_EVENTS = 1000
STREAM_PROMPT = f"stream {STREAM_EVENTS} events"
FIRST_PROMPT = "first event"
GOAL_CPU = 1.25
"""Most CPU per call `ChatDynaspark` may cost, as a multiple of the floor."""

HISTORY: list[BaseMessage] = [
    SystemMessage(
        "You are a concise assistant for a travel agency. Answer in at most three "
        "sentences and mention prices in euros."
    ),
    HumanMessage("What is the best time of year to visit Lisbon?"),
    AIMessage(
        "Late spring (May and June) and early autumn (September and October): "
        "warm, sunny and far less crowded than July and August."
    ),
    HumanMessage("And what should I pack for a week there in October?"),
]
"""A realistic 4-message conversation, sent by every contender."""


@dataclass(frozen=True)
class Options:
    rounds: int
    calls: int
    concurrent_rounds: int
    concurrency: int
    import_runs: int
    images: bool
    smoke: bool


@dataclass(frozen=True)
class Goal:
    text: str
    value: str
    met: bool


@dataclass(frozen=True)
class Section:
    """A scenario's rows of the table, and its goals with their verdicts."""

    lines: list[str]
    goals: list[Goal] = field(default_factory=list)
    continued: bool = False
    """Printed right under the section before it, with no blank line between."""


Scenario = Callable[[Options], Section]
Call = Callable[[], Awaitable[object]]


# --- the local server, in its own process --------------------------------------

_SERVER = f"""
import sys
from langchain_dynaspark.testing.server import DynasparkTestServer, Rule
rules = [
    Rule("^{STREAM_PROMPT}$", " ".join(["word"] * {STREAM_EVENTS})),
    Rule("^{FIRST_PROMPT}$", "one two three"),
]
server = DynasparkTestServer(rules=rules).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def child_env() -> dict[str, str]:
    """Environment for child processes: this checkout importable, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def local_server() -> Iterator[str]:
    """Start the test server in a child process; yield its base URL.

    The child serves until its stdin closes, so it ends with us in any case.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            msg = "the local Dynaspark test server did not start"
            raise RuntimeError(msg)
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def admin(url: str, what: str) -> dict[str, Any]:
    """`stats` or `reset` on the test server's admin endpoint."""
    method = "GET" if what == "stats" else "POST"
    request = urllib.request.Request(f"{url}/__admin__/{what}", method=method)
    with _NO_PROXY.open(request, timeout=10) as response:
        return json.loads(response.read())


def _resetter(url: str) -> Call:
    """A call that resets the test server, for between rounds."""

    async def reset_server() -> None:
        await asyncio.to_thread(admin, url, "reset")

    return reset_server


def sent_fields(**settings: Any) -> dict[str, str]:
    """The form fields or query `ChatDynaspark(**settings)` sends for `HISTORY`.

    Recorded by a throwaway in-process test server, so the floor's bare client
    sends exactly what the model sends, however the package renders it.
    """
    from langchain_dynaspark import ChatDynaspark
    from langchain_dynaspark.testing.server import DynasparkTestServer

    with DynasparkTestServer() as server:
        model = ChatDynaspark(base_url=server.url, **settings)
        asyncio.run(model.ainvoke(HISTORY))
        return dict(server.requests[-1].fields)


# --- measuring -----------------------------------------------------------------


@dataclass
class Sample:
    """Per-call CPU and wall seconds of one contender, one value per round."""

    cpu: list[float]
    wall: list[float]

    @property
    def cpu_us(self) -> float:
        return statistics.median(self.cpu) * 1e6

    @property
    def wall_us(self) -> float:
        return statistics.median(self.wall) * 1e6


async def measure_sequential(
    contenders: dict[str, Call], *, rounds: int, calls: int, between: Call
) -> dict[str, Sample]:
    """One call at a time; the contenders take turns in a new order each turn."""
    samples = {name: Sample([], []) for name in contenders}
    clock, wall = time.process_time, time.perf_counter
    for round_ in range(rounds):
        order = list(contenders.items())
        shuffle = random.Random(round_).shuffle
        cpu = dict.fromkeys(contenders, 0.0)
        elapsed = dict.fromkeys(contenders, 0.0)
        gc.collect()
        for _ in range(calls):
            shuffle(order)
            for name, call in order:
                c0, w0 = clock(), wall()
                await call()
                c1, w1 = clock(), wall()
                cpu[name] += c1 - c0
                elapsed[name] += w1 - w0
        for name in contenders:
            samples[name].cpu.append(cpu[name] / calls)
            samples[name].wall.append(elapsed[name] / calls)
        await between()
    return samples


async def measure_concurrent(
    contenders: dict[str, Call], *, rounds: int, concurrency: int, between: Call
) -> dict[str, Sample]:
    """`concurrency` calls at once; the contenders' batches take turns."""
    samples = {name: Sample([], []) for name in contenders}
    for round_ in range(rounds):
        order = list(contenders.items())
        random.Random(round_).shuffle(order)
        for name, call in order:
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(call() for _ in range(concurrency)))
            c1, w1 = time.process_time(), time.perf_counter()
            samples[name].cpu.append((c1 - c0) / concurrency)
            samples[name].wall.append((w1 - w0) / concurrency)
        await between()
    return samples


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collections scan only what the calls allocate while this is open.

    Not the heap that importing langchain_core left behind: that cost belongs
    to no contender.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def warmed_sequential(
    url: str, contenders: dict[str, Call], *, warm_up: int, rounds: int, calls: int
) -> dict[str, Sample]:
    """`measure_sequential` after a warm-up round of `warm_up` calls, heap frozen."""
    between = _resetter(url)
    await measure_sequential(contenders, rounds=1, calls=warm_up, between=between)
    with frozen_heap():
        return await measure_sequential(
            contenders, rounds=rounds, calls=calls, between=between
        )


async def warmed_concurrent(
    url: str, contenders: dict[str, Call], *, rounds: int, concurrency: int
) -> dict[str, Sample]:
    """`measure_concurrent` after a warm-up batch each, heap frozen."""
    between = _resetter(url)
    await measure_concurrent(
        contenders, rounds=1, concurrency=concurrency, between=between
    )
    with frozen_heap():
        return await measure_concurrent(
            contenders, rounds=rounds, concurrency=concurrency, between=between
        )


async def drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


def calibration(http: Call, langchain: Call) -> Call:
    """The floor's two parts back to back, in one call."""

    async def both() -> None:
        await http()
        await langchain()

    return both


# --- reporting -----------------------------------------------------------------

METHODS = ("ainvoke", "astream", "invoke")
CALLS_HEADER = ("client CPU and wall time per call", "CPU µs", "wall µs", "CPU ÷ floor")


def row(
    label: str, cpu: float | str = "", wall: float | str = "", note: str = ""
) -> str:
    cpu_s = f"{cpu:,.0f}" if isinstance(cpu, float) else cpu
    wall_s = f"{wall:,.0f}" if isinstance(wall, float) else wall
    return f"  {label:<52} {cpu_s:>7} {wall_s:>8}  {note}".rstrip()


def calls_rows(
    title: str, samples: dict[str, Sample]
) -> tuple[list[str], dict[str, float]]:
    """Rows for one set of calls, and each ChatDynaspark method's ratio.

    Each ratio is CPU(ChatDynaspark) divided by CPU(bare aiohttp) + CPU(the
    do-nothing model's same method). The calibration row runs the floor's two
    parts back to back in one call, to show what they cost together.
    """
    bare = samples["bare"]
    methods = [m for m in METHODS if m in samples]
    lines = [
        title,
        row("bare aiohttp session (floor: HTTP)", bare.cpu_us, bare.wall_us),
    ]
    for method in methods:
        nothing = samples[f"nothing.{method}"]
        lines.append(
            row(f"do-nothing BaseChatModel.{method} (floor: LangChain)", nothing.cpu_us)
        )
    floor = bare.cpu_us + samples["nothing.ainvoke"].cpu_us
    both = samples["both"]
    lines.append(
        row(
            "calibration: bare aiohttp, then do-nothing.ainvoke",
            both.cpu_us,
            both.wall_us,
            f"{both.cpu_us / floor:.2f}x",
        )
    )
    ratios: dict[str, float] = {}
    for method in methods:
        sample = samples[method]
        ratios[method] = sample.cpu_us / (
            bare.cpu_us + samples[f"nothing.{method}"].cpu_us
        )
        lines.append(
            row(
                f"ChatDynaspark.{method}",
                sample.cpu_us,
                sample.wall_us,
                f"{ratios[method]:.2f}x",
            )
        )
    return lines, ratios


def ratio_goal(text: str, ratio: float, limit: float = GOAL_CPU) -> Goal:
    """The goal that `ratio` stays at or under `limit`."""
    return Goal(text, f"{ratio:.2f}x", ratio <= limit)
