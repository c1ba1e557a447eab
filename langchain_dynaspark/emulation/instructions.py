"""The prompt instructions that emulate tool calling and structured output. Pure.

Dynaspark has no tool calling and no JSON mode, so `ChatDynaspark` asks for both
in words: when tools are bound, or a JSON reply is wanted, these instructions
open the prompt, labelled `System:`. Every text the package adds to a prompt is
in `DEFAULT_INSTRUCTIONS`:

| key | used when | placeholders |
| --- | --- | --- |
| `tools` | tools are bound (any `tool_choice` but `"none"`) | `{tools}`, `{choice}` |
| `auto` | `tool_choice` is `None` or `"auto"` (becomes `{choice}`) | |
| `any` | `tool_choice` is `"any"` or `"required"` | |
| `tool` | `tool_choice` names one tool | `{name}` |
| `one_call` | `parallel_tool_calls=False` (added after the choice) | |
| `none` | `tool_choice="none"` (instead of `tools`) | |
| `json_schema` | `with_structured_output(method="json_schema")` | `{schema}` |
| `json_mode` | `with_structured_output(method="json_mode")` | |
| `repair` | a reply missed its required form (`format_retries`) | `{error}`, `{form}` |

Override any of them for one model with
`ChatDynaspark(format_instructions={"auto": "..."})`; keys left out keep their
default. Placeholders are replaced literally, so other braces (JSON examples)
need no escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_dynaspark.errors import DynasparkInputError

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "build_instructions",
    "check_response_format",
    "check_tool_choice",
    "check_tools",
    "fill",
    "resolve_instructions",
]

DEFAULT_INSTRUCTIONS: Mapping[str, str] = MappingProxyType(
    {
        "tools": (
            "You can call these tools:\n"
            "{tools}\n"
            "\n"
            "{choice}\n"
            "To call tools, reply with only a JSON object in this form, "
            "and no other text:\n"
            '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}\n'
            "You will then be shown each tool's result."
        ),
        "auto": "Call tools when they help you answer; otherwise answer in plain text.",
        "any": "You must call at least one of these tools now.",
        "tool": "You must call the tool {name} now.",
        "one_call": "Call at most one tool per reply.",
        "none": "Do not call any tools now; answer in plain text.",
        "json_schema": (
            "Reply with only a JSON object that matches this JSON Schema, "
            "and no other text:\n{schema}"
        ),
        "json_mode": "Reply with only a valid JSON object, and no other text.",
        "repair": (
            "Your last reply could not be used: {error}\n"
            "Reply again, following these instructions exactly:\n{form}"
        ),
    }
)
"""The default instruction texts, by key (see the module docstring)."""

_PLACEHOLDERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "tools": ("{tools}", "{choice}"),
        "tool": ("{name}",),
        "json_schema": ("{schema}",),
        "repair": ("{error}", "{form}"),
    }
)
_ANY = frozenset({"any", "required"})


def resolve_instructions(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Merge `overrides` over `DEFAULT_INSTRUCTIONS`, checking each text.

    Raises:
        DynasparkInputError: If a key is unknown, a text is not a string, or a
            text lacks a placeholder its key needs.
    """
    texts = dict(DEFAULT_INSTRUCTIONS)
    if not overrides:
        return texts
    unknown = sorted(set(overrides) - set(DEFAULT_INSTRUCTIONS))
    if unknown:
        msg = (
            f"Unknown format_instructions key(s): {', '.join(unknown)}. "
            f"Known keys: {', '.join(DEFAULT_INSTRUCTIONS)}."
        )
        raise DynasparkInputError(msg)
    for key, text in overrides.items():
        if not isinstance(text, str):
            msg = f"format_instructions[{key!r}] must be a string."
            raise DynasparkInputError(msg)
        missing = [p for p in _PLACEHOLDERS.get(key, ()) if p not in text]
        if missing:
            msg = (
                f"format_instructions[{key!r}] must contain {' and '.join(missing)}, "
                "where the package fills in what the model needs to see."
            )
            raise DynasparkInputError(msg)
        texts[key] = text
    return texts


