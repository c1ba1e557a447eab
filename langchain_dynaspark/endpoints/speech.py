"""Spoken replies: the text API's `openai-audio` model, answering in MP3.

`GET {base_url}{api_path}` with `model=openai-audio` and a `voice` answers the
prompt as speech: the body is MP3 bytes (`audio/*`), not JSON. The reply holds
them as one standard audio block. Anything else (JSON, an `{"error"}`, an HTML
page, an empty body) is a typed error, never content. The query, its limits,
rate limits and retries are those of the text API.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from langchain_dynaspark.endpoints.api import (
    MOVED_HINT,
    PUBLIC_API_KEY,
    build_query,
    check_request_line,
    get_read,
    split_system,
)
from langchain_dynaspark.endpoints.api_reply import rate_limit
from langchain_dynaspark.endpoints.base import (
    Call,
    Capabilities,
    Request,
    surface_transport,
)
from langchain_dynaspark.errors import DynasparkResponseError
from langchain_dynaspark.media import (
    SPEECH_MODEL,
    MediaFields,
    audio_block,
    audio_mime,
    check_call,
    check_fields,
)
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.reply import Reply, server_message
from langchain_dynaspark.transport import Answer, TransportSettings

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["CAPABILITIES", "NOT_FOUND_HINT", "SpeechEndpoint", "speech_audio"]

NOT_FOUND_HINT = (
    "The API path may have moved: set `api_path=` (or `base_url=`) to where the "
    "service answers now."
)

CAPABILITIES = Capabilities(sampling=True, output="audio")


class SpeechFields(MediaFields, Protocol):
    """The model settings spoken replies read."""

    base_url: str
    api_path: str
    api_key: SecretStr | None
    private: bool
    max_request_line: int


@dataclass(frozen=True)
class SpeechEndpoint:
    """Spoken replies, for one model's settings.

    Attributes:
        transport: Where the API is and how hard to try.
        default_model: `openai-audio`.
        voice: The voice that speaks.
        private: Whether generations are kept out of the public feed.
        api_key: The key sent (the free key when the user gave none).
        max_request_line: Longest request line sent, in bytes.
    """

    transport: TransportSettings
    default_model: str
    voice: str
    private: bool
    api_key: str
    max_request_line: int
    name = "speech"
    capabilities = CAPABILITIES

    @classmethod
    def configure(
        cls, fields: SpeechFields, common: TransportSettings
    ) -> SpeechEndpoint:
        """Spoken replies for a model's `fields`, with the `common` settings.

        Raises:
            DynasparkInputError: If a setting does not fit the model.
        """
        check_fields(fields)
        key = fields.api_key.get_secret_value() if fields.api_key else ""
        url = fields.base_url.rstrip("/") + fields.api_path
        return _configured(
            surface_transport(common, url, NOT_FOUND_HINT, MOVED_HINT),
            SPEECH_MODEL,
            fields.voice,
            fields.private,
            key or PUBLIC_API_KEY,
            fields.max_request_line,
        )

    def request(self, call: Call) -> Request:
        """The call as the text API's query, with the model and the voice.

        Raises:
            DynasparkInputError: If the call names another model, holds
                images, binds tools or asks for structured output, or if its
                request line would be too long.
        """
        system, rest = split_system(call.messages)
        prompt = build_prompt(rest)
        model = call.model or self.default_model
        check_call(
            "speech",
            model=model,
            images=len(prompt.images),
            sampling=call.sampling,
        )
        query = build_query(
            user_input=prompt.text,
            system=system,
            model=model,
            sampling=call.sampling,
            private=self.private,
            api_key=self.api_key,
        )
        query["voice"] = self.voice
        check_request_line(
            self.transport.url, query, self.max_request_line, elsewhere=""
        )
        return Request(model, prompt, query)

    async def send(self, request: Request) -> Reply:
        """Send the request; the reply holds the speech.

        Raises:
            DynasparkError: A typed subclass for each failure; see `errors`.
        """
        answer, (data, mime_type) = await get_read(
            self.transport, request.fields, speech_audio
        )
        return Reply(
            model=request.model,
            rate_limit=rate_limit(answer.headers),
            done=True,
            blocks=(audio_block(data, mime_type),),
        )

    async def events(self, request: Request) -> AsyncGenerator[Reply, None]:
        """The speech, as the one piece of a stream."""
        yield await self.send(request)


_configured = functools.lru_cache(maxsize=32)(SpeechEndpoint)
"""`SpeechEndpoint`, built once per set of values (positional, in field order)."""


def speech_audio(answer: Answer, *, prompt: str | None = None) -> tuple[bytes, str]:
    """The audio of a `200` answer, and its MIME type (read from the bytes).

    Raises:
        DynasparkResponseError: If the body is not MP3 audio: empty, JSON (an
            error or a text reply), an HTML page or anything else.
    """
    body = answer.body
    mime_type = audio_mime(body)
    if mime_type is not None:
        return body, mime_type
    said = server_message(body, prompt=prompt)
    if not body.strip():
        what = "an empty body"
    elif said is not None and body.lstrip()[:1] == b"{" and b'"error"' in body:
        what = f"an error ({said})"
    else:
        what = f"a {answer.content_type or 'typeless'} body that is not MP3 audio"
    msg = (
        f"Dynaspark answered a spoken-reply request with {what}, not speech. "
        "Retry later; if this persists, the service may have stopped speaking."
    )
    raise DynasparkResponseError(msg, status_code=200, server_message=said)
