"""Import time, each case in fresh interpreters, the cases alternating; medians.

`baseline` is langchain_core's chat models + aiohttp, `package` is
`langchain_dynaspark`, `added` is `langchain_dynaspark` once the baseline is
loaded. The package must not load pillow or numpy: those wait for an image.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import harness
from harness import Goal, Options, Section, row

GOAL_IMPORT = 1.10
HEAVY_MODULES = ("PIL", "numpy")
"""What `import langchain_dynaspark` must not load: pillow waits for an image."""
WATCHED_MODULES = (
    *HEAVY_MODULES,
    "langchain_core.output_parsers",
    "langchain_core.tools",
    "langchain_core.utils.function_calling",
)
"""Reported when loaded: none of them is loaded by the baseline imports."""

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
        env=harness.child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def measure_imports(runs: int) -> dict[str, Any]:
    """Import times in fresh interpreters, the cases alternating; medians.

    Returns:
        For `baseline`, `package` and `added`: `{"cpu": s, "wall": s}`; and
        `watched`: the `WATCHED_MODULES` that importing the package loaded.
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


def section(imports: dict[str, Any], options: Options) -> Section:
    """The import rows, and the goals on import cost and heavy modules."""
    base = imports["baseline"]
    lines = [
        f"Import, in a fresh interpreter (median of {options.import_runs})",
        row("", "CPU ms", "wall ms", "CPU ÷ baseline"),
        row(
            "langchain_core chat models + aiohttp",
            f"{base['cpu'] * 1e3:.0f}",
            f"{base['wall'] * 1e3:.0f}",
            "1.00x",
        ),
    ]

    def case_row(label: str, case: str, sign: str = "") -> float:
        ratio = imports[case]["cpu"] / base["cpu"]
        cpu, wall = (imports[case][clock] * 1e3 for clock in ("cpu", "wall"))
        note = f"{ratio:.2f}x" if not sign else f"{sign}{ratio:.0%}"
        lines.append(row(label, f"{sign}{cpu:.0f}", f"{sign}{wall:.0f}", note))
        return ratio

    package = case_row("langchain_dynaspark", "package")
    added = case_row("langchain_dynaspark after langchain_core + aiohttp", "added", "+")
    watched = imports["watched"]
    lines.append(
        f"  also loaded by the package: {', '.join(watched) or 'nothing watched'}"
    )
    heavy = [m for m in watched if m in HEAVY_MODULES]
    goals = [
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
    return Section(lines, goals)


def run(options: Options) -> Section:
    return section(measure_imports(options.import_runs), options)
