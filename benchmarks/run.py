"""How much `ChatDynaspark` costs above the physical floor, measured in one run.

    python benchmarks/run.py           # full run; exits 1 if a goal is missed
    python benchmarks/run.py --smoke   # a few calls, for CI; enforces no goal

The local test server runs in its own process, so the client's cost is neither
hidden by nor mixed with the server's. Per call, the client process's CPU time
(`time.process_time`: all its threads) and the wall time are measured.

The floor is what no wrapper can avoid: a bare aiohttp session posting the same
urlencoded form and JSON-decoding the reply, plus a do-nothing `BaseChatModel`
that answers without I/O (LangChain's own machinery, through the same method:
`ainvoke`, `astream` or `invoke`). Each ratio is CPU(ChatDynaspark) divided by
CPU(bare aiohttp) + CPU(do-nothing model).

Sequential contenders take turns call by call, in a shuffled order each time,
so drift, cache and CPU-frequency effects fall on all of them alike; concurrent
batches (`asyncio.gather`) take turns batch by batch. Figures are medians over
rounds. A calibration row runs the floor's two parts back to back in one call,
to show what the two parts cost together rather than apart.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
FORM_PATH = "/generate_response"
API_PATH = "/api/generate_response"
MODEL = "gemini-2.0-flash"
STREAM_EVENTS = 1000
STREAM_PROMPT = f"stream {STREAM_EVENTS} events"
FIRST_PROMPT = "first event"

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

GOAL_CPU = 1.25
GOAL_SYNC = 1.3
GOAL_FIRST_EVENT_MS = {"astream": 1.0, "stream": 2.0}
"""Most milliseconds by which the first event may lag the bare reader's."""
GOAL_IMPORT = 1.10
GOAL_PARSE_MS = 100
PARSE_REPLY_BYTES = 500_000
CONNECTION_CALLS = 100

HEAVY_MODULES = ("PIL", "numpy")
"""What `import langchain_dynaspark` must not load: pillow waits for an image."""
WATCHED_MODULES = (
    *HEAVY_MODULES,
    "langchain_core.output_parsers",
    "langchain_core.tools",
    "langchain_core.utils.function_calling",
)
"""Reported when loaded: none of them is loaded by the baseline imports."""


@dataclass(frozen=True)
class Options:
    rounds: int
    calls: int
    concurrent_rounds: int
    concurrency: int
    import_runs: int
    images: bool
    smoke: bool


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


def _child_env() -> dict[str, str]:
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
        env=_child_env(),
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


# --- the floor -----------------------------------------------------------------


class DoNothingChatModel(BaseChatModel):
    """LangChain's own cost: a chat model that answers at once, without I/O."""

    reply: str = "Pack layers, a light rain jacket and comfortable shoes."

    @property
    def _llm_type(self) -> str:
        return "do-nothing"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk(self.reply, chunk_position="last")
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk(self.reply, chunk_position="last")
        )


class DoNothingStreamingModel(BaseChatModel):
    """LangChain's own per-chunk cost: `chunks` chunks at once, without I/O."""

    chunks: int = STREAM_EVENTS

    @property
    def _llm_type(self) -> str:
        return "do-nothing-streaming"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk("word "))
        yield ChatGenerationChunk(message=AIMessageChunk("", chunk_position="last"))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk("word "))
        yield ChatGenerationChunk(message=AIMessageChunk("", chunk_position="last"))


