"""`endpoint="auto"` (the default): every call goes where it fits.

Against the local server: short text on the API (token streaming, usage),
images and long conversations on the form, a surface that is gone answered
once and then skipped for the whole process, and the pinned settings strict.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from PIL import Image

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkInputError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
)
from langchain_dynaspark.endpoints import gone
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

RUSSIAN = ("Расскажи, пожалуйста, о погоде в Москве и в Санкт-Петербурге. " * 40)[:2000]  # noqa: RUF001
NOT_FOUND_PAGE = (
    "<!doctype html><html><head><title>404 Not Found</title></head>"
    "<body>Not Found</body></html>"
)


def _methods(server: DynasparkTestServer) -> list[str]:
    return [request.method for request in server.requests]


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def model(server: DynasparkTestServer) -> ChatDynaspark:
    return ChatDynaspark(base_url=server.url, max_retries=0)


def test_auto_is_the_default(model: ChatDynaspark) -> None:
    assert model.endpoint == "auto"


async def test_a_short_prompt_streams_token_by_token_with_usage(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.script(Reply(text="one two three four five"))
    chunks = [chunk async for chunk in model.astream("Count to five.")]
    assert len(chunks) >= 5
    assert "".join(chunk.text for chunk in chunks) == "one two three four five"
    last = chunks[-1]
    assert last.usage_metadata is not None
    assert last.usage_metadata["output_tokens"] > 0
    assert last.response_metadata["endpoint"] == "api"
    assert _methods(server) == ["GET"]
    assert server.requests[0].fields["stream"] == "true"


def test_a_prompt_with_an_image_goes_to_the_form(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What colour is this?"},
            {"type": "image", "base64": _png(), "mime_type": "image/png"},
        ]
    )
    reply = model.invoke([message])
    assert reply.response_metadata["endpoint"] == "form"
    assert _methods(server) == ["POST"]
    assert server.requests[0].file is not None


def test_a_2000_character_russian_prompt_answers_on_the_form(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    assert len(RUSSIAN) == 2000
    reply = model.invoke(RUSSIAN)
    assert reply.text == f"Echo: {RUSSIAN}"
    assert reply.response_metadata["endpoint"] == "form"
    assert _methods(server) == ["POST"]  # the API was never asked


def test_a_ten_turn_chat_answers(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    history: list[BaseMessage] = [SystemMessage("Answer briefly.")]
    for turn in range(10):
        history.append(HumanMessage(f"Question {turn}: what is {turn} + {turn}? " * 8))
        reply = model.invoke(history)
        assert reply.text.startswith("Echo: ")
        history.append(reply)
    endpoints = {m.response_metadata["endpoint"] for m in history[2::2]}
    assert endpoints == {"api", "form"}  # short turns on the API, then the form


def test_an_agent_with_eight_tools_answers(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    tools = []
    for index in range(8):

        @tool(f"tool_{index}", description=f"Tool number {index}: returns a fact.")
        def fact(topic: str, number: int = index) -> str:
            return f"fact {number} about {topic}"

        tools.append(fact)
    server.script(
        '{"tool_calls": [{"name": "tool_3", "arguments": {"topic": "owls"}}]}',
        "Owls: fact 3.",
    )
    agent = create_agent(model, tools=tools)
    result = agent.invoke({"messages": [HumanMessage("Tell me about owls.")]})
    messages = result["messages"]
    assert messages[-1].text == "Owls: fact 3."
    assert messages[2].content == "fact 3 about owls"  # the tool's answer
    assert len(server.requests) == 2


def test_with_the_form_gone_text_answers_and_the_form_is_asked_once(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.gone.add("form")
    for _ in range(3):
        assert model.invoke("Hi").text == "Echo: Hi"
        with pytest.raises(DynasparkNotFoundError) as caught:
            model.invoke(RUSSIAN)  # too long for a URL, and the form is gone
        message = str(caught.value)
        assert "form:" in message
        assert "api:" in message
        assert "max_request_line" in message
    assert _methods(server) == ["GET", "POST", "GET", "GET"]
    other = ChatDynaspark(base_url=server.url, max_retries=0)
    with pytest.raises(DynasparkNotFoundError):
        other.invoke(RUSSIAN)  # every model of the process knows it is gone
    assert _methods(server).count("POST") == 1


def test_with_the_api_gone_calls_from_many_threads_ask_it_once(
    server: DynasparkTestServer,
) -> None:
    server.gone.add("api")
    server.script(*[Reply(text="ok", delay=0.05)] * 40)
    start = threading.Barrier(4)

    def thread_of_calls(number: int) -> list[str]:
        model = ChatDynaspark(base_url=server.url, max_retries=0)

        async def calls() -> list[AIMessage]:
            return await asyncio.gather(*(model.ainvoke(f"Hi {i}") for i in range(5)))

        start.wait()
        replies = (
            asyncio.run(calls())
            if number % 2
            else [model.invoke(f"Hello {i}") for i in range(5)]
        )
        return [reply.response_metadata["endpoint"] for reply in replies]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(thread_of_calls, range(4)))
    assert [endpoint for r in results for endpoint in r] == ["form"] * 20
    assert _methods(server).count("GET") == 1
    assert _methods(server).count("POST") == 20


def test_a_gone_surface_is_tried_again_after_a_while(
    server: DynasparkTestServer, model: ChatDynaspark, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gone, "GONE_FOR", 0.2)
    server.gone.add("api")
    assert model.invoke("Hi").response_metadata["endpoint"] == "form"
    assert model.invoke("Hi").response_metadata["endpoint"] == "form"
    assert _methods(server) == ["GET", "POST", "POST"]
    server.gone.clear()
    threading.Event().wait(0.3)
    assert model.invoke("Hi").response_metadata["endpoint"] == "api"


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        (Reply(status=405, body={"error": "Method Not Allowed"}), "405"),
        (Reply(status=410, body={"error": "Gone"}), "410"),
        (Reply(body=NOT_FOUND_PAGE, content_type="text/html"), "200 page"),
    ],
)
def test_other_signs_of_a_moved_path_count_as_gone(
    server: DynasparkTestServer, model: ChatDynaspark, reply: Reply, what: str
) -> None:
    server.script(reply)
    answer = model.invoke("Hi")
    assert answer.text == "Echo: Hi", what
    assert answer.response_metadata["endpoint"] == "form"
    assert _methods(server) == ["GET", "POST"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_failures_are_not_gone(
    server: DynasparkTestServer, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked: list[str] = []
    monkeypatch.setattr(gone, "mark_gone", marked.append)
    server.script(Reply(status=status, body={"error": "busy"}), "second try")
    model = ChatDynaspark(base_url=server.url, max_retries=1)
    assert model.invoke("Hi").text == "second try"
    assert _methods(server) == ["GET", "GET"]
    assert marked == []


def test_the_pinned_settings_stay_strict(server: DynasparkTestServer) -> None:
    server.gone.add("form")
    form = ChatDynaspark(base_url=server.url, endpoint="form", max_retries=0)
    for _ in range(2):
        with pytest.raises(DynasparkNotFoundError, match="404"):
            form.invoke("Hi")
    assert _methods(server) == ["POST", "POST"]  # never skipped, never moved
    server.gone.clear()
    api = ChatDynaspark(base_url=server.url, endpoint="api", max_retries=0)
    with pytest.raises(DynasparkInputError, match="max_request_line"):
        api.invoke(RUSSIAN)
    server.gone.add("api")
    with pytest.raises(DynasparkNotFoundError):
        api.invoke("Hi")
    assert _methods(server) == ["POST", "POST", "GET"]


@pytest.mark.parametrize("endpoint", ["auto", "form", "api"])
async def test_every_reply_and_last_chunk_names_its_endpoint(
    server: DynasparkTestServer, endpoint: str
) -> None:
    model = ChatDynaspark(base_url=server.url, endpoint=endpoint, max_retries=0)
    expected = "form" if endpoint == "form" else "api"
    assert (await model.ainvoke("Hi")).response_metadata["endpoint"] == expected
    chunks = [chunk async for chunk in model.astream("Hi")]
    assert chunks[-1].response_metadata["endpoint"] == expected
    assert model.invoke("Hi").response_metadata["endpoint"] == expected
    streaming = ChatDynaspark(
        base_url=server.url, endpoint=endpoint, streaming=True, max_retries=0
    )
    assert streaming.invoke("Hi").response_metadata["endpoint"] == expected


def test_sampling_on_a_call_that_goes_to_the_form_warns_once(
    server: DynasparkTestServer,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChatDynaspark(base_url=server.url, temperature=0.5, seed=4)
        model.invoke("Hi")  # to the API: sent, no warning
    assert server.requests[0].fields["temperature"] == "0.5"
    with pytest.warns(
        UserWarning, match="ignores seed, temperature: the Dynaspark form"
    ):
        model.invoke(RUSSIAN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.invoke(RUSSIAN)  # once per model
    assert "temperature" not in server.requests[1].fields


def test_a_system_prompt_reaches_the_model_on_either_surface(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    model.invoke([SystemMessage("Be terse."), HumanMessage("Hi")])
    model.invoke([SystemMessage("Be terse."), HumanMessage(RUSSIAN)])
    short, long = server.requests
    assert (short.method, short.fields["system"]) == ("GET", "Be terse.")
    assert long.method == "POST"
    assert long.fields["user_input"].startswith("System: Be terse.")


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}."


LONG_NOTE = "x" * 3000
INVALID_CALL = (
    '{"tool_calls": [{"name": "get_weather", "arguments": {"town": "'
    + LONG_NOTE
    + '"}}]}'
)
VALID_CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}'


def test_a_repair_too_long_for_the_api_goes_to_the_form(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.script(INVALID_CALL, VALID_CALL)
    reply = model.bind_tools([get_weather], tool_choice="any").invoke("Weather?")
    assert [call["args"] for call in reply.tool_calls] == [{"city": "Oslo"}]
    assert reply.response_metadata["format_retries"] == 1
    assert reply.response_metadata["endpoint"] == "form"
    assert _methods(server) == ["GET", "POST"]


def test_a_repair_that_fits_no_surface_returns_the_first_answer(
    server: DynasparkTestServer,
) -> None:
    server.script(INVALID_CALL, VALID_CALL)
    model = ChatDynaspark(base_url=server.url, endpoint="api", max_retries=0)
    reply = model.bind_tools([get_weather], tool_choice="any").invoke("Weather?")
    assert reply.tool_calls == []
    [invalid] = reply.invalid_tool_calls
    assert invalid["name"] == "get_weather"
    assert "format_retries" not in reply.response_metadata
    assert _methods(server) == ["GET"]


def test_a_refused_key_says_how_to_set_one(server: DynasparkTestServer) -> None:
    server.api_key = "s3cret-key"
    model = ChatDynaspark(base_url=server.url, endpoint="api", max_retries=0)
    with pytest.raises(DynasparkInvalidRequestError, match="401") as caught:
        model.invoke("Hi")
    assert "DYNASPARK_API_KEY" in str(caught.value)
    assert "\n" not in str(caught.value)
    keyed = ChatDynaspark(base_url=server.url, endpoint="api", api_key="s3cret-key")
    assert keyed.invoke("Hi").text == "Echo: Hi"


def test_no_surface_left_names_what_was_tried(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.gone.update({"form", "api"})
    with pytest.raises(DynasparkNotFoundError) as caught:
        model.invoke("Hi")
    message = str(caught.value)
    assert "form: Dynaspark answered 404" in message
    assert "api: answered as gone" in message
    assert _methods(server) == ["GET", "POST"]
    with pytest.raises(DynasparkNotFoundError, match="tried again in"):
        model.invoke("Hi")
    assert len(server.requests) == 2
