"""A reply (and the tool calls read from it) -> LangChain messages. Pure.

The same reply gives the same message however it is observed: `invoke` returns
`reply_message`'s `AIMessage`; a stream that could not be token by token, and
`invoke` with a streaming listener, give it as `last_chunk`, the one and last
chunk of a stream; the API's events give `event_chunk`s and `final_chunk`.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.json import parse_partial_json

from langchain_dynaspark.emulation.tool_calls import ParsedReply
from langchain_dynaspark.reply import Reply

__all__ = [
    "API_DEFAULT_MODEL",
    "content_of",
    "final_chunk",
    "last_chunk",
    "metadata",
    "reply_message",
    "result",
    "text_chunk",
]

API_DEFAULT_MODEL = "default"
"""`model_name` when the request named no model and the service said none."""


def metadata(
    endpoint: str, model: str | None, reply: Reply, finish_reason: str
) -> dict[str, Any]:
    """`response_metadata` of a reply from the surface called `endpoint`.

    `model` is the model the request named, if any.
    """
    data: dict[str, Any] = {
        "model_name": reply.model or model or API_DEFAULT_MODEL,
        "model_provider": "dynaspark",
        "finish_reason": finish_reason,
        "endpoint": endpoint,
    }
    if reply.rate_limit:
        data["rate_limit"] = dict(reply.rate_limit)
    if reply.source_url:
        data["image_url"] = reply.source_url
    return data


def reply_message(
    endpoint: str, model: str | None, reply: Reply, parsed: ParsedReply, *, cut: bool
) -> AIMessage:
    """The `AIMessage` of a whole reply, read into prose and tool calls.

    `cut` says whether a stop sequence cut the reply.
    """
    finish_reason = (
        "tool_calls"
        if parsed.tool_calls
        else "stop_sequence"
        if cut
        else reply.finish_reason or "stop"
    )
    return AIMessage(
        content=content_of(parsed.content, reply),
        tool_calls=parsed.tool_calls,
        invalid_tool_calls=parsed.invalid_tool_calls,
        usage_metadata=reply.usage,
        response_metadata=metadata(endpoint, model, reply, finish_reason),
    )


def content_of(text: str, reply: Reply) -> str | list[str | dict[str, Any]]:
    """A message's content: its `text`, then the reply's blocks, if it has any."""
    if not reply.blocks:
        return text
    prose = [{"type": "text", "text": text}] if text else []
    return [*prose, *reply.blocks]


def result(message: AIMessage) -> ChatResult:
    """A `ChatResult` of one message."""
    return ChatResult(generations=[ChatGeneration(message=message)])


def text_chunk(text: str) -> ChatGenerationChunk:
    """A streamed piece of text."""
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


def final_chunk(
    endpoint: str, model: str | None, reply: Reply, finish_reason: str
) -> ChatGenerationChunk:
    """The last chunk of a stream: its last text, usage and metadata."""
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=content_of(reply.text, reply),
            usage_metadata=reply.usage,
            response_metadata=metadata(endpoint, model, reply, finish_reason),
            chunk_position="last",
        )
    )


def last_chunk(message: AIMessage, id_: str | None = None) -> ChatGenerationChunk:
    """The whole reply as the one and last chunk of a stream.

    The chunk is the message: same content, `tool_calls`, `invalid_tool_calls`
    (with their errors) and metadata. Tool calls also travel as
    `tool_call_chunks`, as consumers of streams expect. Adding this chunk to
    others re-derives calls from `tool_call_chunks` alone, which only keeps an
    invalid call whose arguments are not a JSON object, so only such invalid
    calls get a chunk (a call to a tool that was not offered would come back
    valid). `invoke` never adds chunks up (see `ChatDynaspark._should_stream`).
    """
    pieces: list[tuple[str | None, str | None, str | None]] = [
        (call["name"], json.dumps(call["args"], ensure_ascii=False), call["id"])
        for call in message.tool_calls
    ]
    pieces.extend(
        (call["name"], call["args"], call["id"])
        for call in message.invalid_tool_calls
        if not _is_json_object(call["args"])
    )
    chunk = AIMessageChunk(
        content=message.content,
        id=id_ or message.id,
        response_metadata=message.response_metadata,
        tool_call_chunks=[
            tool_call_chunk(name=name, args=args, id=call_id, index=index)
            for index, (name, args, call_id) in enumerate(pieces)
        ],
        chunk_position="last",
    )
    chunk.invalid_tool_calls = list(message.invalid_tool_calls)
    return ChatGenerationChunk(message=chunk)


def _is_json_object(args: str | None) -> bool:
    """Whether core would read `args` of a tool call chunk as a JSON object."""
    if not args:
        return True
    try:
        return isinstance(parse_partial_json(args), dict)
    except ValueError:
        return False