class BareApiClient:
    """The floor's HTTP part on the API: a GET, the JSON reply or an SSE reader."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + API_PATH
        self.session = aiohttp.ClientSession()

    async def get(self, query: dict[str, str]) -> str:
        async with self.session.get(self.url, params=query) as response:
            return json.loads(await response.read())["response"]

    async def stream(self, prompt: str, first: list[float] | None = None) -> int:
        """Read the events line by line; note when the first text arrived."""
        query = {"user_input": prompt, "private": "true", "stream": "true"}
        events = 0
        async with self.session.get(self.url, params=query) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                text = json.loads(data)["choices"][0]["delta"].get("content")
                if text and first is not None and not first:
                    first.append(time.time())
                events += 1
        return events

    async def close(self) -> None:
        await self.session.close()


class BareClient:
    """The floor's HTTP part: one aiohttp session, the form, the JSON reply."""

    def __init__(self, base_url: str, prompt: str) -> None:
        self.url = base_url + FORM_PATH
        self.fields = {"user_input": prompt, "ai_model": MODEL}
        self.session = aiohttp.ClientSession()

    async def post(self) -> str:
        async with self.session.post(
            self.url,
            data=urlencode(self.fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            return json.loads(await response.read())["response"]

    async def close(self) -> None:
        await self.session.close()


# --- measuring -----------------------------------------------------------------

Call = Callable[[], Awaitable[object]]


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


async def _drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


async def measure_calls(url: str, options: Options) -> dict[str, dict[str, Sample]]:
    """CPU and wall time per call, sequential and concurrent."""
    from langchain_dynaspark import ChatDynaspark
    from langchain_dynaspark.prompt import build_prompt

    bare = BareClient(url, build_prompt(HISTORY).text)
    nothing = DoNothingChatModel()
    model = ChatDynaspark(model=MODEL, base_url=url)

    async def both() -> None:
        await bare.post()
        await nothing.ainvoke(HISTORY)

    async def nothing_invoke() -> object:
        return nothing.invoke(HISTORY)

    async def invoke() -> object:
        # Sync, though called from this loop: it runs on the package's own
        # background loop all the same, as it would in a plain script.
        return model.invoke(HISTORY)

    async def reset_server() -> None:
        await asyncio.to_thread(admin, url, "reset")

    sequential: dict[str, Call] = {
        "bare": bare.post,
        "nothing.ainvoke": lambda: nothing.ainvoke(HISTORY),
        "nothing.astream": lambda: _drain(nothing.astream(HISTORY)),
        "nothing.invoke": nothing_invoke,
        "both": both,
        "ainvoke": lambda: model.ainvoke(HISTORY),
        "astream": lambda: _drain(model.astream(HISTORY)),
        "invoke": invoke,
    }
    concurrent: dict[str, Call] = {
        "bare": bare.post,
        "nothing.ainvoke": lambda: nothing.ainvoke(HISTORY),
        "both": both,
        "ainvoke": lambda: model.ainvoke(HISTORY),
    }
    try:
        await measure_sequential(
            sequential,
            rounds=1,
            calls=max(2, options.calls // 10),
            between=reset_server,
        )
        await measure_concurrent(
            concurrent, rounds=1, concurrency=options.concurrency, between=reset_server
        )
        # Collections then scan only what the calls allocate, not the heap that
        # importing langchain_core left behind (that cost belongs to no contender).
        gc.collect()
        gc.freeze()
        return {
            "sequential": await measure_sequential(
                sequential,
                rounds=options.rounds,
                calls=options.calls,
                between=reset_server,
            ),
            "concurrent": await measure_concurrent(
                concurrent,
                rounds=options.concurrent_rounds,
                concurrency=options.concurrency,
                between=reset_server,
            ),
        }
    finally:
        gc.unfreeze()
        await bare.close()


async def measure_api(url: str, options: Options) -> dict[str, Any]:
    """The API endpoint: ainvoke and 1,000-event streams, and first-event latency."""
    from langchain_dynaspark import ChatDynaspark
    from langchain_dynaspark.endpoints import api
    from langchain_dynaspark.prompt import build_prompt

    system, rest = api.split_system(HISTORY)
    query = api.build_query(user_input=build_prompt(rest).text, system=system)
    bare = BareApiClient(url)
    nothing = DoNothingChatModel()
    streaming = DoNothingStreamingModel()
    model = ChatDynaspark(endpoint="api", base_url=url)

    async def sync_stream() -> None:
        for _ in model.stream(STREAM_PROMPT):
            pass

    async def reset_server() -> None:
        await asyncio.to_thread(admin, url, "reset")

    calls: dict[str, Call] = {
        "bare": lambda: bare.get(query),
        "nothing.ainvoke": lambda: nothing.ainvoke(HISTORY),
        "both": lambda: _both(bare.get(query), nothing.ainvoke(HISTORY)),
        "ainvoke": lambda: model.ainvoke(HISTORY),
    }
    streams: dict[str, Call] = {
        "bare": lambda: bare.stream(STREAM_PROMPT),
        "nothing.astream": lambda: _drain(streaming.astream(STREAM_PROMPT)),
        "astream": lambda: _drain(model.astream(STREAM_PROMPT)),
        "stream": sync_stream,
    }
    stream_calls = max(2, options.calls // 20)
    try:
        await measure_sequential(calls, rounds=1, calls=2, between=reset_server)
        await measure_sequential(streams, rounds=1, calls=1, between=reset_server)
        gc.collect()
        gc.freeze()
        result = {
            "calls": await measure_sequential(
                calls, rounds=options.rounds, calls=options.calls, between=reset_server
            ),
            "streams": await measure_sequential(
                streams,
                rounds=options.rounds,
                calls=stream_calls,
                between=reset_server,
            ),
        }
        gc.unfreeze()
        result["first_event_ms"] = await _first_event_latency(
            url, bare, model, max(3, options.calls // 4)
        )
        return result
    finally:
        gc.unfreeze()
        await bare.close()


async def _both(first: Awaitable[object], second: Awaitable[object]) -> None:
    await first
    await second


async def _first_event_latency(
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
            written = (await asyncio.to_thread(admin, url, "stats"))["first_write_at"]
            lags[name].append((seen - written) * 1e3)
    return {name: statistics.median(values) for name, values in lags.items()}


def count_connections(url: str, calls: int) -> dict[str, int]:
    """TCP connections the server saw for `calls` sequential calls, from cold."""
    from langchain_dynaspark import ChatDynaspark
    from langchain_dynaspark.prompt import build_prompt

    prompt = build_prompt(HISTORY).text

    def connections(run: Callable[[], None]) -> int:
        admin(url, "reset")
        run()
        return admin(url, "stats")["connections"]

    async def bare() -> None:
        client = BareClient(url, prompt)
        try:
            for _ in range(calls):
                await client.post()
        finally:
            await client.close()

    async def session_per_call() -> None:
        for _ in range(calls):
            client = BareClient(url, prompt)
            try:
                await client.post()
            finally:
                await client.close()

    async def ainvoke() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url)
        for _ in range(calls):
            await model.ainvoke(HISTORY)

    async def astream() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url)
        for _ in range(calls):
            await _drain(model.astream(HISTORY))

    def invoke() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url)
        for _ in range(calls):
            model.invoke(HISTORY)

    return {
        "bare": connections(lambda: asyncio.run(bare())),
        "session per call": connections(lambda: asyncio.run(session_per_call())),
        "ainvoke": connections(lambda: asyncio.run(ainvoke())),
        "astream": connections(lambda: asyncio.run(astream())),
        "invoke": connections(invoke),
    }


_IMPORT = """
import json, sys, time
{setup}
cpu, wall = time.process_time(), time.perf_counter()
{statement}
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
watched = [m for m in {watched!r} if m in sys.modules]
print(json.dumps({{"cpu": cpu, "wall": wall, "watched": watched}}))
"""

IMPORT_BASELINE = "import langchain_core.language_models.chat_models, aiohttp"
IMPORT_PACKAGE = "import langchain_dynaspark"


def _import_once(statement: str, *, setup: str = "") -> dict[str, Any]:
    code = _IMPORT.format(setup=setup, statement=statement, watched=WATCHED_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def measure_imports(runs: int) -> dict[str, Any]:
    """Import times in fresh interpreters, the cases alternating; medians.

    Returns:
        For `baseline` (langchain_core chat models + aiohttp), `package`
        (`langchain_dynaspark`) and `added` (`langchain_dynaspark` once the
        baseline is loaded):
        `{"cpu": s, "wall": s}`; and `watched`: the `WATCHED_MODULES` that
        importing the package loaded.
    """
    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "baseline": lambda: _import_once(IMPORT_BASELINE),
        "package": lambda: _import_once(IMPORT_PACKAGE),
        "added": lambda: _import_once(IMPORT_PACKAGE, setup=IMPORT_BASELINE),
    }
    for case in cases.values():
        case()
    runs_of: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            runs_of[name].append(case())
    result: dict[str, Any] = {
        name: {
            clock: statistics.median(run[clock] for run in runs_of[name])
            for clock in ("cpu", "wall")
        }
        for name in cases
    }
    result["watched"] = runs_of["package"][-1]["watched"]
    return result


def measure_images() -> tuple[dict[str, float], dict[str, float]] | None:
    """`benchmarks/images.py`'s figures and goals; `None` if it is missing."""
    if not (BENCHMARKS / "images.py").exists():
        return None
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import images

    return images.measure_image_preparation(), dict(images.GOALS)


def code_listing(size: int) -> str:
    """A reply holding a C listing of about `size` characters, braces and all."""
    function = (
        "static int f{i}(const char *s, int n) {{\n"
        "    char open = '{{', close = '}}';\n"
        "    int depth[4] = {{0, 1, 2, 3}};\n"
        "    for (int k = 0; k < n; k++) {{\n"
        '        if (s[k] == open) {{ printf("{{%d}}\\n", depth[k % 4]); }}\n'
        "        else if (s[k] == close) {{ depth[k % 4] -= {i}; }}\n"
        "    }}\n"
        "    return depth[0];\n"
        "}}\n"
    )
    body, i = [], 0
    while sum(map(len, body)) < size:
        body.append(function.format(i=i))
        i += 1
    return "Here is the program:\n```c\n" + "".join(body) + "```\nIt counts braces."


def measure_parsing(runs: int) -> dict[str, list[float]]:
    """Seconds to read a reply with two tools bound, per reply shape."""
    from langchain_dynaspark.emulation.tool_calls import parse_tool_calls

    tools = {
        "get_weather": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "add": None,
    }
    replies = {
        "listing": code_listing(PARSE_REPLY_BYTES),
        "brackets": "[{" * (PARSE_REPLY_BYTES // 2),
    }
    seconds: dict[str, list[float]] = {name: [] for name in replies}
    for _ in range(runs):
        for name, reply in replies.items():
            start = time.perf_counter()
            parse_tool_calls(reply, tools)
            seconds[name].append(time.perf_counter() - start)
    return seconds


# --- reporting -----------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    text: str
    value: str
    met: bool


def _row(
    label: str, cpu: float | str = "", wall: float | str = "", note: str = ""
) -> str:
    cpu_s = f"{cpu:,.0f}" if isinstance(cpu, float) else cpu
    wall_s = f"{wall:,.0f}" if isinstance(wall, float) else wall
    return f"  {label:<52} {cpu_s:>7} {wall_s:>8}  {note}".rstrip()


_METHODS = ("ainvoke", "astream", "invoke")


def _calls_section(
    title: str, samples: dict[str, Sample]
) -> tuple[list[str], dict[str, float]]:
    """Table rows for one section, and each ChatDynaspark method's ratio."""
    bare = samples["bare"]
    methods = [m for m in _METHODS if m in samples]
    lines = [
        title,
        _row("bare aiohttp session (floor: HTTP)", bare.cpu_us, bare.wall_us),
    ]
    for method in methods:
        nothing = samples[f"nothing.{method}"]
        lines.append(
            _row(
                f"do-nothing BaseChatModel.{method} (floor: LangChain)", nothing.cpu_us
            )
        )
    floor = bare.cpu_us + samples["nothing.ainvoke"].cpu_us
    both = samples["both"]
    lines.append(
        _row(
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
            _row(
                f"ChatDynaspark.{method}",
                sample.cpu_us,
                sample.wall_us,
                f"{ratios[method]:.2f}x",
            )
        )
    return lines, ratios


def report(
    options: Options,
    calls: dict[str, dict[str, Sample]],
    connections: dict[str, int],
    imports: dict[str, Any],
    images: tuple[dict[str, float], dict[str, float]] | None,
    *,
    parsing: dict[str, list[float]],
) -> list[Goal]:
    """Print the table; return the goals with their verdicts."""
    import langchain_core

    print(
        f"ChatDynaspark benchmark: {options.calls} sequential calls per contender "
        f"x {options.rounds} rounds, {options.concurrency} concurrent x "
        f"{options.concurrent_rounds} rounds; medians."
    )
    print(
        f"Python {platform.python_version()}, langchain-core "
        f"{langchain_core.__version__}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs; server in its own process; 4-message history."
    )
    if options.smoke:
        print("SMOKE RUN: too few calls for meaningful figures; no goal is enforced.")
    print()
    print(_row("client CPU and wall time per call", "CPU µs", "wall µs", "CPU ÷ floor"))
    print("  (floor = bare aiohttp + the do-nothing model's same method)")
    seq_lines, seq = _calls_section("sequential", calls["sequential"])
    con_lines, con = _calls_section(
        f"{options.concurrency} concurrent (asyncio.gather)", calls["concurrent"]
    )
    sequential = calls["sequential"]
    sync_ratio = sequential["invoke"].cpu_us / sequential["ainvoke"].cpu_us
    for line in seq_lines:
        print(line)
    print(
        _row("ChatDynaspark.invoke ÷ ChatDynaspark.ainvoke", note=f"{sync_ratio:.2f}x")
    )
    for line in con_lines:
        print(line)

    print()
    print(f"TCP connections opened for {CONNECTION_CALLS} sequential calls")
    labels = {
        "bare": "bare aiohttp session",
        "session per call": "aiohttp, a new session per call (earlier clients)",
        "ainvoke": "ChatDynaspark.ainvoke",
        "astream": "ChatDynaspark.astream",
        "invoke": "ChatDynaspark.invoke",
    }
    for name, label in labels.items():
        print(_row(label, str(connections[name])))

    print()
    image_goals = _print_images(images, skipped=not options.images)

    print()
    parse_goals = _print_parsing(parsing)

    print()
    import_goals = _print_imports(options, imports)

    goals = [
        Goal(
            f"CPU per call ≤ {GOAL_CPU}x floor, sequential ainvoke",
            f"{seq['ainvoke']:.2f}x",
            seq["ainvoke"] <= GOAL_CPU,
        ),
        Goal(
            f"CPU per call ≤ {GOAL_CPU}x floor, sequential astream",
            f"{seq['astream']:.2f}x",
            seq["astream"] <= GOAL_CPU,
        ),
        Goal(
            f"CPU per call ≤ {GOAL_CPU}x floor, {options.concurrency} concurrent",
            f"{con['ainvoke']:.2f}x",
            con["ainvoke"] <= GOAL_CPU,
        ),
        Goal(
            f"sync invoke CPU ≤ {GOAL_SYNC}x ainvoke",
            f"{sync_ratio:.2f}x",
            sync_ratio <= GOAL_SYNC,
        ),
        Goal(
            f"one TCP connection for {CONNECTION_CALLS} sequential calls",
            " / ".join(str(connections[m]) for m in _METHODS),
            all(connections[m] == 1 for m in _METHODS),
        ),
        *import_goals,
        *image_goals,
        *parse_goals,
    ]
    return goals


def _report_api(figures: dict[str, Any]) -> list[Goal]:
    """Print the API endpoint's rows; return its goals."""
    print()
    print("API endpoint (endpoint='api')")
    print(_row("client CPU and wall time per call", "CPU µs", "wall µs", "CPU ÷ floor"))
    lines, ratios = _calls_section("ainvoke (4-message history)", figures["calls"])
    for line in lines:
        print(line)
    streams: dict[str, Sample] = figures["streams"]
    bare, nothing = streams["bare"], streams["nothing.astream"]
    floor = (bare.cpu_us + nothing.cpu_us) / STREAM_EVENTS
    print(f"streaming a {STREAM_EVENTS:,}-event reply, per event")
    print(
        _row("bare aiohttp SSE line reader (floor: HTTP)", bare.cpu_us / STREAM_EVENTS)
    )
    print(
        _row(
            "do-nothing BaseChatModel.astream (floor: LangChain)",
            nothing.cpu_us / STREAM_EVENTS,
        )
    )
    stream_ratios: dict[str, float] = {}
    for method in ("astream", "stream"):
        per_event = streams[method].cpu_us / STREAM_EVENTS
        stream_ratios[method] = per_event / floor
        print(
            _row(
                f"ChatDynaspark.{method}",
                f"{per_event:.1f}",
                f"{streams[method].wall_us / STREAM_EVENTS:.1f}",
                f"{stream_ratios[method]:.2f}x",
            )
        )
    first = figures["first_event_ms"]
    print("first event: server writes it -> the client has it (median ms)")
    for name, label in (
        ("bare", "bare aiohttp SSE line reader"),
        ("astream", "ChatDynaspark.astream"),
        ("stream", "ChatDynaspark.stream (sync)"),
    ):
        print(_row(label, "", f"{first[name]:.2f}"))
    return [
        Goal(
            f"API ainvoke CPU per call ≤ {GOAL_CPU}x floor",
            f"{ratios['ainvoke']:.2f}x",
            ratios["ainvoke"] <= GOAL_CPU,
        ),
        Goal(
            f"{STREAM_EVENTS:,}-event astream CPU per event ≤ {GOAL_CPU}x floor",
            f"{stream_ratios['astream']:.2f}x",
            stream_ratios["astream"] <= GOAL_CPU,
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


def _print_imports(options: Options, imports: dict[str, Any]) -> list[Goal]:
    """Print the import rows; return their goals."""
    base = imports["baseline"]
    print(f"Import, in a fresh interpreter (median of {options.import_runs})")
    print(_row("", "CPU ms", "wall ms", "CPU ÷ baseline"))

    def row(label: str, case: str, sign: str = "") -> float:
        ratio = imports[case]["cpu"] / base["cpu"]
        cpu, wall = (imports[case][clock] * 1e3 for clock in ("cpu", "wall"))
        note = f"{ratio:.2f}x" if not sign else f"{sign}{ratio:.0%}"
        print(_row(label, f"{sign}{cpu:.0f}", f"{sign}{wall:.0f}", note))
        return ratio

    print(
        _row(
            "langchain_core chat models + aiohttp",
            f"{base['cpu'] * 1e3:.0f}",
            f"{base['wall'] * 1e3:.0f}",
            "1.00x",
        )
    )
    package = row("langchain_dynaspark", "package")
    added = row("langchain_dynaspark after langchain_core + aiohttp", "added", "+")
    watched = imports["watched"]
    print(f"  also loaded by the package: {', '.join(watched) or 'nothing watched'}")
    heavy = [m for m in watched if m in HEAVY_MODULES]
    return [
        Goal(
            f"importing the package costs ≤ {GOAL_IMPORT}x importing "
            "langchain_core chat models + aiohttp (CPU)",
            f"{package:.2f}x (+{added:.0%} once they are loaded)",
            package <= GOAL_IMPORT,
        ),
        Goal(
            "import loads no pillow or numpy",
            ", ".join(heavy) or "none loaded",
            not heavy,
        ),
    ]


def _print_parsing(parsing: dict[str, list[float]]) -> list[Goal]:
    """Print the reply-parsing rows; return their goal."""
    kb = PARSE_REPLY_BYTES // 1000
    print("Reading a reply with tools bound (tool_calls.parse_tool_calls)")
    print(_row("", "best ms", "median"))
    labels = {
        "listing": f"{kb} KB reply holding a C code listing",
        "brackets": f"{kb} KB of nested brackets (worst case)",
    }
    for name, label in labels.items():
        times = parsing[name]
        print(_row(label, min(times) * 1e3, statistics.median(times) * 1e3))
    listing_ms = statistics.median(parsing["listing"]) * 1e3
    return [
        Goal(
            f"{kb} KB code listing read in < {GOAL_PARSE_MS} ms",
            f"{listing_ms:.0f} ms",
            listing_ms < GOAL_PARSE_MS,
        )
    ]


def _print_images(
    images: tuple[dict[str, float], dict[str, float]] | None, *, skipped: bool
) -> list[Goal]:
    """Print the image rows; return their goals."""
    print("Image preparation (benchmarks/images.py)")
    if skipped:
        print("  skipped (--no-images)")
        return []
    if images is None:
        print("  not measured: benchmarks/images.py is missing")
        return [
            Goal("image preparation measured", "benchmarks/images.py missing", False)
        ]
    figures, goals = images
    print(_row("", "best ms", "median", "CPU ms, peak memory"))
    for case, label in (
        ("photo", "one 6000x4000 JPEG"),
        ("composite", "4-image composite (4000x3000 JPEGs)"),
    ):
        print(
            _row(
                label,
                figures[f"{case}_seconds"] * 1e3,
                figures[f"{case}_median_seconds"] * 1e3,
                f"{figures[f'{case}_cpu_seconds'] * 1e3:.0f} ms, "
                f"{figures[f'{case}_peak_mb']:.0f} MB",
            )
        )
    return [
        Goal(
            f"6000x4000 JPEG: {name} < {limit:g}",
            f"{figures[name]:.2f}",
            figures[name] < limit,
        )
        for name, limit in goals.items()
    ]


# --- main ----------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Measure ChatDynaspark against the physical floor."
    )
    parser.add_argument("--rounds", type=int, default=7, help="sequential rounds")
    parser.add_argument(
        "--calls",
        type=int,
        default=200,
        help="sequential calls per contender, per round",
    )
    parser.add_argument(
        "--concurrent-rounds", type=int, default=21, help="batches per contender"
    )
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--import-runs", type=int, default=15)
    parser.add_argument("--no-images", action="store_true", help="skip images")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few calls, for CI: prints the whole table, enforces no goal",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        return Options(
            rounds=2,
            calls=10,
            concurrent_rounds=2,
            concurrency=20,
            import_runs=2,
            images=not args.no_images,
            smoke=True,
        )
    return Options(
        rounds=args.rounds,
        calls=args.calls,
        concurrent_rounds=args.concurrent_rounds,
        concurrency=args.concurrency,
        import_runs=args.import_runs,
        images=not args.no_images,
        smoke=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # Loopback only: a proxy from the environment must not carry the calls.
    for key in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[key]
    with local_server() as url:
        connections = count_connections(url, CONNECTION_CALLS)
        calls = asyncio.run(measure_calls(url, options))
        api_figures = asyncio.run(measure_api(url, options))
    images = measure_images() if options.images else None
    imports = measure_imports(options.import_runs)
    parsing = measure_parsing(1 if options.smoke else 9)
    goals = report(options, calls, connections, imports, images, parsing=parsing)
    goals += _report_api(api_figures)
    print()
    print("Goals" + (" (not enforced in a smoke run)" if options.smoke else ""))
    for goal in goals:
        print(f"  [{'met' if goal.met else 'MISSED'}] {goal.text}: {goal.value}")
    return 0 if options.smoke or all(goal.met for goal in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
