"""Reply shapes, format repair and streaming consistency, through the local server.

Each test scripts the server's replies and checks the message that comes back
and the requests the server received.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.emulation.instructions import DEFAULT_INSTRUCTIONS
from langchain_dynaspark.testing.server import DynasparkTestServer, Rule

ran: list[tuple[str, dict[str, Any]]] = []


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    ran.append(("get_weather", {"city": city}))
    return f"Sunny, 21°C in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    ran.append(("add", {"a": a, "b": b}))
    return a + b


class Movie(BaseModel):
    """A movie."""

    title: str
    year: int


@pytest.fixture(autouse=True)
def _forget_tool_runs() -> None:
    ran.clear()


def _prompt(server: DynasparkTestServer, index: int = -1) -> str:
    return server.requests[index].fields["user_input"]


def _calls(message: BaseMessage) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(message, AIMessage)
    return [(call["name"], call["args"]) for call in message.tool_calls]


def _invalid(message: BaseMessage) -> list[tuple[str | None, str | None, str | None]]:
    assert isinstance(message, AIMessage)
    return [(c["name"], c["args"], c["error"]) for c in message.invalid_tool_calls]


# --- the same message on every path ----------------------------------------------

MIXED = (
    "Let me see.\n"
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Zürich"}},'
    ' {"name": "delete_all", "arguments": {"force": true}},'
    ' {"name": "add", "arguments": {"a": "one", "b": 2}},'
    ' {"name": "add", "arguments": "a=1, b=2"}]}'
)


async def _four_paths(server: DynasparkTestServer) -> dict[str, BaseMessage]:
    server.script(*[MIXED] * 5)
    plain = ChatDynaspark(base_url=server.url, format_retries=0)
    bound = plain.bind_tools([get_weather, add])
    results: dict[str, BaseMessage] = {"invoke": await bound.ainvoke("Hi")}
    [chunk] = [c async for c in bound.astream("Hi")]
    results["stream"] = chunk
    streaming = ChatDynaspark(base_url=server.url, streaming=True, format_retries=0)
    results["streaming=True"] = await streaming.bind_tools([get_weather, add]).ainvoke(
        "Hi"
    )
    listened = RunnableLambda(bound.invoke)
    events = [e async for e in listened.astream_events("Hi", version="v2")]
    [end] = [e for e in events if e["event"] == "on_chat_model_end"]
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert len(streamed) == 1
    results["listener"] = end["data"]["output"]
    assert _calls(streamed[0]["data"]["chunk"]) == _calls(results["listener"])
    return results


async def test_every_path_gives_the_same_calls_and_invalid_calls(
    server: DynasparkTestServer,
) -> None:
    results = await _four_paths(server)
    invoked = results["invoke"]
    assert _calls(invoked) == [("get_weather", {"city": "Zürich"})]
    names = [name for name, _, _ in _invalid(invoked)]
    assert names == ["delete_all", "add", "add"]
    errors = [error or "" for _, _, error in _invalid(invoked)]
    assert "'delete_all' was not offered" in errors[0]
    assert "a: 'one' is not of type 'integer'" in errors[1]
    assert "not valid JSON" in errors[2]
    for path, message in results.items():
        assert message.content == "Let me see.", path
        assert _calls(message) == _calls(invoked), path
        assert _invalid(message) == _invalid(invoked), path
        assert message.response_metadata["finish_reason"] == "tool_calls", path
    assert isinstance(results["stream"], AIMessageChunk)
    assert len(server.requests) == 4


def test_an_agent_streaming_messages_keeps_invalid_calls(
    server: DynasparkTestServer,
) -> None:
    server.script(
        '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}},'
        ' {"name": "teleport", "arguments": {"to": "Paris"}}]}',
        "Sunny in Paris.",
    )
    model = ChatDynaspark(base_url=server.url, format_retries=0)
    agent = create_agent(model, tools=[get_weather])
    streamed = [
        message
        for message, _ in agent.stream(
            {"messages": [HumanMessage("Weather in Paris?")]}, stream_mode="messages"
        )
        if isinstance(message, AIMessage)
    ]
    assert [_calls(m) for m in streamed] == [[("get_weather", {"city": "Paris"})], []]
    assert [name for name, _, _ in _invalid(streamed[0])] == ["teleport"]
    assert streamed[-1].content == "Sunny in Paris."


# --- agents on every shape --------------------------------------------------------

SHAPE_REPLIES = {
    "python-tool-code": "```tool_code\nget_weather(city='Paris')\n```",
    "gemini": '{"functionCall": {"name": "add", "args": {"a": 2, "b": 3}}}',
    "action": (
        '```json\n{"action": "get_weather", "action_input": {"city": "Paris"}}\n```'
    ),
    "tag": (
        "<tool_call>\n{'name': 'add', 'arguments': {'a': 2, 'b': 3,},}\n</tool_call>"
    ),
    "python-print": 'print(default_api.get_weather(city="Paris"))',
    "tool-input": 'Sure.\n```\n{"tool": "add", "tool_input": {"a": 2, "b": 3}}\n```',
}


@pytest.mark.parametrize(
    ("weather", "adding"),
    [
        ("python-tool-code", "gemini"),
        ("action", "tag"),
        ("python-print", "tool-input"),
    ],
)
def test_create_agent_runs_two_tools_whatever_the_shape(
    server: DynasparkTestServer, weather: str, adding: str
) -> None:
    server.script(SHAPE_REPLIES[weather], SHAPE_REPLIES[adding], "Sunny; 2 + 3 = 5.")
    model = ChatDynaspark(base_url=server.url, max_retries=0)
    agent = create_agent(model, tools=[get_weather, add])
    state = agent.invoke({"messages": [HumanMessage("Weather in Paris, and 2 + 3?")]})
    assert ran == [("get_weather", {"city": "Paris"}), ("add", {"a": 2, "b": 3})]
    assert state["messages"][-1].content == "Sunny; 2 + 3 = 5."
    assert len(server.requests) == 3
    assert "Tool result (add, call id" in _prompt(server)


def test_create_agent_repairs_a_prose_reply_to_a_forced_call(
    server: DynasparkTestServer,
) -> None:
    server.script(
        "Titanic, from 1997.",
        '{"name": "Movie", "arguments": {"title": "Titanic", "year": 1997}}',
    )
    model = ChatDynaspark(base_url=server.url, max_retries=0)
    agent = create_agent(model, tools=[], response_format=Movie)
    state = agent.invoke({"messages": [HumanMessage("Best Picture of 1998?")]})
    assert state["structured_response"] == Movie(title="Titanic", year=1997)
    assert len(server.requests) == 2
    second = _prompt(server, 1)
    assert "Assistant: Titanic, from 1997.\n\nSystem: Your last reply could not" in (
        second
    )
    assert "You had to call a tool, but the reply calls no tool." in second


# --- repair ------------------------------------------------------------------------


class _Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: list[tuple[UUID, UUID | None]] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.runs.append((run_id, parent_run_id))


class _CountingLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True


@pytest.mark.parametrize("method", ["invoke", "ainvoke", "stream"])
async def test_a_forced_call_answered_in_prose_is_asked_again(
    server: DynasparkTestServer, method: str
) -> None:
    server.script("It is probably sunny.", "get_weather(city='Paris')")
    limiter = _CountingLimiter()
    starts = _Starts()
    model = ChatDynaspark(base_url=server.url, rate_limiter=limiter)
    bound = model.bind_tools([get_weather], tool_choice="any")
    config = {"callbacks": [starts]}
    if method == "invoke":
        result: BaseMessage = bound.invoke("Weather in Paris?", config)
    elif method == "ainvoke":
        result = await bound.ainvoke("Weather in Paris?", config)
    else:
        [result] = list(bound.stream("Weather in Paris?", config))
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert result.response_metadata["format_retries"] == 1
    assert len(server.requests) == 2
    assert limiter.acquired == 2
    if method == "stream":
        # langchain-core's `stream` gives the model no handle on its run, so the
        # repair request cannot be nested in it.
        assert len(starts.runs) == 1
    else:
        (outer, _), (inner, parent) = starts.runs
        assert parent == outer != inner
    first, second = _prompt(server, 0), _prompt(server, 1)
    assert second.startswith(first.removesuffix("Assistant:"))
    repair = second[len(first) - len("Assistant:") :]
    assert repair == (
        "Assistant: It is probably sunny.\n\n"
        "System: Your last reply could not be used: You had to call a tool, but "
        "the reply calls no tool.\nReply again, following these instructions "
        "exactly:\n" + first.split("\n\nUser:")[0].removeprefix("System: ") + "\n\n"
        "Assistant:"
    )


def test_invalid_arguments_are_repaired_even_under_auto(
    server: DynasparkTestServer,
) -> None:
    server.script('add(a="two", b=3)', "add(a=2, b=3)")
    model = ChatDynaspark(base_url=server.url)
    result = model.bind_tools([add]).invoke("2 + 3?")
    assert _calls(result) == [("add", {"a": 2, "b": 3})]
    assert result.invalid_tool_calls == []
    assert "a: 'two' is not of type 'integer'" in _prompt(server, 1)


def test_a_reply_with_a_lone_surrogate_can_be_repaired(
    server: DynasparkTestServer,
) -> None:
    # The reply is sent back in the repair request: it must not be refused
    # there as if the caller's input held the lone surrogate.
    server.script("It is sunny \ud800.", "get_weather(city='Paris')")
    model = ChatDynaspark(base_url=server.url)
    bound = model.bind_tools([get_weather], tool_choice="any")
    result = bound.invoke("Weather in Paris?")
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert "Assistant: It is sunny \ufffd." in _prompt(server, 1)


def test_a_plain_reply_loses_lone_surrogates(server: DynasparkTestServer) -> None:
    server.script("plain \udfff text")
    result = ChatDynaspark(base_url=server.url).invoke("Hi")
    assert result.content == "plain \ufffd text"


def test_prose_under_auto_is_never_repaired(server: DynasparkTestServer) -> None:
    server.script("No tool needed: 4.")
    result = ChatDynaspark(base_url=server.url).bind_tools([add]).invoke("2 + 2?")
    assert result.content == "No tool needed: 4."
    assert "format_retries" not in result.response_metadata
    assert len(server.requests) == 1


def test_repair_stops_after_format_retries(server: DynasparkTestServer) -> None:
    server.script("Prose.", "Still prose.", "More prose.", CALL_PARIS)
    model = ChatDynaspark(base_url=server.url, format_retries=2)
    result = model.bind_tools([get_weather], tool_choice="get_weather").invoke("Hi")
    assert result.content == "More prose."
    assert result.tool_calls == []
    assert result.response_metadata["format_retries"] == 2
    assert len(server.requests) == 3
    assert _prompt(server).count("Your last reply could not be used") == 2


def test_format_retries_per_call_and_refused_when_bad(
    server: DynasparkTestServer,
) -> None:
    server.script("Prose.", CALL_PARIS)
    bound = ChatDynaspark(base_url=server.url).bind_tools(
        [get_weather], tool_choice="any", format_retries=0
    )
    assert bound.invoke("Hi").content == "Prose."
    assert len(server.requests) == 1
    with pytest.raises(ValueError, match="format_retries"):
        ChatDynaspark(base_url=server.url).invoke("Hi", format_retries=-1)


CALL_PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


# --- structured output ---------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    ["I think it was Titanic, in 1997.", '{"title": "Titanic", "year": "late 90s"}'],
    ids=["unparseable", "fails-validation"],
)
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_is_repaired_once(
    server: DynasparkTestServer, first: str, method: str
) -> None:
    answer = {"title": "Titanic", "year": 1997}
    server.script(first, f"```json\n{json.dumps(answer)}\n```")
    model = ChatDynaspark(base_url=server.url)
    structured = model.with_structured_output(Movie, method=method, include_raw=True)  # type: ignore[arg-type]
    result = structured.invoke("Best Picture of 1998?")
    assert isinstance(result, dict)
    assert result["parsed"] == Movie(**answer)
    assert result["parsing_error"] is None
    assert result["raw"].response_metadata["format_retries"] == 1
    assert len(server.requests) == 2
    assert f"Assistant: {first}\n\nSystem: Your last reply could not be used" in (
        _prompt(server)
    )


@pytest.mark.parametrize(
    "first",
    ["I think it was Titanic, in 1997.", '{"title": "Titanic", "year": "late 90s"}'],
    ids=["unparseable", "fails-validation"],
)
def test_structured_output_without_repair_raises_as_before(
    server: DynasparkTestServer, first: str
) -> None:
    server.script(first, '{"title": "Titanic", "year": 1997}')
    model = ChatDynaspark(base_url=server.url, format_retries=0)
    with pytest.raises(OutputParserException) as caught:
        model.with_structured_output(Movie).invoke("Best Picture of 1998?")
    assert caught.value.llm_output == first
    assert len(server.requests) == 1


def test_function_calling_accepts_the_bare_arguments_object(
    server: DynasparkTestServer,
) -> None:
    server.script('{"title": "Titanic", "year": 1997}')
    model = ChatDynaspark(base_url=server.url)
    structured = model.with_structured_output(Movie, method="function_calling")
    assert structured.invoke("Best Picture of 1998?") == Movie(
        title="Titanic", year=1997
    )
    assert len(server.requests) == 1


def test_the_answer_wins_over_an_echoed_schema(server: DynasparkTestServer) -> None:
    server.script(
        'The schema: {"title": "Movie", "type": "object", "properties": {}}. '
        'Answer: {"title": "Titanic", "year": 1997}'
    )
    model = ChatDynaspark(base_url=server.url)
    assert model.with_structured_output(Movie).invoke("Best Picture?") == Movie(
        title="Titanic", year=1997
    )


def test_structured_output_names_what_is_accepted_in_the_instructions() -> None:
    assert "{error}" in DEFAULT_INSTRUCTIONS["repair"]
    assert "{form}" in DEFAULT_INSTRUCTIONS["repair"]


# --- repair answered by the server's stand-in ----------------------------------------
# Only the first, bad reply is scripted: the repair request is answered by the
# stand-in, as it is for users of the offline set-up.


@pytest.mark.parametrize("choice", ["get_weather", "any"])
def test_the_stand_in_answers_a_repair_with_the_forced_call(
    server: DynasparkTestServer, choice: str
) -> None:
    server.script("It is probably sunny.")
    bound = ChatDynaspark(base_url=server.url).bind_tools(
        [get_weather, add], tool_choice=choice
    )
    result = bound.invoke("What is the weather in Paris?")
    assert _calls(result) == [("get_weather", {"city": "Paris"})]
    assert _invalid(result) == []
    assert result.response_metadata["format_retries"] == 1
    assert len(server.requests) == 2
    assert "Your last reply could not be used" in _prompt(server)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_the_stand_in_answers_a_structured_repair_with_an_object(
    server: DynasparkTestServer, method: str
) -> None:
    server.script("I think it was Titanic, in 1997.")
    model = ChatDynaspark(base_url=server.url)
    structured = model.with_structured_output(Movie, method=method, include_raw=True)  # type: ignore[arg-type]
    result = structured.invoke("Which film won Best Picture in 1998?")
    assert isinstance(result, dict)
    assert result["parsing_error"] is None
    assert result["parsed"] == Movie(title="Best Picture", year=1998)
    assert result["raw"].response_metadata["format_retries"] == 1
    assert len(server.requests) == 2


def test_the_stand_in_answers_a_json_mode_repair_with_an_object(
    server: DynasparkTestServer,
) -> None:
    server.script("Why did the chicken cross the road?")
    model = ChatDynaspark(base_url=server.url)
    structured = model.with_structured_output(method="json_mode")
    result = structured.invoke("Tell me a joke. Use the keys 'setup' and 'punchline'.")
    assert result == {"setup": "Tell me a joke.", "punchline": "Tell me a joke."}
    assert len(server.requests) == 2


def test_a_rule_still_answers_a_repair_before_the_stand_in() -> None:
    rule = Rule(pattern="Your last reply could not be used", reply="Still prose.")
    with DynasparkTestServer(rules=[rule]) as server:
        server.script("It is probably sunny.")
        model = ChatDynaspark(base_url=server.url)
        bound = model.bind_tools([get_weather], tool_choice="any")
        result = bound.invoke("What is the weather in Paris?")
    assert result.content == "Still prose."
    assert result.tool_calls == []
    assert len(server.requests) == 2


def test_an_agent_with_a_response_format_ends_on_the_stand_in(
    server: DynasparkTestServer,
) -> None:
    # The structured-output tool forces a call: the prose answer after the
    # weather is repaired, and the stand-in then calls the tool not yet called.
    agent = create_agent(
        ChatDynaspark(base_url=server.url), tools=[get_weather], response_format=Movie
    )
    state = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    assert ran == [("get_weather", {"city": "Paris"})]
    assert state["structured_response"] == Movie(title="Paris", year=1)
    assert len(server.requests) == 3
