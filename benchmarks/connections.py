"""TCP connections the server sees for 100 sequential calls, from cold.

Each contender starts on a fresh event loop (sync `invoke` on the package's
background loop) against a server that has just been reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import harness
from floor import BareClient
from harness import HISTORY, MODEL, Goal, Options, Section, row

CONNECTION_CALLS = 100
LABELS = {
    "bare": "bare aiohttp session",
    "session per call": "aiohttp, a new session per call (earlier clients)",
    "ainvoke": "ChatDynaspark.ainvoke",
    "astream": "ChatDynaspark.astream",
    "invoke": "ChatDynaspark.invoke",
}


def count_connections(url: str, fields: dict[str, str], calls: int) -> dict[str, int]:
    """TCP connections the server saw for `calls` sequential calls, from cold."""
    from langchain_dynaspark import ChatDynaspark

    def connections(run: Callable[[], None]) -> int:
        harness.admin(url, "reset")
        run()
        return harness.admin(url, "stats")["connections"]

    async def bare() -> None:
        client = BareClient(url, fields)
        try:
            for _ in range(calls):
                await client.post()
        finally:
            await client.close()

    async def session_per_call() -> None:
        for _ in range(calls):
            client = BareClient(url, fields)
            try:
                await client.post()
            finally:
                await client.close()

    async def ainvoke() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url, endpoint="form")
        for _ in range(calls):
            await model.ainvoke(HISTORY)

    async def astream() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url, endpoint="form")
        for _ in range(calls):
            await harness.drain(model.astream(HISTORY))

    def invoke() -> None:
        model = ChatDynaspark(model=MODEL, base_url=url, endpoint="form")
        for _ in range(calls):
            model.invoke(HISTORY)

    return {
        "bare": connections(lambda: asyncio.run(bare())),
        "session per call": connections(lambda: asyncio.run(session_per_call())),
        "ainvoke": connections(lambda: asyncio.run(ainvoke())),
        "astream": connections(lambda: asyncio.run(astream())),
        "invoke": connections(invoke),
    }


def section(connections: dict[str, int]) -> Section:
    """The connection rows, and the goal of one connection per method."""
    lines = [f"TCP connections opened for {CONNECTION_CALLS} sequential calls"]
    lines += [row(label, str(connections[name])) for name, label in LABELS.items()]
    goal = Goal(
        f"one TCP connection for {CONNECTION_CALLS} sequential calls",
        " / ".join(str(connections[m]) for m in harness.METHODS),
        all(connections[m] == 1 for m in harness.METHODS),
    )
    return Section(lines, [goal])


def run(options: Options) -> Section:
    fields = harness.sent_fields(model=MODEL, endpoint="form")
    with harness.local_server() as url:
        return section(count_connections(url, fields, CONNECTION_CALLS))
