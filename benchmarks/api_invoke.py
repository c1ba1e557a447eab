"""The API endpoint (`endpoint="api"`): `ainvoke` against a bare aiohttp GET.

The bare client sends the same query (the system message as `system`, the rest
of the history as `user_input`).
"""

from __future__ import annotations

import asyncio

import harness
from floor import BareApiClient, DoNothingChatModel
from harness import HISTORY, Call, Options, Sample, Section, row


async def measure(
    url: str, query: dict[str, str], options: Options
) -> dict[str, Sample]:
    """CPU and wall time per call of each contender, after a warm-up."""
    from langchain_dynaspark import ChatDynaspark

    bare = BareApiClient(url)
    nothing = DoNothingChatModel()
    model = ChatDynaspark(endpoint="api", base_url=url)
    contenders: dict[str, Call] = {
        "bare": lambda: bare.get(query),
        "nothing.ainvoke": lambda: nothing.ainvoke(HISTORY),
        "both": harness.calibration(
            lambda: bare.get(query), lambda: nothing.ainvoke(HISTORY)
        ),
        "ainvoke": lambda: model.ainvoke(HISTORY),
    }
    try:
        return await harness.warmed_sequential(
            url, contenders, warm_up=2, rounds=options.rounds, calls=options.calls
        )
    finally:
        await bare.close()


def section(samples: dict[str, Sample]) -> Section:
    """The API's title and `ainvoke` rows, and their goal."""
    lines, ratios = harness.calls_rows("ainvoke (4-message history)", samples)
    goal = harness.ratio_goal(
        f"API ainvoke CPU per call ≤ {harness.GOAL_CPU}x floor", ratios["ainvoke"]
    )
    title = ["API endpoint (endpoint='api')", row(*harness.CALLS_HEADER)]
    return Section([*title, *lines], [goal])


def run(options: Options) -> Section:
    query = harness.sent_fields(endpoint="api")
    with harness.local_server() as url:
        return section(asyncio.run(measure(url, query, options)))
