"""The local server's literal-minded stand-in, on prompts the package renders.

Every prompt here is made by `build_prompt` with the instructions `ChatDynaspark`
adds, so a change to how prompts are written that the stand-in no longer reads
fails these tests.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from langchain_dynaspark.instructions import build_instructions, resolve_instructions
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
