"""The local server's literal-minded stand-in, on prompts the package renders.

Every prompt here is made by `build_prompt` with the instructions `ChatDynaspark`
adds, so a change to how prompts are written that the stand-in no longer reads
fails these tests.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from langchain_dynaspark.emulation.format_repair import (
    Attempt,
    format_problem,
    repair,
    repair_prompt,
)
from langchain_dynaspark.emulation.instructions import (
    DEFAULT_INSTRUCTIONS,
    build_instructions,
    resolve_instructions,
)
from langchain_dynaspark.emulation.tool_calls import parse_tool_calls
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.testing.stand_in import fill_schema, reply


@tool
def lookup_stock(symbol: str) -> str:
    """Look up a share price."""
    return symbol


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the current weather in a city."""
    return city


class Movie(BaseModel):
    """A movie."""

    title: str = Field(description="The movie's title")
    year: int = Field(ge=1888, le=2100)


class Review(BaseModel):
    """A review of a movie, with nested and constrained fields."""

    movie: Movie
    stars: Literal["one", "two", "three"]
    tags: list[str] = Field(min_length=2)
    score: float = Field(gt=0, le=10)
    spoilers: bool
    note: str | None


TOOLS = [convert_to_openai_tool(t) for t in (lookup_stock, get_weather)]


def prompt(
    messages: list[BaseMessage],
    *,
    overrides: dict[str, str] | None = None,
    **emulation: Any,
) -> str:
    instructions = build_instructions(resolve_instructions(overrides), **emulation)
    return build_prompt(messages, instructions=instructions).text


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def test_calls_the_tool_that_fits_the_question_with_arguments_from_it() -> None:
    text = prompt(
        [HumanMessage("What is the weather in Paris right now?")], tools=TOOLS
    )
    assert json.loads(reply(text) or "") == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    }


def test_calls_the_first_tool_when_none_fits_and_the_forced_one_when_forced() -> None:
    question = [HumanMessage("Hi there")]
    first = json.loads(reply(prompt(question, tools=TOOLS)) or "")
    assert first["tool_calls"][0]["name"] == "lookup_stock"
    forced = json.loads(
        reply(prompt(question, tools=TOOLS, tool_choice="get_weather")) or ""
    )
    assert forced["tool_calls"][0]["name"] == "get_weather"


def test_a_quoted_phrase_is_the_string_argument() -> None:
    text = prompt(
        [HumanMessage("Look up the stock 'ACME 株式会社' (ACME)")], tools=TOOLS
    )
    call = json.loads(reply(text) or "")["tool_calls"][0]
    assert call == {"name": "lookup_stock", "arguments": {"symbol": "ACME 株式会社"}}


def test_answers_a_tool_result_in_prose() -> None:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}
    messages: list[BaseMessage] = [
        HumanMessage("What is the weather in Paris?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("Sunny, 21°C", tool_call_id="call_1", name="get_weather"),
    ]
    answer = reply(prompt(messages, tools=TOOLS)) or ""
    assert "get_weather" in answer
    assert "Sunny, 21°C" in answer
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer)


def test_answers_a_json_schema_with_an_object_that_validates() -> None:
    text = prompt(
        [HumanMessage("Which film won Best Picture in 1998?")],
        response_format=schema_format(Movie.model_json_schema()),
    )
    assert Movie.model_validate_json(reply(text) or "") == Movie(
        title="Best Picture", year=1998
    )


def test_filled_values_respect_the_schema() -> None:
    review = Review.model_validate(fill_schema(Review.model_json_schema(), "Nice."))
    assert review.stars == "one"
    assert len(review.tags) == 2
    assert 0 < review.score <= 10
    assert review.movie.year == 1888


def test_tools_and_a_schema_together_call_a_tool() -> None:
    text = prompt(
        [HumanMessage("Weather in Rome?")],
        tools=TOOLS,
        response_format=schema_format(Movie.model_json_schema()),
    )
    assert json.loads(reply(text) or "")["tool_calls"][0]["arguments"] == {
        "city": "Rome"
    }


def test_tool_choice_none_with_a_schema_answers_the_schema() -> None:
    text = prompt(
        [HumanMessage("Which film won Best Picture in 1998?")],
        tools=TOOLS,
        tool_choice="none",
        response_format=schema_format(Movie.model_json_schema()),
    )
    assert json.loads(reply(text) or "") == {"title": "Best Picture", "year": 1998}


def test_json_mode_answers_with_the_quoted_keys() -> None:
    text = prompt(
        [HumanMessage("Tell me a joke. Use the keys 'setup' and 'punchline'.")],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply(text) or "") == {
        "setup": "Tell me a joke.",
        "punchline": "Tell me a joke.",
    }


@pytest.mark.parametrize(
    "text",
    [
        "Hello there",
        prompt([HumanMessage("Hello"), AIMessage("Hi"), HumanMessage("Again")]),
        prompt([HumanMessage("Weather in Paris?")], tools=TOOLS, tool_choice="none"),
        prompt(
            [HumanMessage("Weather in Paris?")],
            tools=TOOLS,
            overrides={"tools": "Tools: {tools}\n{choice}"},
        ),
    ],
    ids=["plain", "conversation", "tool-choice-none", "custom-instructions"],
)
def test_anything_else_is_left_to_the_echo(text: str) -> None:
    assert reply(text) is None


# --- repair requests -------------------------------------------------------------


