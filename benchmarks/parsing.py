"""Reading a big reply with tools bound (`tool_calls.parse_tool_calls`).

Two 500 KB replies: a C code listing full of braces, as a model may write one,
and nested brackets, the worst case for finding JSON in text.
"""

from __future__ import annotations

import statistics
import time

from harness import Goal, Options, Section, row

GOAL_PARSE_MS = 100
PARSE_REPLY_BYTES = 500_000
TOOLS = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "add": None,
}
"""Two tools bound: one with a schema, one without."""


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

    replies = {
        "listing": code_listing(PARSE_REPLY_BYTES),
        "brackets": "[{" * (PARSE_REPLY_BYTES // 2),
    }
    seconds: dict[str, list[float]] = {name: [] for name in replies}
    for _ in range(runs):
        for name, reply in replies.items():
            start = time.perf_counter()
            parse_tool_calls(reply, TOOLS)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def section(parsing: dict[str, list[float]]) -> Section:
    """The reply-parsing rows, and the goal for the code listing."""
    kb = PARSE_REPLY_BYTES // 1000
    lines = [
        "Reading a reply with tools bound (tool_calls.parse_tool_calls)",
        row("", "best ms", "median"),
    ]
    labels = {
        "listing": f"{kb} KB reply holding a C code listing",
        "brackets": f"{kb} KB of nested brackets (worst case)",
    }
    for name, label in labels.items():
        times = parsing[name]
        lines.append(row(label, min(times) * 1e3, statistics.median(times) * 1e3))
    listing_ms = statistics.median(parsing["listing"]) * 1e3
    goal = Goal(
        f"{kb} KB code listing read in < {GOAL_PARSE_MS} ms",
        f"{listing_ms:.0f} ms",
        listing_ms < GOAL_PARSE_MS,
    )
    return Section(lines, [goal])


def run(options: Options) -> Section:
    return section(measure_parsing(1 if options.smoke else 9))
