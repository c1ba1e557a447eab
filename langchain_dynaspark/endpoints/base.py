"""What every surface of the service is to the rest of the package.

A surface (the web form, the documented text API, ...) is one module under
`langchain_dynaspark/endpoints/` holding one `Endpoint`: what the surface can
carry (`Capabilities`), how a checked `Call` becomes its `Request` (pure: it
fails before anything is sent when the surface cannot carry the call), and how
that request is sent and its answer read into a `Reply` (whole, or as the
pieces of a stream). Each surface renders the conversation itself (with
`langchain_dynaspark.prompt`), as it carries it: the form in one prompt, the
API with its leading system messages apart. The model class and the pipeline
speak only this protocol, so adding a surface means adding a module and
registering it in `langchain_dynaspark.endpoints`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

from langchain_dynaspark.prompt import Prompt
from langchain_dynaspark.reply import Reply
from langchain_dynaspark.transport import TransportSettings

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "PROMPT_FIELD",
    "Call",
    "Capabilities",
    "Endpoint",
    "Request",
    "surface_transport",
]

PROMPT_FIELD = "user_input"
"""The field that carries the prompt on every text surface: errors never
quote its value."""


@dataclass(frozen=True)
class Capabilities:
    """What a surface can carry.

    Attributes:
        images: Image input.
        sampling: Sampling parameters (`temperature`, `top_p`, penalties, `seed`).
        streaming: A reply token by token, as server-sent events.
        output: What a reply holds: `"text"` (which tool calls and structured
            output are read from), an `"image"` or `"audio"`.
    """

    images: bool = False
    sampling: bool = False
    streaming: bool = False
    output: Literal["text", "image", "audio"] = "text"


@dataclass(frozen=True)
class Call:
    """One call, checked, in terms that every surface understands.

    Attributes:
        model: The model the user chose (per call, or the field set by hand);
            `None` leaves the choice to the surface's default.
        messages: The conversation.
        instructions: The tool or format instructions to put at the top of the
            prompt, if any.
        sampling: The sampling parameters to send, by name.
        json_mode: Whether the reply must be a JSON object.
        stream: Whether the reply is wanted event by event.
    """

    model: str | None
    messages: Sequence[BaseMessage]
    instructions: str | None = None
    sampling: Mapping[str, float | int] = field(default_factory=dict)
    json_mode: bool = False
    stream: bool = False


@dataclass(frozen=True)
class Request:
    """A call as one surface sends it.

    Attributes:
        model: The model named in the request (`None`: the service's default).
        prompt: The prompt sent (text and images).
        fields: The form fields or query parameters, as sent.
        stream: Whether the answer is asked for as server-sent events.
    """

    model: str | None
    prompt: Prompt
    fields: Mapping[str, str]
    stream: bool = False


class Endpoint(Protocol):
    """One surface of the service, configured for one model's settings."""

    @property
    def name(self) -> str:
        """The surface's name, as `ChatDynaspark(endpoint=...)` takes it."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the surface can carry."""
        ...

    @property
    def transport(self) -> TransportSettings:
        """Where and how this surface's requests are sent."""
        ...

    @property
    def default_model(self) -> str | None:
        """The model named when the user chose none (`None`: the service's)."""
        ...

    def request(self, call: Call) -> Request:
        """The call as this surface sends it; nothing is sent.

        Raises:
            DynasparkInputError: If this surface cannot carry the call.
        """
        ...

    async def send(self, request: Request) -> Reply:
        """Send the request; return the whole reply."""
        ...

    def events(self, request: Request) -> AsyncGenerator[Reply, None]:
        """Send the request; yield the reply's pieces as they arrive.

        A surface that answers in one piece yields one piece. Close the
        generator when done with it: closing it early releases the connection.
        """
        ...


@functools.lru_cache(maxsize=64)
def surface_transport(
    common: TransportSettings, url: str, not_found_hint: str, moved_hint: str
) -> TransportSettings:
    """The `common` settings for one surface: its URL, what a 404 and a redirect tell.

    Built once per set of values: a call derives them from the model's fields,
    which are the same call after call.
    """
    return replace(
        common, url=url, not_found_hint=not_found_hint, moved_hint=moved_hint
    )
