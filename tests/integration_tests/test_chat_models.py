"""ChatDynaspark round trips through the local Dynaspark server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
)

from langchain_dynaspark import ChatDynaspark, __version__
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

HISTORY = [
    SystemMessage("You are terse."),
    HumanMessage("Hi"),
    AIMessage("Hello."),
    HumanMessage("What is 2 + 2?"),
]
RENDERED = (
    "System: You are terse.\n\nUser: Hi\n\nAssistant: Hello.\n\n"
    "User: What is 2 + 2?\n\nAssistant:"
)


@pytest.fixture
def model(server: DynasparkTestServer) -> ChatDynaspark:
    return ChatDynaspark(base_url=server.url, endpoint="form", max_retries=0)


def test_invoke_sends_the_form_and_returns_the_reply(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.script("4")
    result = model.invoke(HISTORY)
    assert isinstance(result, AIMessage)
    assert result.content == "4"
    assert result.response_metadata == {
        "model_name": "gemini-2.0-flash",
        "model_provider": "dynaspark",
        "finish_reason": "stop",
        "endpoint": "form",
    }
    assert result.usage_metadata is None
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/generate_response"
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.fields == {"user_input": RENDERED, "ai_model": "gemini-2.0-flash"}
    assert request.file is None
    assert request.headers["User-Agent"] == f"langchain-dynaspark/{__version__}"


async def test_ainvoke(server: DynasparkTestServer, model: ChatDynaspark) -> None:
    server.script("four")
    assert (await model.ainvoke(HISTORY)).content == "four"
    assert server.requests[0].fields["user_input"] == RENDERED


def test_custom_path_and_trailing_slash_base_url(server: DynasparkTestServer) -> None:
    with DynasparkTestServer(path="/v2/form") as moved:
        model = ChatDynaspark(
            base_url=moved.url + "/", endpoint="form", path="/v2/form"
        )
        assert model.invoke("hi").content == "Echo: hi"
        assert moved.requests[0].path == "/v2/form"


def test_per_call_model_override_reaches_the_form_and_metadata(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    result = model.invoke("hi", model="gemini-2.0-flash-lite")
    assert result.response_metadata["model_name"] == "gemini-2.0-flash-lite"
    assert server.requests[0].fields["ai_model"] == "gemini-2.0-flash-lite"
    assert model.invoke("hi").response_metadata["model_name"] == "gemini-2.0-flash"


def test_unknown_model_names_pass_through_unchanged(
    server: DynasparkTestServer,
) -> None:
    ChatDynaspark(base_url=server.url, endpoint="form", model="gemini-9-ultra").invoke(
        "hi"
    )
    assert server.requests[0].fields["ai_model"] == "gemini-9-ultra"


@pytest.mark.parametrize("method", ["invoke", "stream"])
def test_stop_sequences_cut_the_reply_client_side(
    server: DynasparkTestServer, method: str
) -> None:
    model = ChatDynaspark(base_url=server.url, stop=["\nUser:"])
    server.script("Paris.\nUser: and Rome?", "Rome. END here", "no stop here")

    def call(**kwargs: Any) -> AIMessage | AIMessageChunk:
        if method == "invoke":
            return model.invoke("Capital?", **kwargs)
        chunks = list(model.stream("Capital?", **kwargs))
        return sum(chunks[1:], chunks[0])

    first = call()
    assert first.content == "Paris."
    assert first.response_metadata["finish_reason"] == "stop_sequence"
    second = call(stop=["END", "here"])
    assert second.content == "Rome. "
    third = call()
    assert third.content == "no stop here"
    assert third.response_metadata["finish_reason"] == "stop"


def test_stream_yields_chunks_that_add_up_to_the_reply(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.script("A whole reply, in one piece.")
    chunks = list(model.stream(HISTORY))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chunks[-1].chunk_position == "last"
    full = sum(chunks[1:], chunks[0])
    assert full.content == "A whole reply, in one piece."
    assert full.response_metadata["model_provider"] == "dynaspark"


async def test_astream_yields_chunks_that_add_up_to_the_reply(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    server.script("Async reply.")
    chunks = [chunk async for chunk in model.astream(HISTORY)]
    assert "".join(chunk.text for chunk in chunks) == "Async reply."
    assert chunks[-1].chunk_position == "last"


class _Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_streaming_true_routes_invoke_through_stream(
    server: DynasparkTestServer,
) -> None:
    server.script("streamed")
    handler = _Tokens()
    model = ChatDynaspark(
        base_url=server.url, endpoint="form", streaming=True, callbacks=[handler]
    )
    assert model.invoke("hi").content == "streamed"
    assert handler.tokens == ["streamed"]


def test_batch_and_abatch(server: DynasparkTestServer, model: ChatDynaspark) -> None:
    results = model.batch(["one", "two", "three"])
    assert [r.content for r in results] == ["Echo: one", "Echo: two", "Echo: three"]
    results = asyncio.run(model.abatch(["four", "five"]))
    assert [r.content for r in results] == ["Echo: four", "Echo: five"]
    assert len(server.requests) == 5


def test_unicode_survives_both_ways(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    prompt = "Ünïcödé ✓ 你好 🚀 «quotes» & ampersands = equals + plus %20"
    reply = "Réponse: 你好 🚀 — ✓ \u200b\n\ttabs"
    server.script(reply)
    assert model.invoke(prompt).content == reply
    assert server.requests[0].fields["user_input"] == prompt


def test_a_100_kb_prompt_survives(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    prompt = ("Lorem ipsum ✓ dolor sit amet. " * 4000)[:100_000]
    assert model.invoke(prompt).content == f"Echo: {prompt}"
    assert server.requests[0].fields["user_input"] == prompt


def test_sync_invoke_inside_a_running_event_loop(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    """What a notebook cell does: call the sync API while a loop is running."""

    async def notebook_cell() -> tuple[str, list[str]]:
        reply = model.invoke("from a cell").text
        streamed = [chunk.text for chunk in model.stream("streamed from a cell")]
        return reply, streamed

    reply, streamed = asyncio.run(notebook_cell())
    assert reply == "Echo: from a cell"
    assert streamed == ["Echo: streamed from a cell"]


def test_many_event_loops_and_sync_calls_leave_no_unclosed_sessions(
    server: DynasparkTestServer,
) -> None:
    script = f"""
