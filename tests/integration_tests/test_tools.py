"""Emulated tool calling and structured output, round trip through the local server.

Each test scripts the server's replies and checks both the `AIMessage` that
comes back and the prompt the server received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_dynaspark import ChatDynaspark, DynasparkInputError
from langchain_dynaspark.emulation.instructions import DEFAULT_INSTRUCTIONS
from langchain_dynaspark.testing.server import DynasparkTestServer

CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
TOOL_FORMAT = '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}'

ran: list[dict[str, Any]] = []


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    ran.append({"city": city})
    return f"Sunny, 21°C in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture(autouse=True)
def _forget_tool_runs() -> None:
    ran.clear()


@pytest.fixture
def model(server: DynasparkTestServer) -> ChatDynaspark:
    """Format repair off: these tests read one reply each."""
    return ChatDynaspark(base_url=server.url, max_retries=0, format_retries=0)


def _prompt(server: DynasparkTestServer, index: int = -1) -> str:
    return server.requests[index].fields["user_input"]


def _calls(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["args"]) for call in message.tool_calls]


# --- tool calls -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "content"),
    [
        pytest.param(CALL, "", id="bare"),
        pytest.param(f"```json\n{CALL}\n```", "", id="fenced"),
        pytest.param(
            f"I'll check the weather.\n```json\n{CALL}\n```",
            "I'll check the weather.",
            id="fenced-after-prose",
        ),
        pytest.param(f"Sure: {CALL} (one moment)", "Sure:  (one moment)", id="prose"),
        pytest.param(
            '{"name": "get_weather", "arguments": {"city": "Paris"}}', "", id="single"
        ),
        pytest.param(
            '{"tool_calls": [{"name": "get_weather", '
            '"arguments": "{\\"city\\": \\"Paris\\"}"}]}',
            "",
            id="string-arguments",
        ),
    ],
)
def test_each_reply_style_becomes_a_tool_call(
    model: ChatDynaspark, server: DynasparkTestServer, reply: str, content: str
) -> None:
    server.script(reply)
    result = model.bind_tools([get_weather, add]).invoke("Weather in Paris?")
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert result.tool_calls[0]["id"].startswith("call_")
    assert result.content == content
    assert result.invalid_tool_calls == []
    assert result.response_metadata["finish_reason"] == "tool_calls"
    prompt = _prompt(server)
    assert prompt.startswith("System: You can call these tools:\n- get_weather: ")
    assert "- add: Add two integers." in prompt
    assert TOOL_FORMAT in prompt
    assert prompt.endswith("User: Weather in Paris?\n\nAssistant:")


def test_a_plain_reply_is_plain_text(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script("No tool needed: it is 4.")
    result = model.bind_tools([add]).invoke("What is 2 + 2?")
    assert result.content == "No tool needed: it is 4."
    assert result.tool_calls == []
    assert result.invalid_tool_calls == []
    assert result.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("tool_choice", "sentence"),
    [
        (None, DEFAULT_INSTRUCTIONS["auto"]),
        ("auto", DEFAULT_INSTRUCTIONS["auto"]),
        ("any", DEFAULT_INSTRUCTIONS["any"]),
        ("required", DEFAULT_INSTRUCTIONS["any"]),
        ("add", "You must call the tool add now."),
    ],
)
def test_tool_choice_changes_the_instructions_sent(
    model: ChatDynaspark,
    server: DynasparkTestServer,
    tool_choice: str | None,
    sentence: str,
) -> None:
    server.script('{"name": "add", "arguments": {"a": 1, "b": 2}}')
    bound = model.bind_tools([get_weather, add], tool_choice=tool_choice)
    assert _calls(bound.invoke("1 + 2?")) == [("add", {"a": 1, "b": 2})]
    prompt = _prompt(server)
    assert sentence in prompt
    others = {DEFAULT_INSTRUCTIONS["auto"], DEFAULT_INSTRUCTIONS["any"]} - {sentence}
    assert not any(other in prompt for other in others)
    assert "You must call the tool" not in prompt or tool_choice == "add"


def test_tool_choice_none_forbids_calls_and_refuses_any_it_gets(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script('{"name": "add", "arguments": {"a": 1, "b": 2}}')
    result = model.bind_tools([add], tool_choice="none").invoke("1 + 2?")
    assert _prompt(server) == (
        f"System: {DEFAULT_INSTRUCTIONS['none']}\n\nUser: 1 + 2?\n\nAssistant:"
    )
    assert result.tool_calls == []
    [refused] = result.invalid_tool_calls
    assert refused["name"] == "add"
    assert "not offered" in (refused["error"] or "")


def test_several_calls_in_one_reply(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(
        '```json\n{"tool_calls": ['
        '{"name": "get_weather", "arguments": {"city": "Paris"}},'
        '{"name": "get_weather", "arguments": {"city": "東京"}},'
        '{"name": "add", "arguments": {"a": 2, "b": 3}}]}\n```'
    )
    result = model.bind_tools([get_weather, add]).invoke("Paris, Tokyo, 2 + 3?")
    assert _calls(result) == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "東京"}),
        ("add", {"a": 2, "b": 3}),
    ]
    assert len({call["id"] for call in result.tool_calls}) == 3


def test_parallel_calls_off_keeps_one_call(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 1}},'
        ' {"name": "add", "arguments": {"a": 2, "b": 2}}]}'
    )
    bound = model.bind_tools([add], parallel_tool_calls=False)
    result = bound.invoke("1 + 1 and 2 + 2?")
    assert _calls(result) == [("add", {"a": 1, "b": 1})]
    [extra] = result.invalid_tool_calls
    assert json.loads(extra["args"]) == {"a": 2, "b": 2}
    assert DEFAULT_INSTRUCTIONS["one_call"] in _prompt(server)


def test_malformed_tool_json_lands_in_invalid_tool_calls(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(
        'Calling it.\n```json\n{"tool_calls": [{"name": "add", "arguments": '
        '{"a": 1, "b": 2}]}\n```'
    )
    result = model.bind_tools([add]).invoke("1 + 2?")
    assert result.tool_calls == []
    assert result.content == "Calling it."
    [bad] = result.invalid_tool_calls
    assert bad["name"] is None
    assert "not valid JSON" in (bad["error"] or "")
    assert result.response_metadata["finish_reason"] == "stop"


def test_bad_arguments_and_unknown_tools_land_in_invalid_tool_calls(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(
        '{"tool_calls": [{"name": "add", "arguments": "{\\"a\\": 1, b: 2}"},'
        ' {"name": "rm_rf", "arguments": {"path": "/"}},'
        ' {"name": "add", "arguments": {"a": 1, "b": 2}}]}'
    )
    result = model.bind_tools([add]).invoke("1 + 2?")
    assert _calls(result) == [("add", {"a": 1, "b": 2})]
    bad_args, unknown = result.invalid_tool_calls
    assert bad_args["name"] == "add"
    assert bad_args["args"] == '{"a": 1, b: 2}'
    assert "not valid JSON" in (bad_args["error"] or "")
    assert unknown["name"] == "rm_rf"
    assert "'rm_rf' was not offered; offered tools: add" in (unknown["error"] or "")


def test_tool_history_is_rendered_into_the_next_prompt(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script("1 + 2 = 3, and b was missing the first time.")
    history: list[BaseMessage] = [
        HumanMessage("What is 1 + 2?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "first"}]),
        ToolMessage(
            "Error: missing b", name="add", tool_call_id="first", status="error"
        ),
        AIMessage(
            [{"type": "text", "text": "Retrying."}],
            tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "second"}],
        ),
        ToolMessage([{"type": "text", "text": "3"}], name="add", tool_call_id="second"),
    ]
    result = model.bind_tools([add]).invoke(history)
    assert result.content == "1 + 2 = 3, and b was missing the first time."
    prompt = _prompt(server)
    transcript = prompt[prompt.index("User: What is 1 + 2?") :]
    assert transcript == (
        "User: What is 1 + 2?\n\n"
        'Assistant: {"tool_calls": [{"name": "add", "arguments": {"a": 1}, '
        '"id": "first"}]}\n\n'
        "Tool error (add, call id first): Error: missing b\n\n"
        'Assistant: Retrying.\n{"tool_calls": [{"name": "add", "arguments": '
        '{"a": 1, "b": 2}, "id": "second"}]}\n\n'
        "Tool result (add, call id second): 3\n\n"
        "Assistant:"
    )


def test_tools_can_be_passed_per_call(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(CALL)
    result = model.invoke("Weather?", tools=[get_weather], tool_choice="any")
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert DEFAULT_INSTRUCTIONS["any"] in _prompt(server)


def test_overridden_instructions_are_what_is_sent(server: DynasparkTestServer) -> None:
    model = ChatDynaspark(
        base_url=server.url,
        format_instructions={
            "tools": "TOOLS:\n{tools}\nCHOICE: {choice}\nAnswer with tool JSON.",
            "any": "Pick one.",
        },
    )
    server.script(CALL)
    result = model.bind_tools([get_weather], tool_choice="any").invoke("Weather?")
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert _prompt(server).startswith(
        "System: TOOLS:\n- get_weather: Get the weather in a city.\n"
    )
    assert "\nCHOICE: Pick one.\nAnswer with tool JSON.\n\nUser: Weather?" in (
        _prompt(server)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tools": [add], "tool_choice": "multiply"}, "multiply"),
        ({"tools": [{"type": "web_search"}]}, "built-in tool"),
        ({"response_format": {"type": "text"}}, "response_format must be"),
        ({"tools": [add], "parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ],
)
def test_bad_tool_arguments_fail_before_any_request(
    model: ChatDynaspark,
    server: DynasparkTestServer,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(DynasparkInputError, match=message):
        model.invoke("hi", **kwargs)
    assert server.requests == []


# --- streaming ----------------------------------------------------------------------

STREAMED = (
    "Looking these up.\n"
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Zürich"}},'
    ' {"name": "add", "arguments": {"a": 1, "b": 2}},'
    ' {"name": "nope", "arguments": {}},'
    ' {"name": "add", "arguments": "a=1, b=2"}]}'
)


def _summed(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


def _check_stream_matches_invoke(
    invoked: AIMessage, chunks: list[AIMessageChunk]
) -> None:
    assert invoked.content == "Looking these up."
    assert _calls(invoked) == [
        ("get_weather", {"city": "Zürich"}),
        ("add", {"a": 1, "b": 2}),
    ]
    assert [c["name"] for c in invoked.invalid_tool_calls] == ["nope", "add"]
    [chunk] = chunks
    assert chunk.content == invoked.content
    assert [tc["name"] for tc in chunk.tool_call_chunks] == [
        "get_weather",
        "add",
        "add",
    ]
    assert json.loads(chunk.tool_call_chunks[0]["args"] or "") == {"city": "Zürich"}
    assert _calls(chunk) == _calls(invoked)  # type: ignore[arg-type]
    assert [(c["name"], c["args"], c["error"]) for c in chunk.invalid_tool_calls] == [
        (c["name"], c["args"], c["error"]) for c in invoked.invalid_tool_calls
    ]
    total = _summed([chunk, AIMessageChunk(content="")])
    assert total.tool_calls == chunk.tool_calls
    assert [(c["name"], c["args"]) for c in total.invalid_tool_calls] == [
        ("add", "a=1, b=2")
    ]
    assert total.response_metadata["finish_reason"] == "tool_calls"


def test_stream_gives_the_same_tool_calls_as_invoke(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(STREAMED, STREAMED)
    bound = model.bind_tools([get_weather, add])
    invoked = bound.invoke("Weather and sum?")
    chunks = list(bound.stream("Weather and sum?"))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    _check_stream_matches_invoke(invoked, chunks)  # type: ignore[arg-type]
    assert _prompt(server, 0) == _prompt(server, 1)


async def test_astream_gives_the_same_tool_calls_as_ainvoke(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(STREAMED, STREAMED)
    bound = model.bind_tools([get_weather, add])
    invoked = await bound.ainvoke("Weather and sum?")
    chunks = [chunk async for chunk in bound.astream("Weather and sum?")]
    _check_stream_matches_invoke(invoked, chunks)  # type: ignore[arg-type]


def test_streaming_invoke_gives_the_same_tool_calls(
    server: DynasparkTestServer,
) -> None:
    server.script(STREAMED)
    model = ChatDynaspark(base_url=server.url, streaming=True, format_retries=0)
    result = model.bind_tools([get_weather, add]).invoke("Weather and sum?")
    assert _calls(result) == [
        ("get_weather", {"city": "Zürich"}),
        ("add", {"a": 1, "b": 2}),
    ]


# --- structured output ------------------------------------------------------------


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="The question")
    punchline: str = Field(description="The answer")
    rating: int | None = None


class JokeDict(TypedDict):
    """A joke to tell the user."""

    setup: str
    punchline: str


JOKE_SCHEMA = {
    "title": "joke",
    "description": "A joke to tell the user.",
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup", "punchline"],
}
SCHEMAS = {"pydantic": Joke, "typeddict": JokeDict, "json_schema": JOKE_SCHEMA}
JOKE = {"setup": "Why did the cat sit on the computer?", "punchline": "To watch it."}


def _structured_reply(method: str) -> str:
    if method == "function_calling":
        return f"Here you go: {json.dumps({'name': 'NAME', 'arguments': JOKE})}"
    return f"Sure! Here it is:\n```json\n{json.dumps(JOKE)}\n```\nEnjoy."


@pytest.mark.parametrize("include_raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize("schema_kind", list(SCHEMAS))
@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_structured_output(
    model: ChatDynaspark,
    server: DynasparkTestServer,
    method: str,
    schema_kind: str,
    include_raw: bool,
) -> None:
    schema = SCHEMAS[schema_kind]
    name = {"pydantic": "Joke", "typeddict": "JokeDict", "json_schema": "joke"}
    server.script(_structured_reply(method).replace("NAME", name[schema_kind]))
    structured = model.with_structured_output(
        schema,
        method=method,  # type: ignore[arg-type]
        include_raw=include_raw,
    )
    result = structured.invoke("Tell me a joke about cats.")
    if include_raw:
        assert isinstance(result, dict)
        assert set(result) == {"raw", "parsed", "parsing_error"}
        assert isinstance(result["raw"], AIMessage)
        assert result["parsing_error"] is None
        parsed = result["parsed"]
    else:
        parsed = result
    if schema_kind == "pydantic":
        assert parsed == Joke(**JOKE)
    else:
        assert parsed == JOKE
    prompt = _prompt(server)
    if method == "json_schema":
        assert prompt.startswith(
            "System: Reply with only a JSON object that matches this JSON Schema"
        )
        assert '"punchline": {' in prompt
    elif method == "json_mode":
        assert prompt.startswith(f"System: {DEFAULT_INSTRUCTIONS['json_mode']}")
    else:
        assert f"You must call the tool {name[schema_kind]} now." in prompt
    assert prompt.endswith("User: Tell me a joke about cats.\n\nAssistant:")


@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_unparseable_structured_output_is_reported_with_include_raw(
    model: ChatDynaspark, server: DynasparkTestServer, method: str
) -> None:
    server.script('I would rather not. {"setup": 1}')
    structured = model.with_structured_output(
        Joke,
        method=method,  # type: ignore[arg-type]
        include_raw=True,
    )
    result = structured.invoke("Tell me a joke.")
    assert isinstance(result, dict)
    assert result["raw"].content == 'I would rather not. {"setup": 1}'
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert result["parsing_error"].llm_output == 'I would rather not. {"setup": 1}'


def test_unparseable_structured_output_raises_without_include_raw(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script("no JSON at all")
    with pytest.raises(ValueError, match="no JSON at all"):
        model.with_structured_output(Joke).invoke("Tell me a joke.")


def test_json_mode_without_a_schema_returns_a_dict(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script('{"a": [1, 2], "b": null}')
    result = model.with_structured_output(method="json_mode").invoke("JSON please.")
    assert result == {"a": [1, 2], "b": None}


async def test_structured_output_streams_and_runs_async(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    reply = _structured_reply("json_schema")
    server.script(reply, reply)
    structured = model.with_structured_output(Joke)
    assert await structured.ainvoke("Joke?") == Joke(**JOKE)
    chunks = [chunk async for chunk in structured.astream("Joke?")]
    assert chunks[-1] == Joke(**JOKE)


# --- agents -------------------------------------------------------------------------


def _check_agent_run(server: DynasparkTestServer, messages: list[BaseMessage]) -> None:
    assert ran == [{"city": "Paris"}]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    call = messages[1].tool_calls[0]  # type: ignore[attr-defined]
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    assert messages[2].content == "Sunny, 21°C in Paris"
    assert messages[-1].content == "It is sunny and 21°C in Paris."
    assert len(server.requests) == 2
    second = _prompt(server, 1)
    assert (
        f"Tool result (get_weather, call id {call['id']}): Sunny, 21°C in Paris"
        in second
    )
    assert second.endswith(
        "Tool result (get_weather, call id " + call["id"] + "): "
        "Sunny, 21°C in Paris\n\nAssistant:"
    )


def test_create_agent_runs_a_tool_loop(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(CALL, "It is sunny and 21°C in Paris.")
    agent = create_agent(model, tools=[get_weather, add])
    state = agent.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    _check_agent_run(server, state["messages"])


async def test_create_agent_runs_a_tool_loop_async(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(f"```json\n{CALL}\n```", "It is sunny and 21°C in Paris.")
    agent = create_agent(model, tools=[get_weather, add])
    state = await agent.ainvoke({"messages": [HumanMessage("Weather in Paris?")]})
    _check_agent_run(server, state["messages"])


def test_create_agent_streaming_messages_runs_the_same_loop(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(CALL, "It is sunny and 21°C in Paris.")
    agent = create_agent(model, tools=[get_weather])
    streamed = list(
        agent.stream(
            {"messages": [HumanMessage("Weather in Paris?")]}, stream_mode="messages"
        )
    )
    assert ran == [{"city": "Paris"}]
    assert streamed[-1][0].content == "It is sunny and 21°C in Paris."


def test_create_agent_with_a_response_format(
    model: ChatDynaspark, server: DynasparkTestServer
) -> None:
    server.script(
        CALL,
        json.dumps({"tool_calls": [{"name": "Joke", "arguments": JOKE}]}),
    )
    agent = create_agent(model, tools=[get_weather], response_format=Joke)
    state = agent.invoke({"messages": [HumanMessage("Weather joke for Paris?")]})
    assert ran == [{"city": "Paris"}]
    assert state["structured_response"] == Joke(**JOKE)
    assert DEFAULT_INSTRUCTIONS["any"] in _prompt(server, 0)
