"""The form, `concurrency` calls at once (`asyncio.gather`): `ainvoke` only.

The contenders' batches take turns batch by batch.
"""

from __future__ import annotations

import asyncio

import form_calls
import harness
from floor import BareClient
from harness import MODEL, Options, Sample, Section

CONTENDERS = ("bare", "nothing.ainvoke", "both", "ainvoke")
"""Those of `form_calls.contenders` that run concurrently."""


async def measure(
    url: str, fields: dict[str, str], options: Options
) -> dict[str, Sample]:
    """CPU and wall time per call of each contender's batches, after a warm-up."""
    bare = BareClient(url, fields)
    every = form_calls.contenders(url, bare)
    try:
        return await harness.warmed_concurrent(
            url,
            {name: every[name] for name in CONTENDERS},
            rounds=options.concurrent_rounds,
            concurrency=options.concurrency,
        )
    finally:
        await bare.close()


def section(samples: dict[str, Sample], options: Options) -> Section:
    """The concurrent rows, right under the sequential ones, and their goal."""
    title = f"{options.concurrency} concurrent (asyncio.gather)"
    lines, ratios = harness.calls_rows(title, samples)
    goal = harness.ratio_goal(
        f"CPU per call ≤ {harness.GOAL_CPU}x floor, {options.concurrency} concurrent",
        ratios["ainvoke"],
    )
    return Section(lines, [goal], continued=True)


def run(options: Options) -> Section:
    fields = harness.sent_fields(model=MODEL, endpoint="form")
    with harness.local_server() as url:
        return section(asyncio.run(measure(url, fields, options)), options)