import asyncio, gc
from langchain_dynaspark import ChatDynaspark
model = ChatDynaspark(base_url={server.url!r})
for i in range(5):
    assert asyncio.run(model.ainvoke(f"a{{i}}")).text == f"Echo: a{{i}}"
    assert model.invoke(f"s{{i}}").text == f"Echo: s{{i}}"
async def cell():
    return model.invoke("inside"), await model.ainvoke("inside async")
asyncio.run(cell())
gc.collect()
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "Unclosed" not in done.stderr
    assert "Traceback" not in done.stderr


def test_command_line_one_shot(server: DynasparkTestServer) -> None:
    server.script("Bonjour !", Reply(text="streamed answer"))
    base = [
        sys.executable,
        "-m",
        "langchain_dynaspark",
        "--base-url",
        server.url,
        "--endpoint",
        "form",
    ]
    done = subprocess.run(
        [*base, "--model", "gemini-2.0-flash", "Say hi in French"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "Bonjour !\n"
    assert server.requests[0].fields == {
        "user_input": "Say hi in French",
        "ai_model": "gemini-2.0-flash",
    }
    done = subprocess.run(
        [*base, "--stream", "Stream please"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "streamed answer\n"


def test_command_line_reports_errors_without_a_traceback(
    server: DynasparkTestServer,
) -> None:
    server.script(*[Reply(status=400, body={"error": "bad model"})])
    done = subprocess.run(
        [sys.executable, "-m", "langchain_dynaspark", "--base-url", server.url, "hi"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: Dynaspark rejected the request with HTTP 400")
    assert "bad model" in done.stderr
    assert "Traceback" not in done.stderr
