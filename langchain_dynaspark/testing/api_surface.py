"""The text API surface: `GET {api_path}`, answered as JSON or as events.

`model=openai-audio` asks for a spoken reply instead: the reply text is handed to
`speech_surface`, which answers MP3 bytes.

A JSON answer, or with `stream=true` server-sent events in the style the reply
asks for, each after the admission checks: the request line's length (`414`),
the rate-limit window (`429`, and `X-RateLimit-*` headers on every answer) and
the requests answered at once (`max_concurrent`: a `429` with `Retry-After`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from langchain_dynaspark.testing.admission import Admitted, answered
from langchain_dynaspark.testing.recording import RecordedStream
from langchain_dynaspark.testing.rules import Reply
from langchain_dynaspark.testing.speech_surface import SPEECH_MODEL, spoken
from langchain_dynaspark.testing.surface import (
    ServiceState,
    missing_input,
    raw_response,
)

__all__ = [
    "DEFAULT_API_MODEL",
    "DEFAULT_API_PATH",
    "DEFAULT_MAX_REQUEST_LINE",
    "ApiSurface",
]

DEFAULT_API_PATH = "/api/generate_response"
DEFAULT_API_MODEL = "local-echo"
"""The model the API stand-in says it used when the request names none."""
DEFAULT_MAX_REQUEST_LINE = 4094
"""gunicorn's default limit on the request line, in bytes."""
_PIECES = re.compile(r"\s*\S+\s*|\s+")


class ApiSurface:
    """The text API at `path`, with the limits `state` sets."""

    def __init__(self, state: ServiceState, path: str = DEFAULT_API_PATH) -> None:
        self.state = state
        self.path = path

    def routes(self) -> list[web.RouteDef]:
        """`GET {path}`."""
        return [web.get(self.path, self.api)]

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Answer one API request: JSON, or events with `stream=true`."""
        return await answered(self.state, request, "api", self._answer)

    async def _answer(
        self, request: web.Request, checked: Admitted
    ) -> web.StreamResponse:
        """Answer an admitted API request."""
        query, reply, headers = checked.query, checked.reply, checked.headers
        if reply is not None and reply.echo_target:
            target = f"{request.method} {request.raw_path}"
            reply = replace(reply, body={"error": f"cannot serve {target}"})
        if reply is not None and (reply.status != 200 or _no_text(reply)):
            return raw_response(replace(reply, headers=headers))
        if not query.get("user_input"):
            return missing_input()
        text = (
            self.state.answer(query["user_input"], None)
            if reply is None
            else _text_of(reply)
        )
        if query.get("model") == SPEECH_MODEL:
            return spoken(query, text, headers)
        return await self._text(request, reply, query, text, headers)

    async def _text(
        self,
        request: web.Request,
        reply: Reply | None,
        query: Mapping[str, str],
        text: str,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        """The reply `text` as JSON, or as events with `stream=true`."""
        model = (reply.model if reply else None) or query.get("model")
        model = model or DEFAULT_API_MODEL
        usage = _usage(query, text) if reply is None or reply.usage else None
        if query.get("stream") == "true":
            return await self._stream(
                request, reply, text=text, model=model, usage=usage, headers=headers
            )
        body: dict[str, Any] = {"response": text, "model": model}
        if usage is not None:
            body["usage"] = usage
        return web.json_response(body, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        reply: Reply | None,
        *,
        text: str,
        model: str,
        usage: dict[str, int] | None,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        reply = reply or Reply()
        pieces = (
            list(reply.raw)
            if reply.raw is not None
            else _sse_events(reply, text, model, usage)
        )
        record = RecordedStream(planned=len(pieces))
        self.state.streams.append(record)
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "text/event-stream"}
        )
        delay = (
            self.state.event_delay if reply.event_delay is None else reply.event_delay
        )
        try:
            await response.prepare(request)
            for index, piece in enumerate(pieces):
                if reply.drop_after is not None and index >= reply.drop_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if index and delay:
                    await asyncio.sleep(delay)
                if not index:
                    record.first_write_at = time.time()
                await response.write(
                    piece.encode() if isinstance(piece, str) else piece
                )
                record.events += 1
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            record.disconnected = True
        return response


def _no_text(reply: Reply) -> bool:
    """Whether a scripted reply is a raw body rather than a reply text."""
    return reply.text is None and reply.events is None and reply.raw is None


def _text_of(reply: Reply) -> str:
    if reply.text is not None:
        return reply.text
    return "".join(reply.events or ())


def _usage(query: Mapping[str, str], text: str) -> dict[str, int]:
    """Token counts as the stand-in counts them: words."""
    prompt = len(query.get("system", "").split()) + len(query["user_input"].split())
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse_events(
    reply: Reply, text: str, model: str, usage: dict[str, int] | None
) -> list[str]:
    """The events of a streamed reply, each a complete `data:` event."""
    texts = list(reply.events) if reply.events is not None else _PIECES.findall(text)
    if reply.sse == "text":
        return [_data(piece) for piece in texts]
    if reply.sse == "response":
        last: dict[str, Any] = {"response": "", "model": model}
        if usage is not None:
            last["usage"] = usage
        return [
            *(_data(json.dumps({"response": piece})) for piece in texts),
            _data(json.dumps(last)),
            _data("[DONE]"),
        ]
    chunks = [
        {
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            ],
        }
        for piece in texts
    ]
    final: dict[str, Any] = {
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    if usage is not None:
        final["usage"] = usage
    return [*(_data(json.dumps(chunk)) for chunk in [*chunks, final]), _data("[DONE]")]


def _data(text: str) -> str:
    """One SSE event carrying `text`, one `data:` line per line of it."""
    return "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"
