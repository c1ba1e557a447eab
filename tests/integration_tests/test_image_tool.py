"""`DynasparkImageGenerationTool`, called directly and by an agent."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from PIL import Image

from langchain_dynaspark import ChatDynaspark, DynasparkImageGenerationTool
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply


def tool_for(server: DynasparkTestServer, **kwargs: object) -> BaseTool:
    chat = ChatDynaspark(base_url=server.url, max_retries=0, timeout=30)
    return DynasparkImageGenerationTool(chat_model=chat, **kwargs)


def call(tool: BaseTool, **args: object) -> dict[str, object]:
    return {"type": "tool_call", "id": "call_1", "name": tool.name, "args": args}


def size_of(block: dict[str, object]) -> tuple[int, int]:
    data = base64.b64decode(str(block["base64"]))
    return Image.open(io.BytesIO(data)).size


def test_the_tool_gives_text_for_the_model_and_the_image_as_artifact(
    server: DynasparkTestServer,
) -> None:
    tool = tool_for(server)

    message = tool.invoke(call(tool, prompt="a red cat", width=128, height=96, seed=4))

    assert isinstance(message, ToolMessage)
    assert message.artifact["type"] == "image"
    assert message.artifact["mime_type"] == "image/png"
    assert size_of(message.artifact) == (128, 96)
    [query] = [r.fields for r in server.requests]
    url = str(message.content).rsplit(" ", 1)[-1]
    assert url.startswith(server.url + "/generated/")
    assert message.content == f"Drew 'a red cat' with flux, 128x96: {url}"
    assert query["seed"] == "4"
    assert query["user_input"] == "a red cat"


def test_the_tool_is_async_native_and_takes_the_model_argument(
    server: DynasparkTestServer,
) -> None:
    tool = tool_for(server, nologo=True)

    message = asyncio.run(tool.ainvoke(call(tool, prompt="a dog", model="turbo")))

    assert message.artifact["mime_type"] == "image/jpeg"
    assert "with turbo, 768x768" in message.content
    [query] = [r.fields for r in server.requests]
    assert query["model"] == "turbo"
    assert query["nologo"] == "true"


def test_the_tool_sends_with_its_chat_models_settings(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(status=503))
    chat = ChatDynaspark(base_url=server.url, max_retries=1, api_key="shared-key")
    tool = DynasparkImageGenerationTool(chat_model=chat)

    message = tool.invoke(call(tool, prompt="a red cat", width=64, height=64))

    assert size_of(message.artifact) == (64, 64)
    assert len(server.requests) == 2
    assert {r.fields["api_key"] for r in server.requests} == {"shared-key"}


def test_the_tool_schema_bounds_sizes_and_models(server: DynasparkTestServer) -> None:
    tool = tool_for(server)
    schema = tool.tool_call_schema.model_json_schema()

    assert set(schema["properties"]) == {"prompt", "width", "height", "model", "seed"}
    assert schema["required"] == ["prompt"]
    with pytest.raises(ValueError, match="less than or equal to 2048"):
        tool.invoke({"prompt": "a red cat", "width": 4096})
    with pytest.raises(ValueError, match="model"):
        tool.invoke({"prompt": "a red cat", "model": "dall-e"})
    assert server.requests == []


def test_an_agent_calls_the_tool_and_gets_the_image_as_artifact(
    server: DynasparkTestServer,
) -> None:
    chat = ChatDynaspark(base_url=server.url, max_retries=0)
    tool = DynasparkImageGenerationTool(chat_model=chat)
    server.script(
        '{"tool_calls": [{"name": "dynaspark_image_generation", '
        '"arguments": {"prompt": "a red cat", "width": 200, "height": 100}}]}',
    )
    agent = create_agent(chat, tools=[tool])

    state = agent.invoke({"messages": [("human", "Draw me a red cat, please.")]})

    messages = state["messages"]
    [asked] = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    assert asked.tool_calls[0]["name"] == tool.name
    [result] = [m for m in messages if isinstance(m, ToolMessage)]
    assert result.status == "success"
    assert result.artifact["type"] == "image"
    assert size_of(result.artifact) == (200, 100)
    assert "Drew 'a red cat' with flux, 200x100" in str(result.content)
    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    sent = [r.fields["user_input"] for r in server.requests]
    assert "a red cat" in sent
    # The model read the tool's text (and the URL), never the image's bytes.
    assert str(result.content) in sent[-1]
    assert result.artifact["base64"] not in sent[-1]