def repair_request(
    messages: list[BaseMessage],
    bad_reply: str,
    *,
    problem: str | None = None,
    overrides: dict[str, str] | None = None,
    **emulation: Any,
) -> str:
    """The prompt of the repair request `ChatDynaspark` sends after `bad_reply`.

    Built as the client builds it: `format_problem` finds what is wrong (unless
    `problem` is given), `repair` makes the conversation to send.
    """
    texts = resolve_instructions(overrides)
    instructions = build_instructions(texts, **emulation)
    if problem is None:
        offered = {
            tool["function"]["name"]: tool["function"]["parameters"]
            for tool in emulation.get("tools", ())
        }
        problem = format_problem(
            parse_tool_calls(bad_reply, offered),
            bad_reply,
            tool_choice=emulation.get("tool_choice", "auto") if offered else None,
            response_format=emulation.get("response_format"),
        )
    assert problem is not None, "the reply needs no repair"
    sent: list[list[BaseMessage]] = []

    def ask(conversation: list[BaseMessage], retries: int) -> AIMessage:
        sent.append(conversation)
        return AIMessage("")

    attempt = Attempt(
        AIMessage(bad_reply),
        bad_reply,
        repair_prompt(texts["repair"], problem, instructions),
    )
    repair(messages, attempt, 1, ask)
    [conversation] = sent
    return build_prompt(conversation, instructions=instructions).text


WEATHER = [HumanMessage("What is the weather in Paris right now?")]


@pytest.mark.parametrize("choice", ["get_weather", "any"])
def test_a_prose_reply_to_a_forced_call_is_repaired_with_the_call(choice: str) -> None:
    text = repair_request(WEATHER, "It is sunny.", tools=TOOLS, tool_choice=choice)
    assert "Your last reply could not be used" in text
    assert json.loads(reply(text) or "") == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    }


def test_the_forced_tool_is_called_even_when_another_fits_the_question() -> None:
    text = repair_request(
        WEATHER, "It is sunny.", tools=TOOLS, tool_choice="lookup_stock"
    )
    call = json.loads(reply(text) or "")["tool_calls"][0]
    assert call == {"name": "lookup_stock", "arguments": {"symbol": "Paris"}}


def test_invalid_arguments_under_auto_are_repaired_with_a_valid_call() -> None:
    bad = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": 3}}]}'
    text = repair_request(WEATHER, bad, tools=TOOLS)
    assert "city: 3 is not of type 'string'" in text
    assert json.loads(reply(text) or "") == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    }


def test_after_a_tool_result_the_repair_calls_a_tool_not_yet_called() -> None:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}
    messages: list[BaseMessage] = [
        *WEATHER,
        AIMessage("", tool_calls=[call]),
        ToolMessage("Sunny", tool_call_id="call_1", name="get_weather"),
    ]
    text = repair_request(messages, "Sunny.", tools=TOOLS, tool_choice="any")
    assert json.loads(reply(text) or "") == {
        "tool_calls": [{"name": "lookup_stock", "arguments": {"symbol": "Paris"}}]
    }


@pytest.mark.parametrize(
    "bad",
    ["I think it was Titanic, in 1997.", '{"title": "Titanic", "year": "late 90s"}'],
    ids=["unparseable", "fails-validation"],
)
def test_a_structured_reply_is_repaired_with_an_object_that_validates(
    bad: str,
) -> None:
    text = repair_request(
        [HumanMessage("Which film won Best Picture in 1998?")],
        bad,
        response_format=schema_format(Movie.model_json_schema()),
    )
    assert Movie.model_validate_json(reply(text) or "") == Movie(
        title="Best Picture", year=1998
    )


def test_json_mode_is_repaired_with_the_quoted_keys() -> None:
    text = repair_request(
        [HumanMessage("Tell me a joke. Use the keys 'setup' and 'punchline'.")],
        "Why did the chicken cross the road?",
        response_format={"type": "json_object"},
    )
    assert json.loads(reply(text) or "") == {
        "setup": "Tell me a joke.",
        "punchline": "Tell me a joke.",
    }


def test_an_error_that_quotes_the_repair_text_does_not_hide_the_form() -> None:
    middle = DEFAULT_INSTRUCTIONS["repair"].split("{error}")[1].split("{form}")[0]
    text = repair_request(
        WEATHER,
        "It is sunny.",
        problem=f"The reply said {middle}nothing useful.",
        tools=TOOLS,
        tool_choice="get_weather",
    )
    assert json.loads(reply(text) or "")["tool_calls"][0]["name"] == "get_weather"


@pytest.mark.parametrize(
    "text",
    [
        repair_request(
            WEATHER,
            "It is sunny.",
            overrides={"repair": "Wrong: {error}. Do this: {form}"},
            tools=TOOLS,
            tool_choice="any",
        ),
        prompt([*WEATHER, AIMessage("It is sunny."), SystemMessage("Be brief.")]),
        repair_request(
            WEATHER,
            "It is sunny.",
            problem="You had to call a tool.",
            overrides={"tools": "Tools: {tools}\n{choice}"},
            tools=TOOLS,
            tool_choice="any",
        ),
    ],
    ids=["custom-repair-text", "other-system-turn", "custom-form"],
)
def test_what_is_not_a_repair_request_it_reads_is_left_to_the_echo(
    text: str,
) -> None:
    assert reply(text) is None
