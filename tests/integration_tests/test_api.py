"""Round trips on `endpoint="api"` (the documented API) through the local server."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.tools import tool

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkInputError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkResponseError,
    DynasparkTimeoutError,
)
from langchain_dynaspark.endpoints.api import PUBLIC_API_KEY
from langchain_dynaspark.testing.server import (
    DEFAULT_API_MODEL,
    DynasparkTestServer,
    Reply,
)
from langchain_dynaspark.transport import retries

API_KEY = "sk-dynaspark-0123456789abcdef"
"""Distinctive, so that a leak is easy to spot."""
LIMIT = 5.0
"""Generous upper bound, in seconds, for anything that should be quick."""


def _model(server: DynasparkTestServer, **kwargs: Any) -> ChatDynaspark:
    kwargs.setdefault("max_retries", 0)
    return ChatDynaspark(base_url=server.url, endpoint="api", **kwargs)


def _sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return sum(chunks[1:], chunks[0])


def _drain(chunks: Iterator[AIMessageChunk], into: list[str]) -> None:
    for chunk in chunks:
        into.append(chunk.text)


async def _adrain(chunks: AsyncIterator[AIMessageChunk], into: list[str]) -> None:
    async for chunk in chunks:
        into.append(chunk.text)


def _eventually(condition: Callable[[], object]) -> bool:
    deadline = time.monotonic() + LIMIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


# --- the query ---------------------------------------------------------------------


def test_every_parameter_reaches_the_query_exactly(server: DynasparkTestServer) -> None:
    model = _model(
        server,
        model="openai-large",
        temperature=0.7,
        top_p=0.9,
        presence_penalty=-1.5,
        frequency_penalty=2,
        seed=42,
        api_key=API_KEY,
    )
    model.invoke([SystemMessage("Be brief."), HumanMessage("Hi")])
    [request] = server.requests
    assert request.method == "GET"
    assert request.path == "/api/generate_response"
    assert request.fields == {
        "user_input": "Hi",
        "system": "Be brief.",
        "model": "openai-large",
        "temperature": "0.7",
        "top_p": "0.9",
        "presence_penalty": "-1.5",
        "frequency_penalty": "2.0",
        "seed": "42",
        "private": "true",
        "api_key": API_KEY,
    }


def test_per_call_parameters_override_the_fields(server: DynasparkTestServer) -> None:
    model = _model(server, temperature=0.7, seed=1)
    model.invoke("Hi", temperature=0.0, top_p=1, seed=7, model="mistral")
    model.bind(temperature=2.5).invoke("Hi")
    first, second = (r.fields for r in server.requests)
    assert first == {
        "user_input": "Hi",
        "model": "mistral",
        "temperature": "0.0",
        "top_p": "1",
        "seed": "7",
        "private": "true",
        "api_key": PUBLIC_API_KEY,
    }
    assert second == {
        "user_input": "Hi",
        "temperature": "2.5",
        "seed": "1",
        "private": "true",
        "api_key": PUBLIC_API_KEY,
    }


def test_defaults_send_the_prompt_private_and_the_public_key(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNASPARK_API_KEY", raising=False)
    result = _model(server).invoke("Hi")
    assert server.requests[0].fields == {
        "user_input": "Hi",
        "private": "true",
        "api_key": "TH3_API_KEY",  # the service's free key, as its client sends
    }
    # No model was chosen: the reply names the one the service used.
    assert result.response_metadata["model_name"] == DEFAULT_API_MODEL
    _model(server, private=False).invoke("Hi")
    assert server.requests[1].fields == {"user_input": "Hi", "api_key": "TH3_API_KEY"}


def test_api_key_from_the_environment(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNASPARK_API_KEY", API_KEY)
    _model(server).invoke("Hi")
    assert server.requests[0].fields["api_key"] == API_KEY


def test_the_form_sends_no_sampling_parameter_and_no_key(
    server: DynasparkTestServer,
) -> None:
    with pytest.warns(UserWarning, match="ignores seed, temperature"):
        model = ChatDynaspark(
            base_url=server.url,
            endpoint="form",
            temperature=0.2,
            seed=3,
            api_key=API_KEY,
        )
    model.invoke("Hi")
    assert server.requests[0].fields == {"user_input": "Hi", "ai_model": model.model}


def test_system_split_keeps_later_system_messages_in_the_transcript(
    server: DynasparkTestServer,
) -> None:
    _model(server).invoke(
        [
            SystemMessage("Answer in French."),
            HumanMessage("Hi"),
            AIMessage("Salut"),
            SystemMessage("Now answer in German."),
            HumanMessage("Bye"),
        ]
    )
    fields = server.requests[0].fields
    assert fields["system"] == "Answer in French."
    assert fields["user_input"] == (
        "User: Hi\n\nAssistant: Salut\n\nSystem: Now answer in German.\n\n"
        "User: Bye\n\nAssistant:"
    )


@pytest.mark.parametrize("method", ["json_mode", "json_schema"])
def test_json_mode_asks_the_service_for_json(
    server: DynasparkTestServer, method: str
) -> None:
    schema = {
        "title": "Answer",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    server.script(Reply(text='{"city": "Paris"}'))
    structured = _model(server).with_structured_output(schema, method=method)
    assert structured.invoke("Capital of France, as JSON") == {"city": "Paris"}
    assert server.requests[0].fields["json"] == "true"


def test_plain_calls_do_not_ask_for_json(server: DynasparkTestServer) -> None:
    _model(server).invoke("Hi")
    assert "json" not in server.requests[0].fields


# --- the reply ---------------------------------------------------------------------


def test_reply_gives_content_model_usage_and_rate_limit(
    server: DynasparkTestServer,
) -> None:
    server.rate_limit = 100
    try:
        result = _model(server).invoke("one two three")
    finally:
        server.rate_limit = None
    assert result.content == "Echo: one two three"
    assert result.usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    metadata = result.response_metadata
    assert metadata["model_name"] == DEFAULT_API_MODEL
    assert metadata["model_provider"] == "dynaspark"
    assert metadata["finish_reason"] == "stop"
    assert metadata["rate_limit"]["limit"] == 100
    assert metadata["rate_limit"]["remaining"] == 99
    assert metadata["rate_limit"]["reset"] > time.time()


def test_text_plain_reply(server: DynasparkTestServer) -> None:
    server.script(Reply(status=200, body="Just text.", content_type="text/plain"))
    result = _model(server).invoke("Hi")
    assert result.content == "Just text."
    assert result.usage_metadata is None


def test_html_and_error_bodies_are_errors(server: DynasparkTestServer) -> None:
    server.script(
        Reply(status=200, body="<html><title>Sleeping</title></html>"),
        Reply(status=200, body={"error": "Model overloaded"}),
    )
    model = _model(server)
    with pytest.raises(DynasparkResponseError, match="HTML"):
        model.invoke("Hi")
    with pytest.raises(DynasparkResponseError, match="Model overloaded"):
        model.invoke("Hi")


# --- streaming ---------------------------------------------------------------------


@pytest.mark.parametrize("style", ["openai", "response", "text"])
def test_streaming_in_each_event_style(server: DynasparkTestServer, style: str) -> None:
    server.script(Reply(events=["Bon", "jour", " à\ntous"], sse=style))
    tokens = Tokens()
    chunks = list(_model(server).stream("Hi", config={"callbacks": [tokens]}))
    assert [c.content for c in chunks] == ["Bon", "jour", " à\ntous", ""]
    assert tokens.tokens == ["Bon", "jour", " à\ntous", ""]
    assert chunks[-1].chunk_position == "last"
    full = _sum(chunks)
    assert full.content == "Bonjour à\ntous"
    assert full.response_metadata["finish_reason"] == "stop"
    assert server.requests[0].fields["stream"] == "true"
    if style == "text":
        assert full.usage_metadata is None
    else:
        assert full.usage_metadata == {
            "input_tokens": 1,
            "output_tokens": 3,
            "total_tokens": 4,
        }
        assert full.response_metadata["model_name"] == DEFAULT_API_MODEL


async def test_astream_gives_the_same_chunks(server: DynasparkTestServer) -> None:
    server.script(Reply(events=["a", "b", "c"]))
    chunks = [c async for c in _model(server).astream("Hi")]
    assert [c.content for c in chunks] == ["a", "b", "c", ""]
    assert _sum(chunks).usage_metadata is not None


def test_usage_and_finish_reason_from_any_event(server: DynasparkTestServer) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    raw = [
        'data: {"choices": [{"delta": {"content": "A"}}], "usage": null}\n\n',
        f"data: {json.dumps({'usage': usage, 'model': 'm-1'})}\n\n",
        'data: {"choices": [{"delta": {"content": "B"}, '
        '"finish_reason": "length"}]}\n\n',
        "data: [DONE]\n\n",
    ]
    server.script(Reply(raw=raw))
    full = _sum(list(_model(server).stream("Hi")))
    assert full.content == "AB"
    assert full.usage_metadata == {
        "input_tokens": 9,
        "output_tokens": 2,
        "total_tokens": 11,
    }
    assert full.response_metadata["finish_reason"] == "length"
    assert full.response_metadata["model_name"] == "m-1"


def test_events_split_across_reads_with_crlf_and_comments(
    server: DynasparkTestServer,
) -> None:
    raw = [
        ': keep-alive\r\n\r\ndata: {"respo',
        'nse": "Hel"}\r',
        "\n\r\ndata: lo\r\ndata: world\r\n",
        "\r\ndata: [DO",
        "NE]\r\n\r\n",
    ]
    server.script(Reply(raw=raw, event_delay=0.02))
    chunks = list(_model(server).stream("Hi"))
    assert [c.content for c in chunks] == ["Hel", "lo\nworld", ""]


def test_each_event_is_yielded_as_soon_as_it_arrives(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["one ", "two ", "three"], event_delay=0.3))
    stream = _model(server).stream("Hi")
    first = next(stream)
    assert first.content == "one "
    # The server has not written the rest yet.
    assert server.streams[0].events < server.streams[0].planned
    assert "".join(c.text for c in stream) == "two three"


def test_a_reply_that_ignores_stream_is_one_chunk(server: DynasparkTestServer) -> None:
    server.script(Reply(status=200, body={"response": "Whole.", "model": "m"}))
    chunks = list(_model(server).stream("Hi"))
    assert [c.content for c in chunks] == ["Whole."]
    assert _sum(chunks).response_metadata["model_name"] == "m"


def test_an_error_event_raises(server: DynasparkTestServer) -> None:
    server.script(Reply(raw=["data: ok\n\n", 'data: {"error": "quota"}\n\n']))
    with pytest.raises(DynasparkResponseError, match="quota"):
        list(_model(server).stream("Hi"))


@pytest.mark.parametrize("method", ["stream", "astream"])
def test_stop_across_event_boundaries_cuts_the_text_and_keeps_the_usage(
    server: DynasparkTestServer, method: str
) -> None:
    events = ["Paris.", "\nUs", "er: and", " Rome?", *["more "] * 10]
    server.script(Reply(events=events, event_delay=0.02))
    model = _model(server, stop=["\nUser:"])
    if method == "stream":
        chunks: list[Any] = list(model.stream("Capital?"))
    else:

        async def collect() -> list[AIMessageChunk]:
            return [c async for c in model.astream("Capital?")]

        chunks = asyncio.run(collect())
    text = "".join(c.text for c in chunks)
    assert text == "Paris."
    assert chunks[-1].response_metadata["finish_reason"] == "stop_sequence"
    # Read on to the end, as `invoke` is, for the usage sent last.
    assert chunks[-1].usage_metadata is not None
    record = server.streams[0]
    assert record.events == record.planned
    assert not record.disconnected


def test_invoke_with_streaming_streams_tokens_and_gives_the_same_message(
    server: DynasparkTestServer,
) -> None:
    events = ["Par", "is", " and ", "Rome."]
    server.script(Reply(events=events), Reply(events=events))
    tokens = Tokens()
    message = _model(server, streaming=True).invoke(
        "Capitals?", config={"callbacks": [tokens]}
    )
    plain = _model(server).invoke("Capitals?")
    assert [t for t in tokens.tokens if t] == events
    assert server.requests[0].fields["stream"] == "true"
    assert "stream" not in server.requests[1].fields
    assert message.text == plain.text == "Paris and Rome."
    assert message.response_metadata == plain.response_metadata
    assert message.usage_metadata == plain.usage_metadata
    assert message.usage_metadata is not None


async def test_a_streaming_listener_gets_each_event_of_an_invoke(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["a", "b", "c"]))
    model = _model(server)
    streamed = [
        event["data"]["chunk"].text
        async for event in model.astream_events("Hi", version="v2")
        if event["event"] == "on_chat_model_stream"
    ]
    assert [text for text in streamed if text] == ["a", "b", "c"]
    assert server.requests[0].fields["stream"] == "true"


def test_invoke_with_tools_and_streaming_stays_one_buffered_reply(
    server: DynasparkTestServer,
) -> None:
    server.script('{"tool_calls": [{"name": "nowhere", "arguments": {}}]}')
    tokens = Tokens()
    model = _model(server, streaming=True, format_retries=0)
    message = model.bind_tools([get_weather]).invoke(
        "Hi", config={"callbacks": [tokens]}
    )
    assert "stream" not in server.requests[0].fields
    assert len(tokens.tokens) == 1
    assert message.tool_calls == []
    assert [call["name"] for call in message.invalid_tool_calls] == ["nowhere"]


def test_text_that_only_looks_like_a_stop_is_released(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["a\nUs", "ually fine"]))
    chunks = list(_model(server, stop=["\nUser:"]).stream("Hi"))
    assert [c.content for c in chunks] == ["a", "\nUsually fine", ""]


def test_a_drop_after_three_chunks_raises_and_is_not_retried(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["a", "b", "c", "d", "e"], drop_after=3), "never")
    received: list[str] = []
    with pytest.raises(DynasparkConnectionError, match="incomplete"):
        _drain(_model(server, max_retries=2).stream("Hi"), received)
    assert received == ["a", "b", "c"]
    assert len(server.requests) == 1


async def test_a_drop_after_chunks_raises_on_astream(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["a", "b", "c", "d"], drop_after=3))
    received: list[str] = []
    with pytest.raises(DynasparkConnectionError):
        await _adrain(_model(server, max_retries=2).astream("Hi"), received)
    assert received == ["a", "b", "c"]
    assert len(server.requests) == 1


def test_a_drop_before_the_first_chunk_is_retried(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "BACKOFF_BASE", 0.01)
    server.script(
        Reply(events=["x"], drop_after=0),
        Reply(drop=True),
        Reply(events=["fine"]),
    )
    chunks = list(_model(server, max_retries=2).stream("Hi"))
    assert "".join(c.text for c in chunks) == "fine"
    assert len(server.requests) == 3


def test_silence_after_chunks_raises_a_timeout_and_is_not_retried(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["a", "b"], event_delay=3.0), "never")
    received: list[str] = []
    with pytest.raises(DynasparkTimeoutError, match="went silent") as caught:
        _drain(_model(server, timeout=0.3, max_retries=2).stream("Hi"), received)
    assert received == ["a"]
    assert len(server.requests) == 1
    assert "timeout=0.3 s" in str(caught.value)


def test_a_long_stream_that_keeps_delivering_is_not_cut(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=[f"{i} " for i in range(8)], event_delay=0.1))
    chunks = list(_model(server, timeout=0.4).stream("Hi"))
    assert "".join(c.text for c in chunks) == "0 1 2 3 4 5 6 7 "


# --- tools and structured output: buffered, the same as invoke --------------------


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


def test_tool_calls_from_a_stream_match_invoke(server: DynasparkTestServer) -> None:
    model = _model(server).bind_tools([get_weather])
    server.script(CALL, CALL)
    invoked = model.invoke("Weather in Paris?")
    streamed = _sum(list(model.stream("Weather in Paris?")))
    assert [(c["name"], c["args"]) for c in invoked.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [
        (c["name"], c["args"]) for c in invoked.tool_calls
    ]
    assert all("stream" not in r.fields for r in server.requests)


def test_structured_output_from_a_stream_matches_invoke(
    server: DynasparkTestServer,
) -> None:
    structured = _model(server).with_structured_output(
        {"title": "City", "type": "object", "properties": {"name": {"type": "string"}}}
    )
    server.script('{"name": "Paris"}', '{"name": "Paris"}')
    assert structured.invoke("City?") == {"name": "Paris"}
    assert list(structured.stream("City?"))[-1] == {"name": "Paris"}


# --- rate limits -------------------------------------------------------------------


def test_the_server_window_answers_429_when_spent(server: DynasparkTestServer) -> None:
    server.rate_limit = 2
    try:
        model = _model(server)
        remaining = [
            model.invoke("Hi").response_metadata["rate_limit"]["remaining"]
            for _ in range(2)
        ]
        with pytest.raises(DynasparkRateLimitError) as caught:
            model.invoke("Hi")
    finally:
        server.rate_limit = None
    assert remaining == [1, 0]
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > retries.MAX_RETRY_AFTER
    assert "Rate limit exceeded" in str(caught.value)


async def test_429_with_only_x_ratelimit_reset(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    reset = str(int(time.time()) + 10)
    server.script(Reply(status=429, headers={"X-RateLimit-Reset": reset}), "ok")
    result = await _model(server, max_retries=1).ainvoke("Hi")
    assert result.content == "ok"
    assert len(sleeps) == 1
    assert 8.0 <= sleeps[0] <= 10.0


async def test_a_wait_longer_than_the_cap_raises_at_once(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    reset = str(int(time.time()) + 3600)
    server.script(Reply(status=429, headers={"X-RateLimit-Reset": reset}), "ok")
    with pytest.raises(DynasparkRateLimitError) as caught:
        await _model(server, max_retries=3).ainvoke("Hi")
    assert caught.value.retry_after is not None
    assert 3590 <= caught.value.retry_after <= 3600
    assert sleeps == []
    assert len(server.requests) == 1


def test_retry_after_wins_over_x_ratelimit_reset(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    headers = {"Retry-After": "3", "X-RateLimit-Reset": str(int(time.time()) + 50)}
    server.script(Reply(status=429, headers=headers), "ok")
    assert _model(server, max_retries=1).invoke("Hi").content == "ok"
    assert sleeps == [3.0]


# --- input refused before sending --------------------------------------------------


def test_request_line_limit_matches_the_server_and_refuses_before_sending(
    server: DynasparkTestServer,
) -> None:
    limit = 600
    server.max_request_line = limit
    try:
        model = _model(server, max_request_line=limit)
        overhead = len(
            "GET /api/generate_response?user_input=&private=true"
            f"&api_key={PUBLIC_API_KEY} HTTP/1.1"
        )
        fits = "a" * (limit - overhead)
        assert model.invoke(fits).content == f"Echo: {fits}"
        with pytest.raises(DynasparkInputError, match="max_request_line=600"):
            model.invoke(fits + "a")
        with pytest.raises(DynasparkInputError, match="max_request_line"):
            list(model.stream(fits))  # `&stream=true` makes it too long
        assert len(server.requests) == 1
        # A client allowed more than the server takes gets the server's 414.
        with pytest.raises(DynasparkInvalidRequestError, match="414") as caught:
            _model(server, max_request_line=10_000).invoke(fits + "a")
        assert "max_request_line" in str(caught.value)
    finally:
        server.max_request_line = 4094


def test_the_default_limit_refuses_a_long_conversation(
    server: DynasparkTestServer,
) -> None:
    with pytest.raises(DynasparkInputError, match="endpoint='form'"):
        _model(server).invoke("word " * 1000)
    assert server.requests == []


def test_images_are_refused_before_sending(server: DynasparkTestServer) -> None:
    message = HumanMessage(
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "url": "https://example.com/cat.png"},
        ]
    )
    with pytest.raises(DynasparkInputError, match="endpoint='form'"):
        _model(server).invoke([message])
    assert server.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 3.5},
        {"top_p": -0.1},
        {"presence_penalty": 2.1},
        {"frequency_penalty": float("nan")},
        {"seed": 1.5},
        {"temperature": "hot"},
    ],
)
def test_out_of_range_per_call_parameters_fail_before_sending(
    server: DynasparkTestServer, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(DynasparkInputError, match=next(iter(kwargs))):
        _model(server).invoke("Hi", **kwargs)
    assert server.requests == []


# --- the API key never leaks -------------------------------------------------------


def _errors_with_key(server: DynasparkTestServer) -> Iterator[BaseException]:
    model = _model(server, api_key=API_KEY)
    server.script(
        Reply(status=401, body={"error": f"Invalid api_key {API_KEY}"}),
        Reply(status=429, body={"error": f"key {API_KEY} over quota"}),
        Reply(status=500, body=f"crashed on {API_KEY}"),
        Reply(status=200, body={"error": f"bad key {API_KEY}"}),
        Reply(events=["a"], drop_after=1),
    )
    calls: list[Callable[[], object]] = [
        lambda: model.invoke("Hi"),
        lambda: model.invoke("Hi"),
        lambda: model.invoke("Hi"),
        lambda: model.invoke("Hi"),
        lambda: list(model.stream("Hi")),
        lambda: model.invoke("word " * 2000),
        lambda: model.invoke([HumanMessage([{"type": "image", "url": "http://x/y"}])]),
        lambda: model.model_copy(update={"base_url": "http://127.0.0.1:9"}).invoke(
            "Hi"
        ),
        lambda: model.model_copy(update={"base_url": "ftp://h"}).invoke("Hi"),
        lambda: model.model_copy(update={"api_path": "/nowhere"}).invoke("Hi"),
    ]
    for call in calls:
        with pytest.raises(DynasparkError) as caught:
            call()
        yield caught.value


def test_api_key_is_absent_from_every_error_and_repr(
    server: DynasparkTestServer,
) -> None:
    errors = list(_errors_with_key(server))
    assert len(errors) == 10
    for error in errors:
        for text in (
            str(error),
            repr(error),
            str(getattr(error, "server_message", "")),
        ):
            assert API_KEY not in text, text
    model = _model(server, api_key=API_KEY)
    for text in (repr(model), str(model), str(model.model_dump()), str(model.asdict())):
        assert API_KEY not in text
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == API_KEY


def test_api_key_is_absent_from_traces_and_logs(
    server: DynasparkTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    class Tracer(BaseCallbackHandler):
        def on_chat_model_start(
            self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any
        ) -> None:
            seen.append(json.dumps([serialized, kwargs], default=str))

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            seen.append(json.dumps([response.model_dump(), kwargs], default=str))

    caplog.set_level(logging.DEBUG)
    model = _model(server, api_key=API_KEY)
    model.invoke("Hi", config={"callbacks": [Tracer()]})
    list(model.stream("Hi", config={"callbacks": [Tracer()]}))
    assert len(seen) == 4
    for text in seen:
        assert API_KEY not in text
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


def test_a_404_names_the_api_path(server: DynasparkTestServer) -> None:
    with pytest.raises(DynasparkNotFoundError, match="api_path="):
        _model(server, api_path="/api/v0/nothing").invoke("Hi")


def test_a_404_on_the_form_suggests_the_api(server: DynasparkTestServer) -> None:
    with pytest.raises(DynasparkNotFoundError, match="endpoint='api'") as caught:
        ChatDynaspark(base_url=server.url, endpoint="form", path="/moved").invoke("Hi")
    assert "path=" in str(caught.value)


def test_with_fallbacks_from_the_form_to_the_api(server: DynasparkTestServer) -> None:
    form = ChatDynaspark(
        base_url=server.url, endpoint="form", path="/moved", max_retries=0
    )
    model = form.with_fallbacks([form.model_copy(update={"endpoint": "api"})])
    assert model.invoke("Hi").content == "Echo: Hi"
    assert [r.method for r in server.requests] == ["GET"]


# --- warnings: once per model and parameter, at the caller's line ------------------


def _caught(action: Callable[[], object]) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [w for w in caught if "ignores" in str(w.message)]


def test_per_call_sampling_warns_once_at_the_callers_line(
    server: DynasparkTestServer,
) -> None:
    model = ChatDynaspark(base_url=server.url, endpoint="form")

    def twice() -> None:
        model.invoke("Hi", temperature=0.5)
        line = sys._getframe().f_lineno - 1
        model.invoke("Hi", temperature=0.5)
        twice.line = line  # type: ignore[attr-defined]

    [warning] = _caught(twice)
    assert warning.filename == __file__
    assert warning.lineno == twice.line  # type: ignore[attr-defined]
    assert "ignores temperature" in str(warning.message)
    # Another parameter warns once too; the model already warned about temperature.
    assert len(_caught(lambda: model.invoke("Hi", temperature=1, top_p=0.5))) == 1


def test_bind_and_batch_warn_once_at_the_callers_line(
    server: DynasparkTestServer,
) -> None:
    bound = ChatDynaspark(base_url=server.url, endpoint="form").bind(temperature=0.5)
    caught = _caught(lambda: bound.batch(["Hi"] * 20))
    assert len(caught) == 1
    assert caught[0].filename == __file__
    assert len(server.requests) == 20


async def test_ainvoke_and_astream_warn_at_the_callers_line(
    server: DynasparkTestServer,
) -> None:
    model = ChatDynaspark(base_url=server.url, endpoint="form")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await model.ainvoke("Hi", seed=1)
        [_ async for _ in model.astream("Hi", top_p=0.2)]
    relevant = [w for w in caught if "ignores" in str(w.message)]
    assert [w.filename for w in relevant] == [__file__, __file__]


def test_max_tokens_warns_on_the_api_too(server: DynasparkTestServer) -> None:
    model = _model(server)
    [warning] = _caught(lambda: model.invoke("Hi", max_tokens=5))
    assert "ignores max_tokens" in str(warning.message)
    assert "max_tokens" not in server.requests[0].fields
    assert _caught(lambda: _model(server, temperature=1.0)) == []


@pytest.mark.parametrize("method", ["stream", "astream"])
def test_leaving_a_stream_early_releases_the_connection(
    server: DynasparkTestServer, method: str
) -> None:
    server.script(Reply(events=["a"] * 40, event_delay=0.05))
    model = _model(server)
    if method == "stream":
        stream = model.stream("Hi")
        assert next(stream).content == "a"
        stream.close()
    else:

        async def first() -> str:
            chunks = model.astream("Hi")
            chunk = await anext(chunks)
            await chunks.aclose()
            return chunk.text

        assert asyncio.run(first()) == "a"
    record = server.streams[0]
    assert _eventually(lambda: record.disconnected)
    assert record.events < record.planned


def test_a_stream_reports_the_rate_limit_once(server: DynasparkTestServer) -> None:
    server.rate_limit = 10
    try:
        chunks = list(_model(server).stream("one two"))
    finally:
        server.rate_limit = None
    assert [c.text for c in chunks] == ["Echo: ", "one ", "two", ""]
    assert all("rate_limit" not in c.response_metadata for c in chunks[:-1])
    full = _sum(chunks)
    assert full.response_metadata["rate_limit"]["limit"] == 10
    assert full.response_metadata["rate_limit"]["remaining"] == 9


def test_a_stream_that_never_starts_times_out_and_is_retried(
    server: DynasparkTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "BACKOFF_BASE", 0.01)
    server.script(Reply(delay=2.0, text="late"), Reply(events=["on time"]))
    chunks = list(_model(server, timeout=0.3, max_retries=1).stream("Hi"))
    assert "".join(c.text for c in chunks) == "on time"
    assert len(server.requests) == 2
    server.script(Reply(delay=2.0, text="late"))
    with pytest.raises(DynasparkTimeoutError, match="did not answer within"):
        list(_model(server, timeout=0.3).stream("Hi"))
