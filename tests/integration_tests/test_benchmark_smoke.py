"""`benchmarks/run.py --smoke` runs end to end, so the benchmark cannot rot.

A smoke run makes too few calls for its figures to mean anything: nothing here
looks at speed. It checks that every row of the table is printed with figures,
and the one deterministic result: how many TCP connections 100 calls open.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+"
RATIO = r"\d+\.\d\dx"
MEASURED = rf"{NUMBER} +{NUMBER} +{RATIO}"
"""CPU µs, wall µs and the ratio to the floor."""


@pytest.fixture(scope="module")
def smoke_output() -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _section(output: str, title: str) -> str:
    """The line of `output` that starts with `title`, and the indented lines after."""
    lines = output[output.index(f"\n{title}") + 1 :].splitlines()
    indented = 1
    while indented < len(lines) and lines[indented].startswith("  "):
        indented += 1
    return "\n".join(lines[:indented])


@pytest.mark.parametrize(
    "row",
    [
        rf"bare aiohttp session \(floor: HTTP\) +{NUMBER} +{NUMBER}$",
        rf"do-nothing BaseChatModel\.ainvoke \(floor: LangChain\) +{NUMBER}$",
        rf"do-nothing BaseChatModel\.astream \(floor: LangChain\) +{NUMBER}$",
        rf"do-nothing BaseChatModel\.invoke \(floor: LangChain\) +{NUMBER}$",
        rf"calibration: bare aiohttp, then do-nothing\.ainvoke +{MEASURED}$",
        rf"ChatDynaspark\.ainvoke +{MEASURED}$",
        rf"ChatDynaspark\.astream +{MEASURED}$",
        rf"ChatDynaspark\.invoke +{MEASURED}$",
        rf"ChatDynaspark\.invoke ÷ ChatDynaspark\.ainvoke +{RATIO}$",
    ],
)
def test_sequential_rows_carry_figures(smoke_output: str, row: str) -> None:
    section = _section(smoke_output, "sequential")
    assert re.search(rf"^  {row}", section, re.MULTILINE), section


def test_concurrent_rows_carry_figures(smoke_output: str) -> None:
    section = _section(smoke_output, "20 concurrent (asyncio.gather)")
    for row in (
        rf"bare aiohttp session \(floor: HTTP\) +{NUMBER} +{NUMBER}$",
        rf"do-nothing BaseChatModel\.ainvoke \(floor: LangChain\) +{NUMBER}$",
        rf"ChatDynaspark\.ainvoke +{MEASURED}$",
    ):
        assert re.search(rf"^  {row}", section, re.MULTILINE), section


def test_one_connection_for_a_hundred_calls(smoke_output: str) -> None:
    section = _section(smoke_output, "TCP connections opened for 100 sequential")
    counts = {
        label.strip(): int(count)
        for label, count in re.findall(r"^  (.+?) +(\d+)$", section, re.MULTILINE)
    }
    assert counts == {
        "bare aiohttp session": 1,
        "aiohttp, a new session per call (earlier clients)": 100,
        "ChatDynaspark.ainvoke": 1,
        "ChatDynaspark.astream": 1,
        "ChatDynaspark.invoke": 1,
    }


def test_image_and_import_rows_carry_figures(smoke_output: str) -> None:
    images = _section(smoke_output, "Image preparation")
    assert re.search(rf"one 6000x4000 JPEG +{NUMBER} +{NUMBER} +\d+ ms, \d+ MB", images)
    assert re.search(
        rf"4-image composite .* +{NUMBER} +{NUMBER} +\d+ ms, \d+ MB", images
    )
    imports = _section(smoke_output, "Import, in a fresh interpreter")
    assert re.search(rf"^  langchain_dynaspark +{MEASURED}$", imports, re.MULTILINE)


def test_parsing_rows_carry_figures(smoke_output: str) -> None:
    parsing = _section(smoke_output, "Reading a reply with tools bound")
    for label in ("500 KB reply holding a C code listing", "500 KB of nested brackets"):
        assert re.search(rf"^  {label}.* +{NUMBER} +{NUMBER}$", parsing, re.M), parsing


def test_every_goal_gets_a_verdict(smoke_output: str) -> None:
    goals = _section(smoke_output, "Goals").splitlines()[1:]
    assert len(goals) == 14, goals
    assert all(re.match(r"  \[(met|MISSED)\] .+: .+", goal) for goal in goals), goals


def test_api_rows_carry_figures(smoke_output: str) -> None:
    calls = _section(smoke_output, "ainvoke (4-message history)")
    assert re.search(rf"^  ChatDynaspark\.ainvoke +{MEASURED}$", calls, re.MULTILINE)
    streams = _section(smoke_output, "streaming a 1,000-event reply, per event")
    for method in ("astream", "stream"):
        row = rf"^  ChatDynaspark\.{method} +[\d.]+ +[\d.]+ +{RATIO}$"
        assert re.search(row, streams, re.MULTILINE), streams
    first = _section(smoke_output, "first event")
    for label in ("bare aiohttp SSE line reader", "ChatDynaspark\\.astream"):
        assert re.search(rf"^  {label} +-?\d+\.\d\d$", first, re.MULTILINE), first


def test_image_download_rows_carry_figures(smoke_output: str) -> None:
    section = _section(smoke_output, "Image download step")
    assert re.search(
        rf"^  bare aiohttp GET of the same URL \(floor\) +{NUMBER} +{NUMBER}$",
        section,
        re.MULTILINE,
    ), section
    assert re.search(
        rf"^  endpoints\.image\.fetch_image .+ +{MEASURED}$", section, re.MULTILINE
    ), section