def check_tools(
    tools: Sequence[Any], *, strict: bool | None = None
) -> list[dict[str, Any]]:
    """Convert tools to OpenAI function-tool dicts, as `bind_tools` accepts them.

    Args:
        tools: Anything `convert_to_openai_tool` takes.
        strict: Passed to `convert_to_openai_tool`.

    Raises:
        DynasparkInputError: If a tool is a provider built-in tool (only function
            tools can be emulated) or cannot be converted.
    """
    formatted = []
    for tool in tools:
        try:
            converted = convert_to_openai_tool(tool, strict=strict)
        except (ValueError, TypeError) as err:
            msg = f"Cannot use {type(tool).__name__} as a tool: {err}"
            raise DynasparkInputError(msg) from None
        if converted.get("type") != "function" or "function" not in converted:
            msg = (
                f"Dynaspark cannot run the provider built-in tool "
                f"{converted.get('type')!r}: only function tools (LangChain tools, "
                "functions, Pydantic classes, TypedDicts, JSON schemas) can be "
                "emulated."
            )
            raise DynasparkInputError(msg)
        formatted.append(converted)
    return formatted


def check_tool_choice(tool_choice: Any, tools: Sequence[Mapping[str, Any]]) -> str:
    """Normalize `tool_choice` to `"auto"`, `"any"`, `"none"` or a tool's name.

    Accepts what partner packages accept: `None`/`"auto"`, `"any"`/`"required"`,
    `"none"`, a tool name, `True` (the only tool) and OpenAI's
    `{"type": "function", "function": {"name": ...}}`.

    Raises:
        DynasparkInputError: If the choice names no bound tool, or forces a tool
            call while no tool is bound.
    """
    names: list[str] = [tool["function"]["name"] for tool in tools]
    if tool_choice is None or tool_choice == "auto":
        return "auto"
    if tool_choice == "none":
        return "none"
    if tool_choice is True and len(names) == 1:
        return names[0]
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        tool_choice = function.get("name") if isinstance(function, Mapping) else None
    if isinstance(tool_choice, str) and tool_choice in _ANY and names:
        return "any"
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    offered = ", ".join(names) if names else "no tools are bound"
    msg = (
        f"tool_choice={tool_choice!r} does not name a bound tool. Use 'auto', "
        f"'any', 'required', 'none' or a tool name (bound: {offered})."
    )
    raise DynasparkInputError(msg)


def check_response_format(response_format: Any) -> dict[str, Any]:
    """Check an OpenAI-style `response_format`.

    Accepts `{"type": "json_object"}` and
    `{"type": "json_schema", "json_schema": {"schema": {...}, ...}}`.

    Raises:
        DynasparkInputError: If it is neither.
    """
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "json_object":
            return dict(response_format)
        spec = response_format.get("json_schema")
        if (
            kind == "json_schema"
            and isinstance(spec, Mapping)
            and isinstance(spec.get("schema"), Mapping)
        ):
            return dict(response_format)
    msg = (
        "response_format must be {'type': 'json_object'} or {'type': 'json_schema', "
        "'json_schema': {'name': ..., 'schema': {...}}}; use "
        "with_structured_output() to pass a Pydantic class or TypedDict."
    )
    raise DynasparkInputError(msg)


def build_instructions(
    texts: Mapping[str, str],
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    tool_choice: str = "auto",
    parallel_tool_calls: bool | None = None,
    response_format: Mapping[str, Any] | None = None,
) -> str | None:
    """The instructions for one request, or `None` when it needs none.

    Args:
        texts: Instruction texts by key, from `resolve_instructions`.
        tools: Bound tools, as `check_tools` returns them.
        tool_choice: As `check_tool_choice` returns it.
        parallel_tool_calls: `False` asks for one call per reply.
        response_format: As `check_response_format` returns it.
    """
    parts = []
    if tools and tool_choice == "none":
        parts.append(texts["none"])
    elif tools:
        if tool_choice == "auto":
            choice = texts["auto"]
        elif tool_choice == "any":
            choice = texts["any"]
        else:
            choice = fill(texts["tool"], name=tool_choice)
        if parallel_tool_calls is False:
            choice = f"{choice} {texts['one_call']}"
        listing = "\n".join(_describe(tool["function"]) for tool in tools)
        parts.append(fill(texts["tools"], tools=listing, choice=choice))
    if response_format is not None:
        if response_format["type"] == "json_object":
            parts.append(texts["json_mode"])
        else:
            schema = _json(response_format["json_schema"]["schema"])
            parts.append(fill(texts["json_schema"], schema=schema))
    return "\n\n".join(parts) or None


def _describe(function: Mapping[str, Any]) -> str:
    head = f"- {function['name']}"
    if description := (function.get("description") or "").strip():
        head = f"{head}: {description}"
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return f"{head}\n  Arguments (JSON Schema): {_json(parameters)}"


def fill(template: str, **values: str) -> str:
    """Replace `{key}` placeholders in one pass (filled-in text is not rescanned)."""
    pattern = "|".join(re.escape("{" + key + "}") for key in values)
    return re.sub(pattern, lambda match: values[match.group()[1:-1]], template)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
