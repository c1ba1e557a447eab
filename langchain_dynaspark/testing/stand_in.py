"""A literal-minded stand-in for the model behind Dynaspark. Pure: no I/O.

The local server (`langchain_dynaspark.testing.server`) is not a model, but the
examples in the README, the docs/ pages, the class docstring and the notebooks
must run offline and end. `reply` reads a prompt the way `ChatDynaspark` writes
it (the instruction texts of `langchain_dynaspark.emulation.instructions`, the
turn labels of `langchain_dynaspark.prompt`) and answers as a model that follows
the instructions to the letter would:

- tools are listed and the last turn is the user's: it calls one tool (the one
  `tool_choice` forces, else the first whose name or description shares a word
  with the user's text, else the first), with arguments filled from the tool's
  schema;
- the last turn is a tool's result: it answers in prose from the results;
- the last turn asks it to repair its reply (the `repair` text, after its own
  reply): it answers again in the form the turn restates, as it would have
  answered the user (a forced call, else a tool not yet called since the
  user's turn, so an agent moves on; an object that fits the schema; a JSON
  object);
- the prompt carries a JSON schema: it answers with an object that fits it;
- JSON mode: an object with the keys the user quoted (else `answer`), each
  holding the user's first sentence;
- otherwise it has nothing to say (`None`), and the server echoes the prompt.

Values come from the user's last turn: a string is the last run of capitalised
words that does not start a sentence (`"Paris"` in "What is the weather in
Paris?"), else the whole text; a number is the first number in the text that
the schema allows, else the smallest allowed value. Custom
`format_instructions` are not recognised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_dynaspark.emulation.instructions import DEFAULT_INSTRUCTIONS
from langchain_dynaspark.prompt import ASSISTANT_CUE

__all__ = ["fill_schema", "reply"]

_SYSTEM = "System: "
_TOOLS_HEAD = DEFAULT_INSTRUCTIONS["tools"].partition("{tools}")[0]
_TOOLS_TAIL = DEFAULT_INSTRUCTIONS["tools"].partition("{choice}")[2]
_FORCED = re.compile(
    re.escape(DEFAULT_INSTRUCTIONS["tool"]).replace(re.escape("{name}"), r"(\S+)")
)
_SCHEMA_HEAD = DEFAULT_INSTRUCTIONS["json_schema"].partition("{schema}")[0]
_JSON_MODE = DEFAULT_INSTRUCTIONS["json_mode"]
_NO_TOOLS = DEFAULT_INSTRUCTIONS["none"]
_REPAIR_HEAD, _, _REPAIR_REST = DEFAULT_INSTRUCTIONS["repair"].partition("{error}")
_REPAIR_MIDDLE, _, _REPAIR_TAIL = _REPAIR_REST.partition("{form}")
_PARTS = "\n\n"
"""Between the parts of the instructions, and between turns."""
_TOOL_HEAD = re.compile(r"- ([^\s:]+)")
_ARGUMENTS = "\n  Arguments (JSON Schema): "
"""How `build_instructions` lists each tool: `- name: description`, then this."""
_TURN = re.compile(
    r"(?:^|\n\n)(User|Assistant|System|Tool result|Tool error)(?: \(([^\n]*?)\))?:"
)
_WORD = re.compile(r"[A-Za-z][\w'-]*|\d+(?:\.\d+)?|[.!?]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"(?<!\w)(?:'([^'\n]+)'|\"([^\"\n]+)\"|`([^`\n]+)`)(?!\w)")
_KEY = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_FORMATS = {
    "date": "2000-01-01",
    "date-time": "2000-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 8


@dataclass(frozen=True)
class _Turn:
    label: str
    detail: str
    text: str


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class _Form:
    """The form the instructions ask a reply to take."""

    tools: list[_Tool]
    forced: str | None
    schema: dict[str, Any] | None
    json_mode: bool


_FREE = _Form([], None, None, json_mode=False)
"""No form asked for."""


@dataclass(frozen=True)
class _Read:
    """A prompt as `ChatDynaspark` wrote it: instructions, then the turns."""

    form: _Form
    turns: list[_Turn]


def reply(prompt: str) -> str | None:
    """What a literal-minded model answers to `prompt`, or `None` to echo it.

    Args:
        prompt: The `user_input` form field, as `ChatDynaspark` renders it.
    """
    read = _read(prompt)
    if read is None or not read.turns:
        return None
    turns = read.turns
    last = turns[-1]
    if last.label in {"Tool result", "Tool error"}:
        return _prose(turns)
    if last.label == "User":
        return _answer(read.form, last.text, frozenset())
    form = _repair_form(turns)
    if form is None:
        return None
    user = next(
        (i for i in reversed(range(len(turns))) if turns[i].label == "User"), -1
    )
    called = frozenset(
        turn.detail.partition(",")[0]
        for turn in turns[user + 1 :]
        if turn.label in {"Tool result", "Tool error"}
    )
    return _answer(form, turns[user].text if user >= 0 else "", called)


def _answer(form: _Form, text: str, called: frozenset[str]) -> str | None:
    """The reply in `form` to the user's `text`, or `None` if no form is asked for.

    Args:
        form: What the instructions ask for.
        text: The user's last turn.
        called: Tools whose results are already shown since that turn.
    """
    if form.tools:
        tool = _pick(form.tools, form.forced, text, called)
        call = {"name": tool.name, "arguments": fill_schema(tool.schema, text)}
        answer: Any = {"tool_calls": [call]}
    elif form.schema is not None:
        answer = fill_schema(form.schema, text)
    elif form.json_mode:
        answer = _any_object(text)
    else:
        return None
    return json.dumps(answer, ensure_ascii=False)


def fill_schema(schema: Mapping[str, Any], text: str) -> Any:
    """A value that fits the JSON `schema`, taken from `text` where it can be.

    Args:
        schema: A JSON Schema (`$ref`s into `$defs`/`definitions` are followed).
        text: What the user asked; strings and numbers are taken from it.
    """
    return _fill(schema, schema, text, 0)


def _read(prompt: str) -> _Read | None:
    """Split a transcript into the package's instructions and the turns."""
    if not prompt.endswith(ASSISTANT_CUE):
        return None
    body = prompt[: -len(ASSISTANT_CUE)]
    if not body.startswith(_SYSTEM):
        return _Read(_FREE, _turns(body))
    try:
        form, position = _read_form(body, len(_SYSTEM))
    except ValueError:
        return None
    if form == _FREE:
        position = 0
    return _Read(form, _turns(body[position:]))


