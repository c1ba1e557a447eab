"""The Dynaspark web form: one prompt (and at most one image) in, one reply out.

`POST {base_url}/generate_response` with the form fields `user_input` and
`ai_model`, and a `file` when the conversation holds images; the answer is
`{"response": "<text>"}`. The form has no sampling parameters, no token usage
and no streaming: a stream is the whole reply as one piece.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from langchain_dynaspark.endpoints.base import (
    Call,
    Capabilities,
    Request,
    surface_transport,
)
from langchain_dynaspark.images import ImageLimits, prepare_upload
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.reply import Reply, reply_text
from langchain_dynaspark.transport import TransportSettings, post_form

__all__ = [
    "CAPABILITIES",
    "DEFAULT_PATH",
    "MOVED_HINT",
    "NOT_FOUND_HINT",
    "FormEndpoint",
]

DEFAULT_PATH = "/generate_response"
NOT_FOUND_HINT = (
    "The form path may have moved: set `path=` (or `base_url=`) to where the "
    "service answers now. For text-only work, the documented API is another "
    "way in: `ChatDynaspark(endpoint='api')`."
)
MOVED_HINT = "set `base_url` (and `path`) to the new location."
CAPABILITIES = Capabilities(images=True)


class FormFields(Protocol):
    """The model settings the form reads."""

    base_url: str
    path: str
    model: str
    max_image_side: int
    max_image_bytes: int
    max_image_pixels: int
    max_image_download_bytes: int
    strip_image_metadata: bool


@dataclass(frozen=True)
class FormEndpoint:
    """The web form, for one model's settings.

    Attributes:
        transport: Where the form is and how hard to try.
        default_model: The model named when the call chose none.
        limits: How large an uploaded image may be.
    """

    transport: TransportSettings
    default_model: str
    limits: ImageLimits
    name = "form"
    capabilities = CAPABILITIES

    @classmethod
    def configure(cls, fields: FormFields, common: TransportSettings) -> FormEndpoint:
        """The form for a model's `fields`, sending with the `common` settings."""
        url = fields.base_url.rstrip("/") + fields.path
        return _configured(
            surface_transport(common, url, NOT_FOUND_HINT, MOVED_HINT),
            fields.model,
            _limits_of(
                fields.max_image_side,
                fields.max_image_bytes,
                fields.max_image_pixels,
                fields.max_image_download_bytes,
                fields.strip_image_metadata,
            ),
        )

    def request(self, call: Call) -> Request:
        """The whole conversation as one prompt, with its images."""
        prompt = build_prompt(call.messages, instructions=call.instructions)
        model = call.model or self.default_model
        return Request(model, prompt, {"user_input": prompt.text, "ai_model": model})

    async def send(self, request: Request) -> Reply:
        """Post the prompt (and its images, composed into one upload).

        Raises:
            DynasparkError: A typed subclass for each failure; see `errors`.
        """
        prompt = request.prompt
        upload = (
            await prepare_upload(
                prompt.images, limits=self.limits, settings=self.transport
            )
            if prompt.images
            else None
        )
        body = await post_form(self.transport, request.fields, upload)
        return Reply(reply_text(body, prompt=prompt.text), done=True)

    async def events(self, request: Request) -> AsyncGenerator[Reply, None]:
        """The whole reply, as the one piece of a stream."""
        yield await self.send(request)


_limits_of = functools.lru_cache(maxsize=32)(ImageLimits)


_configured = functools.lru_cache(maxsize=32)(FormEndpoint)
"""`FormEndpoint`, built once per set of values (positional, in field order)."""
