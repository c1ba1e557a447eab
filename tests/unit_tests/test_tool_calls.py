"""Tool-call parsing, instruction texts and the bind/structured-output setup.

Pure tests: no sockets. Round trips against the local server live in
`tests/integration_tests/test_tools.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from langchain_dynaspark import ChatDynaspark, DynasparkInputError
from langchain_dynaspark.emulation.instructions import (
    DEFAULT_INSTRUCTIONS,
    build_instructions,
    check_response_format,
    check_tool_choice,
    check_tools,
    resolve_instructions,
)
from langchain_dynaspark.emulation.tool_calls import parse_tool_calls
from langchain_dynaspark.json_values import json_objects
from langchain_dynaspark.prompt import build_prompt

TOOLS = ("get_weather", "add")
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _only_call(text: str) -> dict[str, Any]:
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.invalid_tool_calls == []
    assert len(parsed.tool_calls) == 1
    return dict(parsed.tool_calls[0])


# --- the parser: what it accepts -------------------------------------------


@pytest.mark.parametrize(
    ("reply", "content"),
    [
        pytest.param(CALL, "", id="bare"),
        pytest.param(f"```json\n{CALL}\n```", "", id="fenced"),
        pytest.param(f"```\n{CALL}\n```", "", id="fenced-no-language"),
        pytest.param(
            f"Let me check.\n```json\n{CALL}\n```\nOne moment.",
            "Let me check.\n\nOne moment.",
            id="fenced-with-prose",
        ),
        pytest.param(
            f"I will look it up: {CALL} and report back.",
            "I will look it up:  and report back.",
            id="prose-around",
        ),
        pytest.param(
            '{"name": "get_weather", "arguments": {"city": "Paris"}}',
            "",
            id="single-call",
        ),
        pytest.param(
            '{"tool_calls": [{"name": "get_weather", '
            '"arguments": "{\\"city\\": \\"Paris\\"}"}]}',
            "",
            id="arguments-as-json-string",
        ),
        pytest.param(
            '{"tool_calls": [{"type": "function", "function": '
            '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}',
            "",
            id="openai-function-item",
        ),
        pytest.param(
            '[{"name": "get_weather", "parameters": {"city": "Paris"}}]',
            "",
            id="list-of-calls-with-parameters-key",
        ),
        pytest.param(
            '{"tool_calls": {"name": "get_weather", "args": {"city": "Paris"}}}',
            "",
            id="tool-calls-not-a-list",
        ),
    ],
)
def test_each_reply_style_gives_the_same_call(reply: str, content: str) -> None:
    parsed = parse_tool_calls(reply, TOOLS)
    assert parsed.content == content
    assert parsed.invalid_tool_calls == []
    [call] = parsed.tool_calls
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Paris"}
    assert call["type"] == "tool_call"
    assert call["id"].startswith("call_")


@pytest.mark.parametrize(
    "arguments", ["{}", '""', "null", '"{}"'], ids=["object", "empty", "null", "str"]
)
def test_empty_or_missing_arguments_are_an_empty_dict(arguments: str) -> None:
    reply = f'{{"tool_calls": [{{"name": "add", "arguments": {arguments}}}]}}'
    assert _only_call(reply)["args"] == {}
    assert _only_call('{"tool_calls": [{"name": "add"}]}')["args"] == {}


def test_multiple_calls_keep_their_order_and_get_distinct_fresh_ids() -> None:
    reply = (
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}, "id": "x"},'
        ' {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "x"},'
        ' {"name": "add", "arguments": {"a": 3, "b": 4}}]}'
    )
    parsed = parse_tool_calls(reply, TOOLS)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [
        ("add", {"a": 1, "b": 2}),
        ("get_weather", {"city": "Oslo"}),
        ("add", {"a": 3, "b": 4}),
    ]
    ids = [c["id"] for c in parsed.tool_calls]
    assert len(set(ids)) == 3
    assert "x" not in ids
    again = parse_tool_calls(reply, TOOLS)
    assert not set(ids) & {c["id"] for c in again.tool_calls}


def test_separate_single_call_objects_are_all_taken() -> None:
    reply = (
        'First {"name": "add", "arguments": {"a": 1, "b": 2}} then '
        '{"name": "get_weather", "arguments": {"city": "Rome"}}.'
    )
    parsed = parse_tool_calls(reply, TOOLS)
    assert [c["name"] for c in parsed.tool_calls] == ["add", "get_weather"]
    assert parsed.content == "First  then ."


def test_unicode_arguments_are_kept() -> None:
    reply = '{"name": "get_weather", "arguments": {"city": "你好 Zürich"}}'
    assert _only_call(reply)["args"] == {"city": "你好 Zürich"}


def test_raw_newlines_inside_strings_are_tolerated() -> None:
    reply = '{"name": "get_weather", "arguments": {"city": "New\nYork"}}'
    assert _only_call(reply)["args"] == {"city": "New\nYork"}


# --- the parser: what it refuses -------------------------------------------


def test_a_call_to_a_tool_that_was_not_offered_is_invalid() -> None:
    reply = '{"tool_calls": [{"name": "delete_all", "arguments": {"force": true}}]}'
    parsed = parse_tool_calls(reply, TOOLS)
    assert parsed.tool_calls == []
    [bad] = parsed.invalid_tool_calls
    assert bad["name"] == "delete_all"
    assert json.loads(bad["args"]) == {"force": True}
    assert bad["id"].startswith("call_")
    assert "delete_all" in bad["error"]
    assert "add, get_weather" in bad["error"]


def test_valid_and_invalid_calls_are_separated() -> None:
    reply = (
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}},'
        ' {"name": "nope", "arguments": {}},'
        ' {"name": "add", "arguments": "{\\"a\\": 1,"},'
        ' {"name": "add", "arguments": [1, 2]},'
        ' {"arguments": {"a": 1}}]}'
    )
    parsed = parse_tool_calls(reply, TOOLS)
    assert [c["args"] for c in parsed.tool_calls] == [{"a": 1, "b": 2}]
    names = [c["name"] for c in parsed.invalid_tool_calls]
    assert names == ["nope", "add", "add", None]
    errors = [c["error"] or "" for c in parsed.invalid_tool_calls]
    assert "not offered" in errors[0]
    assert "not valid JSON" in errors[1]
    assert parsed.invalid_tool_calls[1]["args"] == '{"a": 1,'
    assert "must be a JSON object, not list" in errors[2]
    assert "needs a tool name" in errors[3]


@pytest.mark.parametrize(
    ("reply", "content"),
    [
        pytest.param(
            '{"tool_calls": [{"name": "add", "arguments": {"a": 1}]', "", id="bare"
        ),
        pytest.param(
            'Calling.\n```json\n{"tool_calls": [{"name": "add", "arguments": '
            '{"a": 1}}\n```\nDone.',
            "Calling.\n\nDone.",
            id="fenced",
        ),
        pytest.param(
            '{"name": "add", "arguments": {"a": 1, "b": }}', "", id="single-call"
        ),
    ],
)
def test_malformed_tool_json_is_an_invalid_call(reply: str, content: str) -> None:
    parsed = parse_tool_calls(reply, TOOLS)
    assert parsed.tool_calls == []
    [bad] = parsed.invalid_tool_calls
    assert bad["name"] is None
    assert bad["args"].startswith("{")
    assert bad["args"] in reply
    assert "not valid JSON" in (bad["error"] or "")
    assert parsed.content == content


def test_only_one_call_is_kept_when_parallel_calls_are_off() -> None:
    reply = (
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}},'
        ' {"name": "get_weather", "arguments": {"city": "Oslo"}}]}'
    )
    parsed = parse_tool_calls(reply, TOOLS, max_calls=1)
    assert [c["name"] for c in parsed.tool_calls] == ["add"]
    [extra] = parsed.invalid_tool_calls
    assert extra["name"] == "get_weather"
    assert "parallel_tool_calls=False" in (extra["error"] or "")


@pytest.mark.parametrize(
    "reply",
    [
        "  The weather is fine.\n\n",
        'Here is some JSON: {"city": "Paris", "temp": 18}',
        '```json\n{"name": "Bob", "age": 3}\n```',
        "Braces { that } are not JSON, and [1, 2] is a list.",
        '{"result": {"tool_calls": [{"name": "add", "arguments": {}}]}}',
        "",
    ],
)
def test_replies_without_tool_json_are_plain_text_unchanged(reply: str) -> None:
    parsed = parse_tool_calls(reply, TOOLS)
    assert parsed.content == reply
    assert parsed.tool_calls == []
    assert parsed.invalid_tool_calls == []


def test_with_no_tools_offered_every_call_is_invalid() -> None:
    parsed = parse_tool_calls(CALL, ())
    assert parsed.tool_calls == []
    [bad] = parsed.invalid_tool_calls
    assert "offered tools: none" in (bad["error"] or "")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"a": 1}', [{"a": 1}]),
        ('Sure!\n```json\n{"a": [1, {"b": 2}]}\n```\nEnjoy.', [{"a": [1, {"b": 2}]}]),
        ('The answer is {"a": 1} as asked.', [{"a": 1}]),
        ('Not {this} but {"a": 1}', [{"a": 1}]),
        ('Use {"x": 0} then the answer {"a": 1}', [{"x": 0}, {"a": 1}]),
        (
            "{'a': True, 'b': None, 'c': [1, 2,],}",
            [{"a": True, "b": None, "c": [1, 2]}],
        ),
        ("no JSON here", []),
        ('{"a": 1', []),
    ],
)
def test_json_objects(text: str, found: list[dict[str, Any]]) -> None:
    assert json_objects(text) == found


# --- instructions ------------------------------------------------------------


def _tools_text(tool_choice: str = "auto", **kwargs: Any) -> str:
    text = build_instructions(
        DEFAULT_INSTRUCTIONS,
        tools=check_tools([get_weather, add]),
        tool_choice=tool_choice,
        **kwargs,
    )
    assert text is not None
    return text


def test_tool_instructions_list_each_tool_with_its_schema_and_the_format() -> None:
    text = _tools_text()
    assert "- get_weather: Get the weather in a city." in text
    assert (
        '  Arguments (JSON Schema): {"properties": {"city": {"type": "string"}}, '
        '"required": ["city"], "type": "object"}\n'
    ) in text
    assert "- add: Add two integers." in text
    assert '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}' in (
        text
    )
    assert DEFAULT_INSTRUCTIONS["auto"] in text


@pytest.mark.parametrize(
    ("tool_choice", "expected", "absent"),
    [
        ("auto", DEFAULT_INSTRUCTIONS["auto"], DEFAULT_INSTRUCTIONS["any"]),
        ("any", DEFAULT_INSTRUCTIONS["any"], DEFAULT_INSTRUCTIONS["auto"]),
        ("add", "You must call the tool add now.", DEFAULT_INSTRUCTIONS["auto"]),
    ],
)
def test_tool_choice_changes_the_instructions(
    tool_choice: str, expected: str, absent: str
) -> None:
    text = _tools_text(tool_choice)
    assert expected in text
    assert absent not in text


def test_tool_choice_none_forbids_calls_and_lists_no_tools() -> None:
    text = _tools_text("none")
    assert text == DEFAULT_INSTRUCTIONS["none"]


def test_parallel_calls_off_asks_for_one_call() -> None:
    assert DEFAULT_INSTRUCTIONS["one_call"] in _tools_text(parallel_tool_calls=False)
    assert DEFAULT_INSTRUCTIONS["one_call"] not in _tools_text()


def test_response_format_instructions() -> None:
    schema = {"title": "P", "type": "object", "properties": {"x": {"type": "integer"}}}
    text = build_instructions(
        DEFAULT_INSTRUCTIONS,
        response_format={"type": "json_schema", "json_schema": {"schema": schema}},
    )
    assert text is not None
    assert text.startswith("Reply with only a JSON object that matches")
    assert text.endswith(json.dumps(schema))
    mode = build_instructions(
        DEFAULT_INSTRUCTIONS, response_format={"type": "json_object"}
    )
    assert mode == DEFAULT_INSTRUCTIONS["json_mode"]
    assert build_instructions(DEFAULT_INSTRUCTIONS) is None


def test_placeholders_are_filled_once_and_literal_braces_survive() -> None:
    @tool
    def tricky(x: str) -> str:
        """Mentions {choice} and {tools} in its description."""
        return x

    texts = resolve_instructions({"auto": "Use {name} if you like."})
    text = build_instructions(texts, tools=check_tools([tricky]))
    assert text is not None
    assert "Mentions {choice} and {tools} in its description." in text
    assert "Use {name} if you like." in text


def test_overrides_merge_over_the_defaults() -> None:
    texts = resolve_instructions({"any": "CALL A TOOL."})
    assert texts["any"] == "CALL A TOOL."
    assert texts["auto"] == DEFAULT_INSTRUCTIONS["auto"]
    assert resolve_instructions(None) == dict(DEFAULT_INSTRUCTIONS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tool_use": "x"}, "Unknown format_instructions key"),
        ({"tools": "Tools: {tools}"}, "must contain {choice}"),
        ({"tool": "Call it now."}, "must contain {name}"),
        ({"json_schema": "JSON please."}, "must contain {schema}"),
        ({"auto": 3}, "must be a string"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DynasparkInputError, match=message):
        resolve_instructions(overrides)
    with pytest.raises(ValidationError, match="format_instructions"):
        ChatDynaspark(format_instructions=overrides)


# --- tool and tool_choice checks ----------------------------------------------


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")


class Movie(TypedDict):
    """A movie."""

    title: str


def lookup(term: str) -> str:
    """Look a term up."""
    return term


def test_every_kind_of_tool_is_converted() -> None:
    openai_dict = {
        "type": "function",
        "function": {
            "name": "ping",
            "description": "Ping.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    json_schema = {"title": "Point", "type": "object", "properties": {}}
    formatted = check_tools([add, Person, Movie, lookup, openai_dict, json_schema])
    assert [t["function"]["name"] for t in formatted] == [
        "add",
        "Person",
        "Movie",
        "lookup",
        "ping",
        "Point",
    ]
    assert all(t["type"] == "function" for t in formatted)


def test_provider_built_in_tools_are_refused() -> None:
    with pytest.raises(DynasparkInputError, match="built-in tool 'web_search'"):
        check_tools([{"type": "web_search"}])


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        ("any", "any"),
        ("required", "any"),
        ("none", "none"),
        ("add", "add"),
        ({"type": "function", "function": {"name": "add"}}, "add"),
    ],
)
def test_tool_choice_is_normalized(choice: Any, expected: str) -> None:
    assert check_tool_choice(choice, check_tools([add, get_weather])) == expected


def test_true_tool_choice_means_the_only_tool() -> None:
    assert check_tool_choice(True, check_tools([add])) == "add"


@pytest.mark.parametrize(
    ("choice", "tools"),
    [("multiply", [add]), ("any", []), (True, [add, get_weather]), (["add"], [add])],
)
def test_bad_tool_choice_is_refused(choice: Any, tools: list[Any]) -> None:
    with pytest.raises(DynasparkInputError, match="does not name a bound tool"):
        check_tool_choice(choice, check_tools(tools))


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "text"},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "x"}},
        Person,
    ],
)
def test_bad_response_format_is_refused(response_format: Any) -> None:
    with pytest.raises(DynasparkInputError, match="response_format must be"):
        check_response_format(response_format)


# --- bind_tools and with_structured_output (no request is made) ---------------


def test_bind_tools_binds_converted_tools_and_the_normalized_choice() -> None:
    bound = ChatDynaspark().bind_tools(
        [get_weather, Person], tool_choice="required", parallel_tool_calls=False
    )
    assert isinstance(bound, RunnableBinding)
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == [
        "get_weather",
        "Person",
    ]
    assert bound.kwargs["tool_choice"] == "any"
    assert bound.kwargs["parallel_tool_calls"] is False
    assert "tool_choice" not in ChatDynaspark().bind_tools([add]).kwargs


def test_bind_tools_fails_early_on_an_unknown_tool_choice() -> None:
    with pytest.raises(DynasparkInputError, match="multiply"):
        ChatDynaspark().bind_tools([add], tool_choice="multiply")


def test_strict_tightens_the_converted_schema() -> None:
    bound = ChatDynaspark().bind_tools([Person], strict=True)
    function = bound.kwargs["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False


def test_profile_tells_the_truth() -> None:
    profile = ChatDynaspark().profile
    assert profile is not None
    assert profile["tool_calling"] is True
    assert profile["tool_choice"] is True
    assert profile["tool_call_streaming"] is True
    assert profile["structured_output"] is False


def test_with_structured_output_binds_what_each_method_needs() -> None:
    model = ChatDynaspark()
    schema_binding = model.with_structured_output(Person).first
    assert isinstance(schema_binding, RunnableBinding)
    response_format = schema_binding.kwargs["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Person"
    assert response_format["json_schema"]["schema"]["properties"]["name"] == {
        "description": "Full name",
        "type": "string",
    }
    assert schema_binding.kwargs["ls_structured_output_format"] == {
        "kwargs": {"method": "json_schema", "strict": None},
        "schema": Person,
    }
    mode_binding = model.with_structured_output(Person, method="json_mode").first
    assert isinstance(mode_binding, RunnableBinding)
    assert mode_binding.kwargs["response_format"] == {"type": "json_object"}
    tool_binding = model.with_structured_output(Person, method="function_calling")
    bound = tool_binding.first
    assert isinstance(bound, RunnableBinding)
    assert bound.kwargs["tool_choice"] == "Person"
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["Person"]


@pytest.mark.parametrize(
    ("schema", "kwargs", "message"),
    [
        (Person, {"method": "xml"}, "Unrecognized method"),
        (None, {"method": "json_schema"}, "schema must be given"),
        (None, {"method": "function_calling"}, "schema must be given"),
        (Person, {"temperature": 0}, "unsupported arguments"),
    ],
)
def test_with_structured_output_refuses_bad_arguments(
    schema: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ChatDynaspark().with_structured_output(schema, **kwargs)


# --- how tool history reaches the next prompt -----------------------------------


def _history(tool_message: ToolMessage) -> str:
    messages = [
        HumanMessage("What is 1 + 2?"),
        AIMessage(
            "Let me add.",
            tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}],
        ),
        tool_message,
    ]
    return build_prompt(messages, instructions="INSTRUCTIONS").text


def test_tool_history_shows_the_call_its_arguments_and_the_result() -> None:
    text = _history(ToolMessage("3", name="add", tool_call_id="c1"))
    assert text == (
        "System: INSTRUCTIONS\n\n"
        "User: What is 1 + 2?\n\n"
        "Assistant: Let me add.\n"
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}, '
        '"id": "c1"}]}\n\n'
        "Tool result (add, call id c1): 3\n\n"
        "Assistant:"
    )


def test_tool_history_with_list_content_and_error_status() -> None:
    listed = _history(
        ToolMessage(
            [{"type": "text", "text": "three"}, {"type": "text", "text": "(3)"}],
            name="add",
            tool_call_id="c1",
        )
    )
    assert "Tool result (add, call id c1): three\n(3)" in listed
    failed = _history(
        ToolMessage("b is missing", name="add", tool_call_id="c1", status="error")
    )
    assert "Tool error (add, call id c1): b is missing" in failed


def test_anthropic_style_ai_content_renders_text_and_calls_once() -> None:
    message = AIMessage(
        [
            {"type": "text", "text": "some text"},
            {"type": "tool_use", "id": "abc", "name": "add", "input": {"a": 1}},
        ],
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "abc"}],
    )
    text = build_prompt([HumanMessage("hi"), message]).text
    assert (
        'Assistant: some text\n{"tool_calls": [{"name": "add", "arguments": '
        '{"a": 1}, "id": "abc"}]}'
    ) in text
    assert text.count('"name": "add"') == 1


def test_the_docs_show_the_default_instruction_texts() -> None:
    page = Path(__file__).parents[2] / "docs" / "tools-and-structured-output.md"
    docs = page.read_text(encoding="utf-8")
    assert DEFAULT_INSTRUCTIONS["tools"] in docs
    for key, text in DEFAULT_INSTRUCTIONS.items():
        first_line = text.split("\n")[0]
        assert f"| `{key}` | {first_line}" in docs or key == "tools"
