"""The documented Dynaspark API: its query, its reply and its streamed events.

`GET {base_url}/api/generate_response` takes the prompt and its settings as
query parameters (`user_input`, `system`, `model`, sampling parameters, `json`,
`stream`, `private`, `seed`, `api_key`) and answers
`{"response", "model", "usage"}`, a `text/plain` reply, or, with
`stream=true`, server-sent events. The event format is not documented, so
three styles are accepted, in any mix: OpenAI-style chunks
(`{"choices": [{"delta": {"content": ...}}]}`), `{"response": ...}` objects and
plain text. `data: [DONE]` ends the stream; `usage`, `model` and
`finish_reason` are read from any event. Rate-limit headers
(`X-RateLimit-Limit`, `-Remaining`, `-Reset`) are read from every answer
(finite numbers only). How
answers and events are read is in `api_reply`.

A stream keeps the promises of a whole reply (`_Events`): events without text
(keep-alive pings, `{}`, named events other than `error`) are skipped; a
JSON-style event that is not valid JSON is an error, never text; no event may
exceed `MAX_EVENT_CHARS`; and a stream is a reply only if it is complete: it
ends at an event's end, and, once it has sent JSON objects, with `[DONE]` or a
`finish_reason`, as OpenAI-style streams do. One that ends early raises
`DynasparkConnectionError` (retried while nothing of it has been delivered);
one without any event raises `DynasparkResponseError`, as `invoke` does on
that body.

Everything here is pure except `ApiEndpoint.send` and `ApiEndpoint.events`,
which go through `transport`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from langchain_core.messages import BaseMessage, SystemMessage
from yarl import URL

from langchain_dynaspark.endpoints.api_reply import (
    event_reply,
    parse_reply,
    rate_limit,
    read_event,
    usage_metadata,
)
from langchain_dynaspark.endpoints.base import (
    Call,
    Capabilities,
    Request,
    surface_transport,
)
from langchain_dynaspark.errors import (
    DynasparkConnectionError,
    DynasparkInputError,
    DynasparkResponseError,
    DynasparkResponseTooLargeError,
)
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.reply import Reply
from langchain_dynaspark.sse import EventTooLongError, ServerSentEvent, SSEDecoder
from langchain_dynaspark.transport import (
    Answer,
    TransportSettings,
    check_encodable,
    conceal,
    get,
    stream_get,
)

if TYPE_CHECKING:
    from types import TracebackType

    from pydantic import SecretStr

__all__ = [
    "CAPABILITIES",
    "DEFAULT_API_PATH",
    "DEFAULT_MAX_REQUEST_LINE",
    "MAX_EVENT_CHARS",
    "MOVED_HINT",
    "NOT_FOUND_HINT",
    "PUBLIC_API_KEY",
    "ApiEndpoint",
    "build_query",
    "check_request_line",
    "event_reply",
    "get_read",
    "parse_reply",
    "rate_limit",
    "split_system",
    "usage_metadata",
]

DEFAULT_API_PATH = "/api/generate_response"
DEFAULT_MAX_REQUEST_LINE = 4094
"""gunicorn's default limit on the request line, the lowest of common servers."""
NOT_FOUND_HINT = (
    "The API path may have moved: set `api_path=` (or `base_url=`) to where the "
    "service answers now, or use `endpoint='form'`."
)
MOVED_HINT = (
    "set `base_url` (and `api_path`) to the new location (an `http://` address "
    "that redirects usually wants `https://`)."
)
PUBLIC_API_KEY = "TH3_API_KEY"
"""The service's shared free key, which its official client sends when the user
gives none."""
CAPABILITIES = Capabilities(sampling=True, streaming=True)

MAX_EVENT_CHARS = 1 << 20
"""Most characters one streamed event may hold: a piece of a reply, not a reply."""


T_co = TypeVar("T_co", covariant=True)