def _read_form(text: str, position: int) -> tuple[_Form, int]:
    """The instructions `build_instructions` wrote from `position` on, and their end.

    Raises:
        ValueError: If a listing or a schema in them does not parse.
    """
    tools: list[_Tool] = []
    forced = schema = None
    json_mode = False
    gap = ""
    if text.startswith(_TOOLS_HEAD, position):
        tools, position = _read_tools(text, position + len(_TOOLS_HEAD))
        tail = text.index(_TOOLS_TAIL, position)
        choice = _FORCED.search(text, position, tail)
        forced = choice.group(1) if choice else None
        position, gap = tail + len(_TOOLS_TAIL), _PARTS
    elif text.startswith(_NO_TOOLS, position):
        position, gap = position + len(_NO_TOOLS), _PARTS
    if text.startswith(gap + _SCHEMA_HEAD, position):
        start = position + len(gap + _SCHEMA_HEAD)
        schema, position = json.JSONDecoder().raw_decode(text, start)
    elif text.startswith(gap + _JSON_MODE, position):
        json_mode, position = True, position + len(gap + _JSON_MODE)
    return _Form(tools, forced, schema, json_mode), position


def _repair_form(turns: list[_Turn]) -> _Form | None:
    """The form a repair turn (last, after the model's reply) restates, if it is one.

    The turn is the `repair` text with the error and the form filled in; the
    error is the package's, but may quote the model, so every place the form
    may start is tried until one reads as a whole form.
    """
    if len(turns) < 2 or turns[-2].label != "Assistant" or turns[-1].label != "System":
        return None
    text = turns[-1].text
    if not text.startswith(_REPAIR_HEAD) or not text.endswith(_REPAIR_TAIL):
        return None
    end = len(text) - len(_REPAIR_TAIL)
    start = text.find(_REPAIR_MIDDLE, len(_REPAIR_HEAD))
    while start != -1:
        try:
            form, position = _read_form(text[:end], start + len(_REPAIR_MIDDLE))
        except ValueError:
            form, position = _FREE, -1
        if position == end and form != _FREE:
            return form
        start = text.find(_REPAIR_MIDDLE, start + 1)
    return None


def _read_tools(body: str, position: int) -> tuple[list[_Tool], int]:
    """The tools listed from `position` on, and where the listing ends."""
    decoder = json.JSONDecoder()
    tools = []
    while head := _TOOL_HEAD.match(body, position):
        arguments = body.index(_ARGUMENTS, head.end())
        schema, position = decoder.raw_decode(body, arguments + len(_ARGUMENTS))
        tools.append(_Tool(head.group(1), body[head.end() : arguments], schema))
        if not body.startswith("\n- ", position):
            break
        position += 1
    return tools, position


