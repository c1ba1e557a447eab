"""The form, one call at a time: `ainvoke`, `astream` and sync `invoke`.

All of them, the floor's parts and the calibration take turns call by call, so
`invoke` and `ainvoke` are compared in the same rounds: the sync call's price
is handing the call to the package's background loop and back.
"""

from __future__ import annotations

import asyncio

import harness
from floor import BareClient, DoNothingChatModel
from harness import HISTORY, MODEL, Call, Goal, Options, Sample, Section, row

GOAL_SYNC = 1.3
"""Most CPU sync `invoke` may cost, as a multiple of `ainvoke`'s."""


def contenders(url: str, bare: BareClient) -> dict[str, Call]:
    """The floor's parts, the calibration and each `ChatDynaspark` method."""
    from langchain_dynaspark import ChatDynaspark

    nothing = DoNothingChatModel()
    model = ChatDynaspark(model=MODEL, base_url=url, endpoint="form")

    async def nothing_invoke() -> object:
        return nothing.invoke(HISTORY)

    async def invoke() -> object:
        # Sync, though called from this loop: it runs on the package's own
        # background loop all the same, as it would in a plain script.
        return model.invoke(HISTORY)

    return {
        "bare": bare.post,
        "nothing.ainvoke": lambda: nothing.ainvoke(HISTORY),
        "nothing.astream": lambda: harness.drain(nothing.astream(HISTORY)),
        "nothing.invoke": nothing_invoke,
        "both": harness.calibration(bare.post, lambda: nothing.ainvoke(HISTORY)),
        "ainvoke": lambda: model.ainvoke(HISTORY),
        "astream": lambda: harness.drain(model.astream(HISTORY)),
        "invoke": invoke,
    }


async def measure(
    url: str, fields: dict[str, str], options: Options
) -> dict[str, Sample]:
    """CPU and wall time per call of each contender, after a warm-up."""
    bare = BareClient(url, fields)
    try:
        return await harness.warmed_sequential(
            url,
            contenders(url, bare),
            warm_up=max(2, options.calls // 10),
            rounds=options.rounds,
            calls=options.calls,
        )
    finally:
        await bare.close()


def section(samples: dict[str, Sample]) -> Section:
    """The table's header and sequential rows, the sync ratio, and their goals."""
    lines, ratios = harness.calls_rows("sequential", samples)
    sync_ratio = samples["invoke"].cpu_us / samples["ainvoke"].cpu_us
    header = [
        row(*harness.CALLS_HEADER),
        "  (floor = bare aiohttp + the do-nothing model's same method)",
    ]
    sync_row = row(
        "ChatDynaspark.invoke ÷ ChatDynaspark.ainvoke", note=f"{sync_ratio:.2f}x"
    )
    goals = [
        harness.ratio_goal(
            f"CPU per call ≤ {harness.GOAL_CPU}x floor, sequential {method}",
            ratios[method],
        )
        for method in ("ainvoke", "astream")
    ]
    goals.append(
        Goal(
            f"sync invoke CPU ≤ {GOAL_SYNC}x ainvoke",
            f"{sync_ratio:.2f}x",
            sync_ratio <= GOAL_SYNC,
        )
    )
    return Section([*header, *lines, sync_row], goals)


def run(options: Options) -> Section:
    fields = harness.sent_fields(model=MODEL, endpoint="form")
    with harness.local_server() as url:
        return section(asyncio.run(measure(url, fields, options)))