class Reading(Protocol[T_co]):
    """Reads a `200` answer; an error it raises may quote the `prompt` sent."""

    def __call__(self, answer: Answer, /, *, prompt: str | None) -> T_co:
        """What the answer holds."""
        ...


class ApiFields(Protocol):
    """The model settings the API reads."""

    base_url: str
    api_path: str
    api_key: SecretStr | None
    private: bool
    max_request_line: int
    model: str
    model_fields_set: set[str]


@dataclass(frozen=True)
class ApiEndpoint:
    """The documented text API, for one model's settings.

    Attributes:
        transport: Where the API is and how hard to try.
        default_model: The model named when the call chose none: the one the
            user set on the model, else `None` (the service's default).
        private: Whether generations are kept out of the public feed.
        api_key: The key sent with every request: the user's, else the
            service's public free key.
        max_request_line: Longest request line sent, in bytes.
    """

    transport: TransportSettings
    default_model: str | None
    private: bool
    api_key: str
    max_request_line: int
    name = "api"
    capabilities = CAPABILITIES

    @classmethod
    def configure(cls, fields: ApiFields, common: TransportSettings) -> ApiEndpoint:
        """The API for a model's `fields`, sending with the `common` settings."""
        key = fields.api_key.get_secret_value() if fields.api_key else None
        url = fields.base_url.rstrip("/") + fields.api_path
        return _configured(
            surface_transport(common, url, NOT_FOUND_HINT, MOVED_HINT),
            fields.model if "model" in fields.model_fields_set else None,
            fields.private,
            key or PUBLIC_API_KEY,
            fields.max_request_line,
        )

    def request(self, call: Call) -> Request:
        """The call as a query: the leading system messages apart, text only.

        Raises:
            DynasparkInputError: If the conversation holds images, or its
                request line would be too long.
        """
        system, rest = split_system(call.messages)
        prompt = build_prompt(rest, instructions=call.instructions)
        if prompt.images:
            msg = (
                "The Dynaspark API takes text only, and this conversation holds "
                f"{len(prompt.images)} image(s). Send images with "
                "ChatDynaspark(endpoint='form')."
            )
            raise DynasparkInputError(msg)
        model = call.model or self.default_model
        query = build_query(
            user_input=prompt.text,
            system=system,
            model=model,
            sampling=call.sampling,
            json_mode=call.json_mode,
            stream=call.stream,
            private=self.private,
            api_key=self.api_key,
        )
        check_request_line(self.transport.url, query, self.max_request_line)
        return Request(model, prompt, query, stream=call.stream)

    async def send(self, request: Request) -> Reply:
        """Send one request and return the whole reply."""
        _, reply = await get_read(self.transport, request.fields, parse_reply)
        return reply

    def events(self, request: Request) -> AsyncGenerator[Reply, None]:
        """Send one streaming request; yield each event's piece as it arrives.

        A service that ignores `stream=true` and answers in one piece gives one
        piece. Close the generator when done with it (`contextlib.aclosing`):
        closing it early releases the connection.
        """
        query = request.fields
        prompt, secret = query.get("user_input"), query.get("api_key")
        return stream_get(
            self.transport, query, lambda answer: _Events(answer, prompt, secret)
        )


_configured = functools.lru_cache(maxsize=32)(ApiEndpoint)
"""`ApiEndpoint`, built once per set of values (positional, in field order)."""


async def get_read(
    transport: TransportSettings,
    query: Mapping[str, str],
    read: Reading[T_co],
) -> tuple[Answer, T_co]:
    """GET `query`; the answer, and what `read` makes of it and the prompt sent.

    An error `read` raises is re-raised without the key or the prompt, should
    the service quote them (`_Hiding`). The API's surfaces all read this way.
    """
    answer = await get(transport, query)
    prompt = query.get("user_input")
    with _Hiding(query.get("api_key"), prompt):
        return answer, read(answer, prompt=prompt)