def _turns(text: str) -> list[_Turn]:
    matches = list(_TURN.finditer(text))
    return [
        _Turn(
            match.group(1),
            match.group(2) or "",
            text[match.end() : ends.start() if ends else len(text)].strip(),
        )
        for match, ends in zip(matches, [*matches[1:], None], strict=True)
    ]


def _any_object(text: str) -> dict[str, str]:
    """JSON mode: the keys the user quoted, each with the user's first sentence."""
    keys = [k for k in _quoted(text) if _KEY.fullmatch(k)] or ["answer"]
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return dict.fromkeys(keys, first)


def _quoted(text: str) -> list[str]:
    return [next(filter(None, match.groups())) for match in _QUOTED.finditer(text)]


def _pick(
    tools: list[_Tool], forced: str | None, text: str, called: frozenset[str]
) -> _Tool:
    """The forced tool, else (among those not `called`, if any) one fitting `text`."""
    for tool in tools:
        if tool.name == forced:
            return tool
    fresh = [tool for tool in tools if tool.name not in called] or tools
    asked = _words(text)
    for tool in fresh:
        if _words(f"{tool.name} {tool.description}") & asked:
            return tool
    return fresh[0]


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z]+", text.lower()) if len(w) > 3}


def _prose(turns: list[_Turn]) -> str:
    """An answer built from the tool results since the last assistant turn."""
    results = []
    for turn in reversed(turns):
        if turn.label not in {"Tool result", "Tool error"}:
            break
        name = turn.detail.partition(",")[0] or "the tool"
        verb = "failed" if turn.label == "Tool error" else "says"
        results.append(f"{name} {verb}: {turn.text}")
    return "From the tools: " + "; ".join(reversed(results))


def _fill(schema: Any, root: Mapping[str, Any], text: str, depth: int) -> Any:
    schema = _concrete(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if depth >= _MAX_DEPTH and kind in {"object", "array"}:
        return {} if kind == "object" else []
    if kind == "object":
        properties = schema.get("properties") or {}
        wanted = schema.get("required", list(properties))
        return {
            name: _fill(properties[name], root, text, depth + 1)
            for name in wanted
            if name in properties
        }
    if kind == "array":
        item = _fill(schema.get("items", {}), root, text, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    return _scalar(kind, schema, text)


def _concrete(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """`schema` with `$ref`s followed and the first non-null option taken."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, Mapping):
            return {}
        if "$ref" in schema:
            schema = _resolve(schema["$ref"], root)
            continue
        options = [
            option
            for key in ("anyOf", "oneOf", "allOf")
            for option in schema.get(key) or ()
            if isinstance(option, Mapping) and option.get("type") != "null"
        ]
        if not options:
            return schema
        schema = options[0]
    return {}


def _scalar(kind: str, schema: Mapping[str, Any], text: str) -> Any:
    if kind in {"integer", "number"}:
        return _number(schema, text, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, text)


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node


def _number(schema: Mapping[str, Any], text: str, *, integer: bool) -> float | int:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    for found in _NUMBER.findall(text):
        value = float(found)
        if integer and not value.is_integer():
            continue
        if (low is None or value >= low) and (high is None or value <= high):
            return int(value) if integer else value
    value = 1 if low is None else low + ("exclusiveMinimum" in schema)
    if high is not None:
        value = min(value, high)
    return int(value) if integer else float(value)


def _string(schema: Mapping[str, Any], text: str) -> str:
    value = _FORMATS.get(schema.get("format", "")) or _subject(text)
    value = value.ljust(int(schema.get("minLength", 0)), "x")
    if "maxLength" in schema:
        value = value[: int(schema["maxLength"])]
    return value


def _subject(text: str) -> str:
    """What the text names.

    The first quoted phrase, else the last run of capitalised words that does
    not start a sentence, else the whole text.
    """
    if quoted := _quoted(text):
        return quoted[0]
    runs: list[list[str]] = []
    sentence_start = True
    previous_capital = False
    for word in _WORD.findall(text):
        if word in {".", "!", "?"}:
            sentence_start, previous_capital = True, False
            continue
        capital = word[0].isupper() and word != "I" and not sentence_start
        if capital and previous_capital:
            runs[-1].append(word)
        elif capital:
            runs.append([word])
        previous_capital = capital
        sentence_start = False
    return " ".join(runs[-1]) if runs else text.strip()
