"""Reply text -> prose, tool calls and invalid tool calls. Pure: no I/O.

The tool instructions (`langchain_dynaspark.emulation.instructions`) ask the model to
answer with only `{"tool_calls": [{"name": ..., "arguments": {...}}]}`. Models,
Gemini models especially, often write something else. The parser reads, with
prose around or not:

- JSON calls: that object; a single `{"name": ..., "arguments"|"args"|
  "parameters": ...}` call or a list of them; OpenAI's
  `{"type": "function", "function": {...}}` items; Gemini's `functionCall` /
  `function_call` objects (alone, in a list, or under `functionCalls`);
  `{"action": ..., "action_input": ...}` and `{"tool": ..., "tool_input": ...}`;
  `<tool_call>{...}</tool_call>` tags. Arguments may be a JSON string.
- Almost-JSON: single quotes, `True`/`False`/`None`, trailing commas, in a
  fence with any language tag or none, or one that is never closed.
- Python calls, read with `ast` (never evaluated): `get_weather(city="Paris")`,
  `default_api.get_weather(...)`, `print(...)` around either, one per line, bare
  or in a fence. Only keyword arguments with literal values; one positional
  argument only when the tool has exactly one parameter.

Which code is a call. JSON in one of the call shapes above is a call wherever it
appears: those shapes exist only to call tools. A Python call names a tool that
was offered and counts as a call when it is in a ```` ```tool_code ```` fence,
when the reply holds nothing but calls (and fences), or when a call is required
(`tool_choice` is `"any"` or a tool name). Otherwise, under `"auto"`, a Python
call amid prose (a code sample explaining how to call the tool) stays text.
A call whose arguments are not all literals (`get_weather(city=...)`) is text.

Strict in what it returns: only offered tools become `tool_calls`; arguments are
a dict checked against the tool's JSON Schema (a wrong type, a missing required
argument, an unknown one where the schema forbids extras: `invalid_tool_calls`
with the reason); each call gets a fresh id; the same call written twice in one
reply (once in prose, once in a fence) is kept once. Any prose stays as the
content; a reply with no call is returned unchanged. Parsing is linear in the
reply's length.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

from langchain_dynaspark.emulation.validation import schema_error
from langchain_dynaspark.json_values import (
    JsonSpan,
    NotALiteralError,
    json_spans,
    literal_value,
    load_json,
    without_surrogates,
)

__all__ = ["TOO_MANY_CALLS", "ParsedReply", "parse_tool_calls"]

TOO_MANY_CALLS = "Too many tool calls"
"""How the error of a call beyond `max_calls` starts."""

_ARGUMENT_KEYS = ("arguments", "args", "parameters")
_NAMED_SHAPES = (("action", "action_input"), ("tool", "tool_input"))
_GEMINI_KEYS = ("functionCall", "function_call")
_FINAL_ANSWERS = frozenset({"final answer", "final_answer", "finalanswer"})
_CALL_START = re.compile(
    r"""\{\s*["'](?:tool_calls|functionCalls?|function_call)["']\s*:"""
    r"""|\{\s*["']name["']\s*:\s*["'][^"'\n]*["']\s*,\s*"""
    r"""["'](?:arguments|args|parameters)["']\s*:"""
    r"""|\{\s*["'](?:action|tool)["']\s*:\s*["'][^"'\n]*["']\s*,\s*"""
    r"""["'](?:action_input|tool_input)["']\s*:"""
)
"""How a malformed call opens: reported as an invalid call, not dropped."""
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.#-]*)[^\n]*$", re.MULTILINE)
_EMPTY_FENCE = re.compile(r"```[\w+.#-]*\s*(?:```|\Z)")
_EMPTY_TAGS = re.compile(r"<tool_call>\s*(?:</tool_call>|\Z)|</tool_call>")
_BLANK_LINES = re.compile(r"\n{3,}")
_PRINT_BEFORE = re.compile(r"print\s*\(\s*\Z")
_PAREN_TOKENS = re.compile(r"""[()"'\\\n]""")
_TOOL_CODE = "tool_code"


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into what the model said and the tools it called.

    Attributes:
        content: The prose, without the tool calls.
        tool_calls: Valid calls to offered tools, in order.
        invalid_tool_calls: Calls that cannot be run, each with its `error`.
    """

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def parse_tool_calls(
    text: str,
    tools: Mapping[str, Mapping[str, Any] | None] | Collection[str],
    *,
    max_calls: int | None = None,
    required: str | None = None,
) -> ParsedReply:
    """Find the tool calls in a reply.

    Args:
        text: The reply text.
        tools: The tools the model was offered: names, or a mapping from each
            name to its JSON Schema for arguments (`None`: not checked).
        max_calls: Most valid calls to keep (`1` for `parallel_tool_calls=False`);
            later ones become invalid calls.
        required: `"any"` or a tool name when a call is required (Python calls
            amid prose count then). With a tool name, a reply that is only that
            tool's arguments object (no call shape) is taken as the call.

    Returns:
        The prose, the valid calls and the invalid ones.
    """
    text = without_surrogates(text)
    schemas = dict(tools) if isinstance(tools, Mapping) else dict.fromkeys(tools)
    spans = list(json_spans(text))
    json_found = _json_calls(text, spans)
    found = json_found + _python_calls(text, schemas, json_found, forced=bool(required))
    if not found and required is not None and required in schemas:
        found = _bare_arguments(spans, required, schemas[required])
    if not found:
        return ParsedReply(text)
    found.sort(key=lambda call: call.start)
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    seen: set[tuple[str | None, str]] = set()
    for found_call in found:
        for item in found_call.items:
            outcome = _check(item, schemas)
            key = (
                outcome.name,
                outcome.args_text
                if outcome.error
                else json.dumps(outcome.args, sort_keys=True),
            )
            if key in seen:
                continue
            seen.add(key)
            if outcome.error is None and (max_calls is None or len(calls) < max_calls):
                calls.append(
                    tool_call(name=outcome.name or "", args=outcome.args, id=_new_id())
                )
            else:
                error = outcome.error or (
                    f"{TOO_MANY_CALLS}: only {max_calls} per reply allowed "
                    "(parallel_tool_calls=False)."
                )
                invalid.append(
                    invalid_tool_call(
                        name=outcome.name,
                        args=outcome.args_text,
                        id=_new_id(),
                        error=error,
                    )
                )
    answer = next((c.answer for c in found if c.answer is not None), None)
    content = answer if answer is not None else _without(text, found)
    return ParsedReply(content, calls, invalid)


@dataclass(frozen=True)
class _Item:
    """One call as written: a name and its arguments, or why it is unreadable."""

    name: str | None
    args: Any = None
    positional: tuple[Any, ...] = ()
    error: str | None = None
    raw: str | None = None


@dataclass(frozen=True)
class _Found:
    """A span of the reply that holds calls (or a final answer)."""

    start: int
    end: int
    items: tuple[_Item, ...] = ()
    answer: str | None = None


@dataclass(frozen=True)
class _Outcome:
    """One call checked: its arguments, and why it cannot run (`None`: it can)."""

    name: str | None
    args: dict[str, Any]
    args_text: str
    error: str | None


# --- JSON calls ---------------------------------------------------------------


def _json_calls(text: str, spans: list[JsonSpan]) -> list[_Found]:
    found: list[_Found] = []
    for span in spans:
        if span.error is not None:
            if _CALL_START.match(text, span.start):
                found.append(_malformed(text[span.start : span.end], span))
            continue
        answer = _final_answer(span.value)
        if answer is not None:
            found.append(_Found(span.start, span.end, answer=answer))
            continue
        items = _call_items(span.value)
        if items is not None:
            found.append(_Found(span.start, span.end, tuple(items)))
    unclosed = list(_unclosed_calls(text, spans))
    if unclosed:
        first = unclosed[0].start
        found = [f for f in found if f.start < first or _outside(f, unclosed)]
    return found + unclosed


def _outside(part: _Found, fragments: list[_Found]) -> bool:
    return not any(f.start <= part.start < f.end for f in fragments)


def _malformed(raw: str, span: JsonSpan) -> _Found:
    error = f"The reply looks like a tool call but is not valid JSON: {span.error}."
    return _Found(span.start, span.end, (_Item(None, error=error, raw=raw.strip()),))


def _unclosed_calls(text: str, spans: list[JsonSpan]) -> Iterator[_Found]:
    """Calls that open but never close: invalid, up to their fence or the end."""
    index = 0
    for match in _CALL_START.finditer(text):
        start = match.start()
        while index < len(spans) and spans[index].end <= start:
            index += 1
        if index < len(spans) and spans[index].start <= start:
            continue
        end = _fragment_end(text, start)
        try:
            load_json(text[start:end])
        except ValueError as err:
            yield _malformed(text[start:end], JsonSpan(start, end, error=str(err)))
        if end == len(text):
            return


def _fragment_end(text: str, start: int) -> int:
    """Where a malformed call ends: its closing fence, else the end of the text."""
    if text.count("```", 0, start) % 2:
        close = text.find("```", start)
        if close >= 0:
            return close
    return len(text)


def _call_items(value: Any) -> list[_Item] | None:
    """The calls a decoded JSON value holds, or `None` if it is no call."""
    if isinstance(value, list):
        if value and all(map(_is_single_call, value)):
            return [_item(v) for v in value]
        return None
    if not isinstance(value, dict):
        return None
    for key in ("tool_calls", "functionCalls"):
        if key in value:
            calls = value[key]
            return [_item(c) for c in (calls if isinstance(calls, list) else [calls])]
    return [_item(value)] if _is_single_call(value) else None


def _unwrap(value: dict[str, Any]) -> dict[str, Any]:
    for key in ("function", *_GEMINI_KEYS):
        inner = value.get(key)
        if isinstance(inner, dict):
            return inner
    return value


def _is_single_call(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    inner = _unwrap(value)
    if inner is not value:
        return isinstance(inner.get("name"), str)
    if isinstance(value.get("name"), str) and any(k in value for k in _ARGUMENT_KEYS):
        return True
    return any(
        isinstance(value.get(name), str) and args in value
        for name, args in _NAMED_SHAPES
    )


def _item(value: Any) -> _Item:
    if not isinstance(value, dict):
        return _Item(None, error="A tool call needs a tool name.", raw=_json(value))
    value = _unwrap(value)
    for name_key, args_key in (("name", None), *_NAMED_SHAPES):
        name = value.get(name_key)
        if not isinstance(name, str):
            continue
        keys = _ARGUMENT_KEYS if args_key is None else (args_key,)
        args = next((value[key] for key in keys if key in value), None)
        return _Item(name, args)
    return _Item(None, error="A tool call needs a tool name.", raw=_json(value))


def _final_answer(value: Any) -> str | None:
    """The answer in `{"action": "Final Answer", "action_input": "..."}`."""
    if not isinstance(value, dict) or not isinstance(value.get("action"), str):
        return None
    action = value["action"].strip().lower()
    answer = value.get("action_input")
    if action in _FINAL_ANSWERS and isinstance(answer, str):
        return answer
    return None


def _bare_arguments(
    spans: list[JsonSpan], name: str, schema: Mapping[str, Any] | None
) -> list[_Found]:
    """The one tool's arguments given alone, when that tool was required."""
    if not schema:
        return []
    for span in reversed(spans):
        if isinstance(span.value, dict) and schema_error(schema, span.value) is None:
            return [_Found(span.start, span.end, (_Item(name, span.value),))]
    return []


# --- Python calls -------------------------------------------------------------


def _python_calls(
    text: str,
    schemas: Mapping[str, Mapping[str, Any] | None],
    json_found: list[_Found],
    *,
    forced: bool,
) -> list[_Found]:
    names = sorted(
        (n for n in schemas if n.isidentifier() and n in text), key=len, reverse=True
    )
    alternatives = [r"default_api\.(\w+)"] if "default_api." in text else []
    if names:
        alternatives.append("(" + "|".join(map(re.escape, names)) + ")")
    if not alternatives:
        return []
    start_re = re.compile(r"(?<![\w.])(?:" + "|".join(alternatives) + r")\s*\(")
    matches = list(start_re.finditer(text))
    if not matches:
        return []
    parens = _paren_pairs(text)
    fences = _fences(text)
    found: list[_Found] = []
    in_tool_code: list[bool] = []
    reach = 0
    taken = iter(sorted((f.start, f.end) for f in json_found))
    json_span = next(taken, None)
    for match in matches:
        start, open_paren = match.start(), match.end() - 1
        while json_span is not None and json_span[1] <= start:
            json_span = next(taken, None)
        if json_span is not None and json_span[0] <= start:
            continue
        end = parens.get(open_paren)
        if start < reach or end is None:
            continue
        reach = end
        item = _python_item(text[start:end])
        if item is None:
            continue
        before = _PRINT_BEFORE.search(text, max(0, start - 16), start)
        if before:
            outer_end = parens.get(before.start() + before.group().index("("), 0)
            if outer_end > end and not text[end : outer_end - 1].strip():
                start, end = before.start(), outer_end
        found.append(_Found(start, end, (item,)))
        in_tool_code.append(_fence_language(fences, start) == _TOOL_CODE)
        reach = end
    if forced or all(in_tool_code):
        return found
    if not _without(text, found + json_found).strip():
        return found
    return [f for f, tool_code in zip(found, in_tool_code, strict=True) if tool_code]


def _python_item(source: str) -> _Item | None:
    """The call `source` spells, or `None` if it is not a literal-only call."""
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        name = func.attr
    elif isinstance(func, ast.Name):
        name = func.id
    else:
        return None
    try:
        positional = tuple(literal_value(arg) for arg in node.args)
        args = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return None
            args[keyword.arg] = literal_value(keyword.value)
    except NotALiteralError:
        return None
    return _Item(name, args, positional, raw=source)


def _paren_pairs(text: str) -> dict[int, int]:
    """Map each `(` that is closed to the end of its span. One linear pass.

    Inside parentheses, quoted strings are skipped; as in Python, a quote
    without its closing quote ends at the line's end.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    quote = ""
    escaped_at = -1
    for match in _PAREN_TOKENS.finditer(text):
        pos = match.start()
        if pos == escaped_at:
            continue
        char = text[pos]
        if quote:
            if char == "\\":
                escaped_at = pos + 1
            elif char in (quote, "\n"):
                quote = ""
            continue
        if char in "\"'":
            quote = char if stack else ""
        elif char == "(":
            stack.append(pos)
        elif char == ")" and stack:
            pairs[stack.pop()] = pos + 1
    return pairs


def _fences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, language) of each fenced block; an unclosed one runs to the end."""
    blocks = []
    opening: tuple[int, str] | None = None
    for match in _FENCE.finditer(text):
        if opening is None:
            opening = (match.end(), match.group(1).lower())
        else:
            blocks.append((opening[0], match.start(), opening[1]))
            opening = None
    if opening is not None:
        blocks.append((opening[0], len(text), opening[1]))
    return blocks


def _fence_language(fences: list[tuple[int, int, str]], pos: int) -> str | None:
    return next((lang for start, end, lang in fences if start <= pos < end), None)


# --- checking and output ----------------------------------------------------------


def _check(item: _Item, schemas: Mapping[str, Mapping[str, Any] | None]) -> _Outcome:
    """Turn one call as written into arguments, and say what is wrong with it."""
    if item.error is not None:
        return _Outcome(item.name, {}, item.raw or "", item.error)
    name = item.name
    args = _arguments(item, schemas.get(name) if name is not None else None)
    if isinstance(args, _Outcome):
        return args
    args_text = _json(args)
    if name is None or name not in schemas:
        offered = ", ".join(sorted(schemas)) if schemas else "none"
        reason = f"Tool {name!r} was not offered; offered tools: {offered}."
        return _Outcome(name, args, args_text, reason)
    problem = schema_error(schemas[name], args)
    if problem is not None:
        reason = f"The arguments do not match the schema of {name}: {problem}."
        return _Outcome(name, args, args_text, reason)
    return _Outcome(name, args, args_text, None)


def _arguments(
    item: _Item, schema: Mapping[str, Any] | None
) -> dict[str, Any] | _Outcome:
    """The call's arguments as a dict, or the invalid outcome saying why not."""
    args = item.args
    only = _only_parameter(schema)
    if isinstance(args, str):
        stripped = args.strip()
        if not stripped:
            args = None
        elif stripped[0] in "{[" or only is None:
            try:
                args = load_json(stripped)
            except ValueError as err:
                reason = f"The arguments are not valid JSON: {err}."
                return _Outcome(item.name, {}, args, reason)
        else:
            args = {only: args}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        reason = f"The arguments must be a JSON object, not {type(args).__name__}."
        return _Outcome(item.name, {}, _json(args), reason)
    if not item.positional:
        return args
    if only is None or len(item.positional) > 1 or only in args:
        reason = (
            "Give each argument by name: positional arguments are accepted "
            "only for a tool with exactly one parameter."
        )
        return _Outcome(item.name, {}, item.raw or _json(args), reason)
    return {only: item.positional[0], **args}


def _only_parameter(schema: Mapping[str, Any] | None) -> str | None:
    properties = (schema or {}).get("properties")
    if isinstance(properties, Mapping) and len(properties) == 1:
        return str(next(iter(properties)))
    return None


def _without(text: str, found: list[_Found]) -> str:
    kept, pos = [], 0
    for part in sorted(found, key=lambda f: f.start):
        if part.start < pos:
            continue
        kept.append(text[pos : part.start])
        pos = part.end
    kept.append(text[pos:])
    prose = _EMPTY_TAGS.sub("", _EMPTY_FENCE.sub("", "".join(kept)))
    return _BLANK_LINES.sub("\n\n", prose).strip()


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