def split_system(
    messages: Sequence[BaseMessage],
) -> tuple[str | None, list[BaseMessage]]:
    """Split off the leading system messages, for the API's `system` parameter.

    A system message later in the conversation stays in the transcript. When
    nothing but system messages is given, or one holds more than text, nothing
    is split off.

    Returns:
        The leading system messages' text (joined by blank lines), or `None`,
        and the rest of the conversation.
    """
    count = 0
    while count < len(messages) and isinstance(messages[count], SystemMessage):
        count += 1
    leading = messages[:count]
    if count in (0, len(messages)) or not all(map(_text_only, leading)):
        return None, list(messages)
    return "\n\n".join(m.text for m in leading), list(messages[count:])


def build_query(
    *,
    user_input: str,
    system: str | None = None,
    model: str | None = None,
    sampling: Mapping[str, float | int] | None = None,
    json_mode: bool = False,
    stream: bool = False,
    private: bool = True,
    api_key: str | None = None,
) -> dict[str, str]:
    """The query parameters of one request; each is sent only when set."""
    query = {"user_input": user_input}
    if system:
        query["system"] = system
    if model:
        query["model"] = model
    for name, value in (sampling or {}).items():
        query[name] = str(value)
    if json_mode:
        query["json"] = "true"
    if stream:
        query["stream"] = "true"
    if private:
        query["private"] = "true"
    if api_key:
        query["api_key"] = api_key
    return query


_ELSEWHERE = "use endpoint='form' (which sends it in the body), "
"""Where a conversation too long for the API's URL can go instead."""


def check_request_line(
    url: str, query: Mapping[str, str], limit: int, *, elsewhere: str = _ELSEWHERE
) -> None:
    """Refuse a request whose request line would exceed `limit` bytes.

    The line is measured as sent: `GET <path>?<encoded query> HTTP/1.1`.
    `elsewhere` says where else the request could go (`""`: nowhere, as for
    image and speech models, which have one surface).

    Raises:
        DynasparkInputError: If the line is too long, or a field holds text
            that cannot be encoded; nothing has been sent.
    """
    check_encodable(query)
    # Each byte takes at most 3 when percent-encoded: most requests fit that
    # bound, and only the others are measured exactly.
    bound = len(url) + sum(len(k) + 2 + 3 * len(v.encode()) for k, v in query.items())
    if bound + len("GET  HTTP/1.1") <= limit:
        return
    target = URL(url).extend_query(query).raw_path_qs
    length = len(f"GET {target} HTTP/1.1".encode())
    if length > limit:
        msg = (
            f"This request would need a {length}-byte request line, over "
            f"max_request_line={limit}: this surface carries the conversation in "
            "the URL, and servers refuse long ones. Shorten the conversation, "
            f"{elsewhere}or raise `max_request_line` if your server accepts "
            "longer lines."
        )
        raise DynasparkInputError(msg)


