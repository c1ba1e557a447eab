"""The floor: what no wrapper can avoid, for `ChatDynaspark` to be measured against.

A bare aiohttp session sending the same request and JSON-decoding the reply
(the floor's HTTP part), plus a do-nothing `BaseChatModel` that answers without
I/O (LangChain's own machinery, through the same method: `ainvoke`, `astream`
or `invoke`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import harness
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

FORM_PATH = "/generate_response"
API_PATH = "/api/generate_response"


class DoNothingChatModel(BaseChatModel):
    """LangChain's own cost: a chat model that answers at once, without I/O."""

    reply: str = "Pack layers, a light rain jacket and comfortable shoes."

    @property
    def _llm_type(self) -> str:
        return "do-nothing"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk(self.reply, chunk_position="last")
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk(self.reply, chunk_position="last")
        )


class DoNothingStreamingModel(BaseChatModel):
    """LangChain's own per-chunk cost: `chunks` chunks at once, without I/O."""

    chunks: int = harness.STREAM_EVENTS

    @property
    def _llm_type(self) -> str:
        return "do-nothing-streaming"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk("word "))
        yield ChatGenerationChunk(message=AIMessageChunk("", chunk_position="last"))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk("word "))
        yield ChatGenerationChunk(message=AIMessageChunk("", chunk_position="last"))


class BareApiClient:
    """The floor's HTTP part on the API: a GET, the JSON reply or an SSE reader."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + API_PATH
        self.session = aiohttp.ClientSession()

    async def get(self, query: dict[str, str]) -> str:
        async with self.session.get(self.url, params=query) as response:
            return json.loads(await response.read())["response"]

    async def stream(self, prompt: str, first: list[float] | None = None) -> int:
        """Read the events line by line; note when the first text arrived."""
        query = {"user_input": prompt, "private": "true", "stream": "true"}
        events = 0
        async with self.session.get(self.url, params=query) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                text = json.loads(data)["choices"][0]["delta"].get("content")
                if text and first is not None and not first:
                    first.append(time.time())
                events += 1
        return events

    async def close(self) -> None:
        await self.session.close()


class BareClient:
    """The floor's HTTP part: one aiohttp session, the form, the JSON reply."""

    def __init__(self, base_url: str, fields: Mapping[str, str]) -> None:
        self.url = base_url + FORM_PATH
        self.fields = fields
        self.session = aiohttp.ClientSession()

    async def post(self) -> str:
        async with self.session.post(
            self.url,
            data=urlencode(self.fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            return json.loads(await response.read())["response"]

    async def close(self) -> None:
        await self.session.close()
