"""How much `ChatDynaspark` costs above the physical floor, measured in one run.

    python benchmarks/run.py           # full run; exits 1 if a goal is missed
    python benchmarks/run.py --smoke   # a few calls, for CI; enforces no goal

The floor is what no wrapper can avoid: a bare aiohttp session sending the same
request and JSON-decoding the reply, plus a do-nothing `BaseChatModel` that
answers without I/O (LangChain's own machinery, through the same method:
`ainvoke`, `astream` or `invoke`). Each ratio is CPU(ChatDynaspark) divided by
CPU(bare aiohttp) + CPU(do-nothing model). How the calls are timed is in
`harness.py`; what each part measures, in its own module.

Each scenario is a module with `run(options) -> harness.Section`; to add one,
write its module and list its `run` in `SCENARIOS`, in the table's order.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence

import aiohttp
import api_invoke
import api_stream
import concurrency
import connections
import form_calls
import harness
import image_download
import image_preparation
import imports
import parsing
from harness import Options, Scenario

SCENARIOS: tuple[Scenario, ...] = (
    form_calls.run,
    concurrency.run,
    connections.run,
    image_preparation.run,
    parsing.run,
    imports.run,
    api_invoke.run,
    api_stream.run,
    image_download.run,
)
"""Run, and printed, in this order."""


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


def header(options: Options) -> list[str]:
    """What was run, on what."""
    import langchain_core

    lines = [
        f"ChatDynaspark benchmark: {options.calls} sequential calls per contender "
        f"x {options.rounds} rounds, {options.concurrency} concurrent x "
        f"{options.concurrent_rounds} rounds; medians.",
        f"Python {platform.python_version()}, langchain-core "
        f"{langchain_core.__version__}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs; server in its own process; 4-message history.",
    ]
    if options.smoke:
        lines.append(
            "SMOKE RUN: too few calls for meaningful figures; no goal is enforced."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if str(harness.ROOT) not in sys.path:
        sys.path.insert(0, str(harness.ROOT))
    # Loopback only: a proxy from the environment must not carry the calls.
    for key in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[key]
    print("\n".join(header(options)))
    goals: list[harness.Goal] = []
    for scenario in SCENARIOS:
        section = scenario(options)
        if not section.continued:
            print()
        print("\n".join(section.lines), flush=True)
        goals += section.goals
    print()
    print("Goals" + (" (not enforced in a smoke run)" if options.smoke else ""))
    for goal in goals:
        print(f"  [{'met' if goal.met else 'MISSED'}] {goal.text}: {goal.value}")
    return 0 if options.smoke or all(goal.met for goal in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
