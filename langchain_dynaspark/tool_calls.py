"""Reply text -> prose, tool calls and invalid tool calls. Pure: no I/O.

The tool instructions (`langchain_dynaspark.instructions`) ask the model to
answer with only `{"tool_calls": [{"name": ..., "arguments": {...}}]}`. Models
do not always comply to the letter, so the parser is forgiving in what it
accepts:

- that object bare, inside a ```` ```json ```` fence, or with prose around it;
- a single call written as `{"name": ..., "arguments": {...}}` (also with
  `args` or `parameters`), or a JSON list of such calls;
- OpenAI's `{"type": "function", "function": {"name", "arguments"}}` items;
- `arguments` given as a JSON string, or left out (no arguments).

It is strict in what it returns: each call gets a fresh id and a dict of
arguments; a call to a tool that was not offered, arguments that are not a JSON
object, and an object that looks like a tool call but is not valid JSON land in
`invalid_tool_calls` with the reason. Any prose stays as the content. A JSON
object that is not a tool call is prose too, and a reply without tool JSON is
returned unchanged.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

__all__ = ["ParsedReply", "find_json_object", "parse_tool_calls"]

_DECODER = json.JSONDecoder(strict=False)
_OPENING = re.compile(r"[{\[]")
_ARGUMENT_KEYS = ("arguments", "args", "parameters")
_CALL_START = re.compile(
    r'\{\s*"tool_calls"\s*:|\{\s*"name"\s*:\s*"[^"]*"\s*,\s*"(?:arguments|args|parameters)"\s*:'
)
_FENCE = "```"
_EMPTY_FENCE = re.compile(r"```[\w-]*\s*```")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into what the model said and the tools it called.

    Attributes:
        content: The prose, without the tool-call JSON.
        tool_calls: Valid calls to offered tools, in order.
        invalid_tool_calls: Calls that cannot be run, each with its `error`.
    """

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def parse_tool_calls(
    text: str, tool_names: Collection[str], *, max_calls: int | None = None
) -> ParsedReply:
    """Find the tool calls in a reply.

    Args:
        text: The reply text.
        tool_names: Names of the tools the model was offered.
        max_calls: Most valid calls to keep (`1` for `parallel_tool_calls=False`);
            later ones become invalid calls.

    Returns:
        The prose, the valid calls and the invalid ones.
    """
    spans: list[tuple[int, int]] = []
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for start, end, value in _scan(text):
        spans.append((start, end))
        if isinstance(value, str):
            error = f"The reply looks like a tool call but is not valid JSON: {value}."
            invalid.append(_invalid(None, text[start:end].strip(), error))
            continue
        for item in value:
            try:
                call = _classify(item, tool_names)
            except _Rejected as rejected:
                invalid.append(_invalid(*rejected.args))
                continue
            if max_calls is not None and len(calls) >= max_calls:
                error = (
                    f"Only {max_calls} tool call(s) per reply allowed "
                    "(parallel_tool_calls=False)."
                )
                invalid.append(_invalid(call["name"], _json(call["args"]), error))
            else:
                calls.append(call)
    if not spans:
        return ParsedReply(text)
    return ParsedReply(_without(text, spans), calls, invalid)


def find_json_object(text: str) -> str | None:
    """The first JSON object in `text` (bare, fenced or amid prose), as text."""
    pos = 0
    while (start := text.find("{", pos)) >= 0:
        try:
            _, end = _DECODER.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        return text[start:end]
    return None


class _Rejected(Exception):
    """A call that cannot be run: args are (name, arguments text, reason)."""


def _scan(text: str) -> Iterator[tuple[int, int, Any]]:
    """Yield (start, end, calls) for each tool-call span.

    A span that opens like a tool call but is not valid JSON comes with the
    decoder's error message instead of the calls.
    """
    pos = 0
    while match := _OPENING.search(text, pos):
        start = match.start()
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError as err:
            if _CALL_START.match(text, start):
                end = _fragment_end(text, start)
                yield start, end, str(err)
                pos = end
            else:
                pos = start + 1
            continue
        items = _call_items(value)
        if items is None:
            pos = end if isinstance(value, dict) else start + 1
            continue
        yield start, end, items
        pos = end


def _call_items(value: Any) -> list[Any] | None:
    """The call items a decoded value holds, or `None` if it is no tool call."""
    if isinstance(value, list):
        return value if value and all(map(_is_single_call, value)) else None
    if not isinstance(value, dict):
        return None
    if "tool_calls" in value:
        calls = value["tool_calls"]
        return calls if isinstance(calls, list) else [calls]
    return [value] if _is_single_call(value) else None


def _is_single_call(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        value = value["function"]
    return isinstance(value.get("name"), str) and any(
        key in value for key in _ARGUMENT_KEYS
    )


def _classify(item: Any, tool_names: Collection[str]) -> ToolCall:
    """Turn one call item into a `ToolCall`, or raise `_Rejected` saying why not."""
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item = item["function"]
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise _Rejected(None, _json(item), "A tool call needs a tool name.")
    name: str = item["name"]
    args = next((item[key] for key in _ARGUMENT_KEYS if key in item), None)
    if isinstance(args, str):
        try:
            args = _DECODER.decode(args) if args.strip() else None
        except ValueError as err:
            reason = f"The arguments are not valid JSON: {err}."
            raise _Rejected(name, args, reason) from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        reason = f"The arguments must be a JSON object, not {type(args).__name__}."
        raise _Rejected(name, _json(args), reason)
    if name not in tool_names:
        offered = ", ".join(sorted(tool_names)) if tool_names else "none"
        reason = f"Tool {name!r} was not offered; offered tools: {offered}."
        raise _Rejected(name, _json(args), reason)
    return tool_call(name=name, args=args, id=_new_id())


def _invalid(name: str | None, args: str, error: str) -> InvalidToolCall:
    return invalid_tool_call(name=name, args=args, id=_new_id(), error=error)


def _fragment_end(text: str, start: int) -> int:
    """Where a malformed call ends: its closing fence, else the end of the text."""
    if text.count(_FENCE, 0, start) % 2:
        close = text.find(_FENCE, start)
        if close >= 0:
            return close
    return len(text)


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    kept, pos = [], 0
    for start, end in spans:
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    prose = _EMPTY_FENCE.sub("", "".join(kept))
    return _BLANK_LINES.sub("\n\n", prose).strip()


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