class _Events:
    """The `transport.Decoder` of a streamed answer: bytes -> reply pieces.

    One reader for every stream, with the rules of a whole reply: the body of
    an answer that is not an event stream is read as `send` reads it; events
    are checked as they come (`event_reply`), and the stream's end as in
    `_ending`. Pieces that carry nothing are not handed on, so keep-alives
    neither count as progress nor as content.
    """

    def __init__(self, answer: Answer, prompt: str | None, secret: str | None) -> None:
        self._answer = answer
        self._prompt = prompt
        self._secret = secret
        self._limits = rate_limit(answer.headers)
        self._sse = (
            SSEDecoder(MAX_EVENT_CHARS)
            if answer.content_type == "text/event-stream"
            else None
        )
        self._body = bytearray()
        self._structured = False
        """Whether the stream has sent a JSON object."""
        self._replied = False
        """Whether the stream has sent a piece of the reply (not only `[DONE]`)."""
        self._finished = False
        """Whether the stream has said that the reply is complete."""

    def feed(self, chunk: bytes) -> list[Reply]:
        if self._sse is None:
            self._body += chunk
            return []
        with _Hiding(self._secret, self._prompt):
            try:
                events = self._sse.feed(chunk)
            except EventTooLongError:
                raise _event_too_long() from None
            return self._pieces(events) if events else []

    def end(self) -> list[Reply]:
        with _Hiding(self._secret, self._prompt):
            if self._sse is None:
                answer = Answer(
                    self._answer.headers, self._answer.content_type, bytes(self._body)
                )
                return [parse_reply(answer, prompt=self._prompt)]
            try:
                events = self._sse.end()
            except EventTooLongError:
                raise _event_too_long() from None
            # An event the stream ended inside counts only as the end marker.
            last = events.pop() if self._sse.cut else None
            pieces = self._pieces(events)
            if last is not None and last.data.strip() == "[DONE]":
                pieces += self._pieces([last])
            elif last is not None and not self._finished:
                raise _incomplete("ended inside an event")
            self._ending()
            return pieces

    def _pieces(self, events: list[ServerSentEvent]) -> list[Reply]:
        pieces: list[Reply] = []
        for event in events:
            piece, structured = read_event(event, self._prompt, self._structured)
            if piece is None:
                continue
            self._structured = self._structured or structured
            self._finished = self._finished or piece.done or bool(piece.finish_reason)
            self._replied = self._replied or not piece.done
            if self._limits is not None:
                # The first piece also carries the rate limits.
                piece = replace(piece, rate_limit=self._limits)
                self._limits = None
            pieces.append(piece)
        return pieces

    def _ending(self) -> None:
        """Check the end of an event stream that did not end inside an event.

        Raises:
            DynasparkResponseError: If the stream held no event.
            DynasparkConnectionError: If it sent JSON objects, and so is an
                OpenAI-style stream, but neither `[DONE]` nor a `finish_reason`.
        """
        if self._finished:
            return
        if not self._replied:
            msg = (
                "Dynaspark answered 200 with an event stream that held no reply "
                "(no event with data), as `invoke` would refuse that body. The "
                "service may be under maintenance or still waking up: retry in a "
                "minute."
            )
            raise DynasparkResponseError(msg, status_code=200)
        if self._structured:
            raise _incomplete("ended without `data: [DONE]` or a `finish_reason`")


class _Hiding:
    """Re-raise a reply error without the query, `secret` or `prompt` it quotes.

    The service may echo the request target, or the key, in any encoding
    (`transport.conceal`). A class, not a `contextlib.contextmanager`: it wraps
    every reply and every streamed read, and entering it costs no generator.
    """

    __slots__ = ("_prompt", "_secret")

    def __init__(self, secret: str | None, prompt: str | None = None) -> None:
        self._secret = secret
        self._prompt = prompt

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(error, DynasparkResponseError):
            return
        secrets = (self._secret,) if self._secret else ()
        prompt = self._prompt

        def hide(text: str) -> str:
            return conceal(text, secrets, prompt=prompt)

        said = error.server_message
        message = hide(str(error))
        if message == str(error) and (not said or hide(said) == said):
            return
        raise type(error)(
            message,
            status_code=error.status_code,
            server_message=hide(said) if said else None,
        ) from None


def _text_only(message: BaseMessage) -> bool:
    content = message.content
    return isinstance(content, str) or all(
        isinstance(block, str) or block.get("type") == "text" for block in content
    )


def _incomplete(how: str) -> DynasparkConnectionError:
    msg = (
        f"Dynaspark's stream {how}, so the reply is incomplete. It is retried "
        "only while nothing of it has been delivered: call again."
    )
    return DynasparkConnectionError(msg)


def _event_too_long() -> DynasparkResponseTooLargeError:
    msg = (
        f"An event of Dynaspark's stream is longer than {MAX_EVENT_CHARS} "
        "characters, far beyond a piece of a reply, and was not read. Call "
        "`invoke` (which reads the reply whole, up to `max_response_bytes`), or "
        "check the service."
    )
    return DynasparkResponseTooLargeError(msg, status_code=200)
