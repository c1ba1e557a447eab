"""`ChatDynaspark`: the Dynaspark form endpoint as a LangChain chat model."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import json
import math
import sys
import threading
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter, is_not
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.base import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
)
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.json import parse_partial_json
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_dynaspark.emulation.format_repair import (
    Attempt,
    arepair,
    format_problem,
    repair,
    repair_prompt,
)
from langchain_dynaspark.emulation.instructions import (
    build_instructions,
    check_response_format,
    check_tool_choice,
    check_tools,
    resolve_instructions,
)
from langchain_dynaspark.emulation.tool_calls import (
    ParsedReply,
    parse_tool_calls,
)
from langchain_dynaspark.endpoints import api, form
from langchain_dynaspark.endpoints.api import DEFAULT_API_PATH, DEFAULT_MAX_REQUEST_LINE
from langchain_dynaspark.errors import DynasparkInputError
from langchain_dynaspark.images import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_IMAGE_SIDE,
    ImageLimits,
)
from langchain_dynaspark.prompt import Prompt, build_prompt
from langchain_dynaspark.redact import scrub_url
from langchain_dynaspark.reply import Reply, StopScanner, apply_stop
from langchain_dynaspark.transport import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    TransportSettings,
    iterate_sync,
    run_sync,
)

if TYPE_CHECKING:
    from types import FrameType

    from langchain_core.tools import BaseTool

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "KNOWN_MODELS", "ChatDynaspark"]

DEFAULT_BASE_URL = "https://dynaspark.onrender.com"
DEFAULT_PATH = form.DEFAULT_PATH
API_DEFAULT_MODEL = "default"
"""`ls_model_name` on `endpoint="api"` when no model was chosen: the service's."""
DEFAULT_MODEL = "gemini-2.0-flash"
"""The newest model the service is known to offer. Google retired the Gemini 1.5
models in 2025, so the service may no longer serve them."""
KNOWN_MODELS = (
    "gemini-1.5-flash",
    "gemini-1.5-flash-8b",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
)
"""Models the service is known to offer. Any other name is sent unchanged."""

_SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 3.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
"""The documented ranges of the API's sampling parameters."""
SAMPLING_PARAMS = (*_SAMPLING_RANGES, "seed")
"""Sampling parameters the API takes and the form ignores (with a warning)."""
_IGNORED_PARAMS = frozenset({"top_k", "max_tokens", "max_output_tokens", "n"})
"""Parameters other chat models take and neither endpoint has (warned, dropped)."""
_CALL_ARGUMENTS = (
    "model",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "format_retries",
    *SAMPLING_PARAMS,
)
_SECRET_FIELDS = frozenset({"api_key"})
"""Fields never shown in `_identifying_params` (and so in cache keys and traces),
besides any field whose value is a `SecretStr`/`SecretBytes`."""
_SHOWN_AS = {"stop": "stop_sequences"}
"""Fields shown under another name in `_identifying_params`: the invocation
parameters use `stop` for the call's own stop sequences."""
_CHARS_PER_TOKEN = 4.0
"""The ratio `count_tokens_approximately` assumes, for `get_num_tokens`."""
_CONSUMED_BY_LANGCHAIN = frozenset({"ls_structured_output_format", "format_retries"})
"""Call arguments taken out before `_call_options` sees them: by `BaseChatModel`
(`ls_structured_output_format`), or by the repair step (`format_retries`)."""
_INTERNAL_MODULES = frozenset(
    {
        "langchain_dynaspark",
        "langchain_core",
        "langchain",
        "langgraph",
        "pydantic",
        "concurrent",
        "threading",
        "asyncio",
        "contextlib",
        "contextvars",
        "functools",
    }
)
"""Frames a warning skips to point at the caller's line."""
_warned_lock = threading.Lock()


def _sampling_field(name: str) -> Any:
    """A sampling field, validated to its documented range."""
    low, high = _SAMPLING_RANGES[name]
    return Field(default=None, ge=low, le=high)


_READ_IN_THREAD = 32_768
"""Replies longer than this (in characters) are parsed in a worker thread, so a
long reply does not hold up the event loop (about 2 ms per 32 KB of code)."""


class ChatDynaspark(BaseChatModel):
    """Chat model for the free, no-key Dynaspark AI service.

    Dynaspark has no roles, no history and one reply per request: `ChatDynaspark`
    renders the whole conversation into the single prompt the service takes
    (each message labelled by its role) and turns the reply into an `AIMessage`.

    It speaks both surfaces of the service: the web form (`endpoint="form"`, the
    default: images, no sampling parameters) and the documented API
    (`endpoint="api"`: sampling parameters, a system prompt, token streaming,
    token usage and rate-limit headers; text only).

    Setup:
        No API key is needed. The package is not on PyPI yet: install it from
        its repository, until a release exists.

        ```bash
        pip install .  # in a checkout of the repository
        ```

        `DYNASPARK_BASE_URL` overrides the service address, e.g. to point at the
        local test server (`python -m langchain_dynaspark.testing.server`).

    Key init args — completion params:
        model: Model name (alias `model_name`, also readable as
            `model.model_name`), default `"gemini-2.0-flash"`, the newest model
            the service is known to offer (Google retired Gemini 1.5 in 2025).
            Known: `gemini-1.5-flash`, `gemini-1.5-flash-8b`, `gemini-2.0-flash`,
            `gemini-2.0-flash-lite`; any other string is sent unchanged.
        stop: Stop sequences, applied to the reply on the client side.
        streaming: Whether `invoke` also streams to callbacks: event by event for
            a plain-text reply on the API endpoint, else the reply as one token.
        temperature, top_p, presence_penalty, frequency_penalty, seed: Sampling
            parameters (0-3, 0-1, -2-2, -2-2, an integer), checked at construction
            and per call. Sent on `endpoint="api"`; the form ignores them, with a
            warning given once per model and parameter.
        format_retries: Extra requests when a reply misses its required form (a
            forced tool call, valid tool arguments, structured output); default
            1, `0` turns repair off.

    Key init args — client params:
        base_url: Service address; defaults to `DYNASPARK_BASE_URL`, then
            `https://dynaspark.onrender.com`.
        path: Path of the form endpoint, default `/generate_response`.
        timeout: Seconds one attempt may take (default 120: the service sleeps
            when idle and can take a minute to wake). `None` waits forever.
        connect_timeout: Seconds to open a connection (default 15).
        max_retries: Retries on 429, 5xx, timeouts and connection errors
            (default 2; `0` means one attempt).
        proxy: HTTP(S) proxy URL; `HTTP(S)_PROXY` from the environment is used
            when unset.
        endpoint: `"form"` (default) or `"api"`.
        api_path: Path of the documented API, default `/api/generate_response`.
        api_key: API key, from `DYNASPARK_API_KEY` when set; sent only when
            there is one, never shown.
        private: Keep API generations out of the service's public feed (default
            `True`).
        max_request_line: Longest request line sent on the API, in bytes
            (default 4094); longer conversations are refused before sending.
        max_connections: Requests in flight at once on the shared connection
            pool (default 10); more wait for a slot, and their `timeout` starts
            once they have one.
        max_response_bytes: Largest answer read, in bytes (default 16 MiB).

    Key init args — image params:
        max_image_side: Longest side of the image sent, in pixels (default
            2048); larger images are downscaled, keeping the aspect ratio.
        max_image_bytes: Largest upload, in bytes (default 5 MiB); JPEG quality,
            then size, is lowered to fit.
        max_image_pixels: Most pixels an input image may have (default
            89,478,485, pillow's decompression-bomb limit).
        max_image_download_bytes: Largest image downloaded from a URL, in bytes
            (default 20 MiB), enforced while it streams in.
        strip_image_metadata: Remove EXIF (GPS, camera), XMP, comments and text
            chunks before upload (default `True`).

    Instantiate:
        ```python
        from langchain_dynaspark import ChatDynaspark

        model = ChatDynaspark(model="gemini-2.0-flash", timeout=90, max_retries=3)
        ```

    Invoke:
        ```python
        messages = [
            ("system", "Translate the user sentence to French."),
            ("human", "I love programming."),
        ]
        model.invoke(messages).text
        ```

        ```python
        "J'adore la programmation."
        ```

    Stream:
        The form answers in one piece, so a stream yields the whole reply as one
        chunk, as soon as it arrives. On `endpoint="api"`, each server-sent event
        is yielded as it arrives; with tools bound or structured output requested,
        the reply is buffered and parsed as `invoke` parses it, then given as one
        chunk, so both give the same tool calls or object.

        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="")
        ```

    Async:
        ```python
        await model.ainvoke(messages)
        async for chunk in model.astream(messages):
            print(chunk.text, end="")
        await model.abatch([messages, messages])
        ```

    Image input:
        Images go in message content in any form LangChain normalises: an
        `image` block with `base64` and `mime_type` or with a `url`, an OpenAI
        `image_url` (data or http(s) URL), or an Anthropic `source` block, in
        human and tool messages. PNG, JPEG, WEBP and GIF are sent unchanged when
        nothing needs changing; other formats are converted, EXIF orientation is
        applied, metadata is stripped and large images are downscaled. The
        service takes one image per request, so several images are composed, in
        order, into one grid labelled "Image 1", "Image 2", ..., and the prompt
        refers to each as `[Image N]` where it occurred.

        ```python
        import base64
        from pathlib import Path

        from langchain_core.messages import HumanMessage

        photo = base64.b64encode(Path("cat.jpg").read_bytes()).decode()
        message = HumanMessage(
            content=[
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "base64": photo, "mime_type": "image/jpeg"},
            ]
        )
        model.invoke([message]).text
        ```

        ```python
        "A grey cat asleep on a windowsill."
        ```

        URLs are downloaded (http(s) only, at most `max_image_download_bytes`):

        ```python
        message = HumanMessage(
            content=[
                {"type": "text", "text": "Describe this image."},
                {"type": "image", "url": "https://example.com/cat.png"},
            ]
        )
        ```

    Tool calling:
        Emulated through the prompt: the service has no tool calling. The tools
        and a JSON answer format are written into instructions at the top of the
        prompt, and the reply is parsed into `tool_calls` (Python calls, Gemini
        `functionCall` objects and almost-JSON are read too). The model may still
        answer in prose; calls to tools that were not offered, or with arguments
        that do not fit the tool's schema, land in `invalid_tool_calls`. A reply
        that misses a required form is asked for once more (`format_retries`).

        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="City, e.g. San Francisco, CA")


        model_with_tools = model.bind_tools([GetWeather])
        ai_msg = model_with_tools.invoke("What is the weather like in Paris?")
        ai_msg.tool_calls
        ```

        ```python
        [
            {
                "name": "GetWeather",
                "args": {"location": "Paris, France"},
                "id": "call_4f1c0b6e3f0a4d8c9b2e7a5d6c3b1a09",
                "type": "tool_call",
            }
        ]
        ```

        `tool_choice` takes `"auto"`, `"any"`/`"required"`, a tool name or
        `"none"`; `langchain.agents.create_agent(model, tools=[...])` runs the
        tool loop. The instruction texts are in
        `langchain_dynaspark.emulation.instructions.DEFAULT_INSTRUCTIONS`;
        override them with `format_instructions={...}`.

    Structured output:
        ```python
        from pydantic import BaseModel, Field


        class Joke(BaseModel):
            '''Joke to tell user.'''

            setup: str = Field(description="The setup of the joke")
            punchline: str = Field(description="The punchline to the joke")


        structured_model = model.with_structured_output(Joke)
        structured_model.invoke("Tell me a joke about cats")
        ```

        ```python
        Joke(
            setup="Why was the cat sitting on the computer?",
            punchline="To keep an eye on the mouse!",
        )
        ```

        `method="json_schema"` (default) shows the schema in the prompt,
        `"json_mode"` asks for any JSON object and `"function_calling"` forces a
        call to the schema as a tool. Pydantic classes, TypedDicts and JSON
        schemas are accepted; `include_raw=True` returns `raw`, `parsed` and
        `parsing_error`.

    Response metadata:
        ```python
        model.invoke(messages).response_metadata
        ```

        ```python
        {
            "model_name": "gemini-2.0-flash",
            "model_provider": "dynaspark",
            "finish_reason": "stop",
        }
        ```

        `finish_reason` is `"stop_sequence"` when a stop sequence cut the reply,
        and `"tool_calls"` when the reply holds tool calls. On `endpoint="api"`,
        `rate_limit` holds the `X-RateLimit-*` headers (`limit`, `remaining`,
        `reset`), and `model_name` is the model the service says it used.

    Token usage:
        The form reports none, so `usage_metadata` is not set there. The API
        reports the service's own counts:

        ```python
        api_model = ChatDynaspark(endpoint="api", seed=7)
        api_model.invoke(messages).usage_metadata
        ```

        ```python
        {"input_tokens": 28, "output_tokens": 8, "total_tokens": 36}
        ```

        `get_num_tokens` and `get_num_tokens_from_messages` (used by
        `trim_messages(token_counter=model)`) are offline estimates, about four
        characters per token (`count_tokens_approximately`).
    """

    model: str = Field(
        default=DEFAULT_MODEL, validation_alias=AliasChoices("model", "model_name")
    )
    """Model name, sent unchanged as the form's `ai_model` field."""

    base_url: str = Field(
        default_factory=from_env("DYNASPARK_BASE_URL", default=DEFAULT_BASE_URL)
    )
    """Service address; read from `DYNASPARK_BASE_URL` when not given."""

    path: str = DEFAULT_PATH
    """Path of the form endpoint; the service has renamed it before."""

    endpoint: Literal["form", "api"] = "form"
    """Which surface of the service to speak: `"form"` (the web form: images,
    no sampling parameters) or `"api"` (the documented API: sampling parameters,
    a system prompt, token streaming, token usage, rate-limit headers; text
    only)."""

    api_path: str = DEFAULT_API_PATH
    """Path of the documented API, used on `endpoint="api"`."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("DYNASPARK_API_KEY", default=None)
    )
    """API key for `endpoint="api"`; read from `DYNASPARK_API_KEY` when not given.
    Sent only when set (the service needs none for now)."""

    private: bool = True
    """On `endpoint="api"`, ask the service to keep generations out of its
    public feed."""

    temperature: float | None = _sampling_field("temperature")
    """Sampling temperature, 0 to 3 (`endpoint="api"`; the form ignores it)."""

    top_p: float | None = _sampling_field("top_p")
    """Nucleus sampling, 0 to 1 (`endpoint="api"`; the form ignores it)."""

    presence_penalty: float | None = _sampling_field("presence_penalty")
    """Presence penalty, -2 to 2 (`endpoint="api"`; the form ignores it)."""

    frequency_penalty: float | None = _sampling_field("frequency_penalty")
    """Frequency penalty, -2 to 2 (`endpoint="api"`; the form ignores it)."""

    seed: int | None = None
    """Seed for reproducible sampling (`endpoint="api"`; the form ignores it)."""

    max_request_line: int = Field(default=DEFAULT_MAX_REQUEST_LINE, ge=64)
    """Longest request line, in bytes, sent on `endpoint="api"`, where the
    conversation travels in the URL. Longer requests are refused before sending.
    The default is gunicorn's limit; many proxies accept 8190."""

    timeout: float | None = Field(default=120.0, gt=0)
    """Seconds one attempt may take in all; `None` for no limit."""

    connect_timeout: float | None = Field(default=15.0, gt=0)
    """Seconds to open a connection; `None` for no limit."""

    max_retries: int = Field(default=2, ge=0)
    """Retries after the first attempt on 429, 5xx, timeouts, connection errors."""

    proxy: str | None = None
    """HTTP(S) proxy URL; when unset, `HTTP(S)_PROXY` from the environment."""

    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1)
    """Requests in flight at once on the pooled session this model uses (models
    with the same value share it); more wait for a free slot, and their
    `timeout` starts once they have one."""

    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1)
    """Largest answer body read, in bytes; a larger one raises
    `DynasparkResponseTooLargeError` while it streams in."""

    stop: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("stop", "stop_sequences")
    )
    """Stop sequences: the reply is cut at the first one (client side)."""

    streaming: bool = False
    """Whether `invoke` also streams to callbacks (event by event on the API,
    for a plain-text reply; else the whole reply as one token)."""

    max_image_side: int = Field(default=DEFAULT_MAX_IMAGE_SIDE, ge=64)
    """Longest side, in pixels, of the image sent; larger ones are downscaled."""

    max_image_bytes: int = Field(default=DEFAULT_MAX_IMAGE_BYTES, ge=16_384)
    """Largest upload, in bytes; JPEG quality, then size, is lowered to fit."""

    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, ge=1)
    """Most pixels an input image may have; more is refused (decompression bombs).
    Pillow's own `PIL.Image.MAX_IMAGE_PIXELS` applies as well."""

    max_image_download_bytes: int = Field(
        default=DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES, ge=1
    )
    """Largest image downloaded from a URL, in bytes, enforced while streaming."""

    strip_image_metadata: bool = True
    """Remove EXIF (GPS, camera), XMP, comments and text chunks before upload.
    With `False`, an image sent unchanged keeps all of it, a re-encoded one keeps
    its EXIF (less the orientation, which is applied either way), and a composite
    of several images has none."""

    format_instructions: dict[str, str] | None = None
    """Overrides for the instructions that emulate tool calling and structured
    output, by key (`tools`, `auto`, `any`, `tool`, `one_call`, `none`,
    `json_schema`, `json_mode`, `repair`); see
    `langchain_dynaspark.emulation.instructions`."""

    format_retries: int = Field(default=1, ge=0)
    """Extra requests made when a reply misses its required form (a required tool
    call, valid tool arguments, structured output); `0` turns repair off. See
    `langchain_dynaspark.emulation.format_repair`."""

    model_config = ConfigDict(populate_by_name=True)

    _warned: set[str] = PrivateAttr(default_factory=set)
    """Ignored parameters this model has warned about (once each)."""

    @model_validator(mode="before")
    @classmethod
    def _check_arguments(cls, values: Any) -> Any:
        """Refuse unknown arguments; warn about (and drop) ignored parameters."""
        if not isinstance(values, dict):
            return values
        known = _arguments_of(cls)
        unknown = sorted(set(values) - known - _IGNORED_PARAMS)
        if unknown:
            raise ValueError(_unknown_message(unknown, sorted(known)))
        endpoint = values.get("endpoint", "form")
        ignored = set(_IGNORED_PARAMS.intersection(values))
        if endpoint == "form":
            ignored.update(n for n in SAMPLING_PARAMS if values.get(n) is not None)
        if ignored:
            _warn_ignored(ignored, endpoint)
        return {k: v for k, v in values.items() if k not in _IGNORED_PARAMS}

    @model_validator(mode="after")
    def _remember_warnings(self) -> Self:
        """Sampling fields warned about at construction are not warned again."""
        if self.endpoint == "form":
            self._warned.update(
                n for n in SAMPLING_PARAMS if getattr(self, n) is not None
            )
        return self

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        _check_model_name(value)
        return value

    @field_validator("format_instructions")
    @classmethod
    def _check_format_instructions(
        cls, value: dict[str, str] | None
    ) -> dict[str, str] | None:
        resolve_instructions(value)
        return value

    @property
    def _llm_type(self) -> str:
        return "dynaspark-chat"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where the API key comes from, so serialization never writes it."""
        return {"api_key": "DYNASPARK_API_KEY"}

    @property
    def model_name(self) -> str:
        """The model's name, as `ChatOpenAI.model_name` reads (same as `model`)."""
        return self.model

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """Every `ChatDynaspark` setting, for cache keys and tracing, minus secrets.

        Derived from the fields, so a new field is covered without listing it:
        secrets (`SecretStr` values and `api_key`) are left out, and URLs are
        shown without the `user:password@` they may carry. `stop` is shown as
        `stop_sequences`, apart from a call's `stop`.
        """
        read, shown = _shown_settings(type(self))
        values = read(self)
        kept = _kept_params.get(id(self))
        # LangChain reads this on every call: derived again only when a field
        # holds another object (one changed in place is in the kept dict too).
        if kept is None or kept[0] is not read or any(map(is_not, kept[1], values)):
            params = {}
            for name, value in zip(shown, values, strict=True):
                if isinstance(value, str):
                    params[name] = scrub_url(value)
                elif not isinstance(value, (SecretStr, SecretBytes)):
                    params[name] = value
            if len(_kept_params) >= _MAX_KEPT_PARAMS:
                _kept_params.clear()
            kept = _kept_params[id(self)] = (read, values, params)
        return dict(kept[2])

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields as pydantic shows them, with URL credentials scrubbed."""
        for name, value in super().__repr_args__():
            yield name, scrub_url(value) if isinstance(value, str) else value

    def get_num_tokens(self, text: str) -> int:
        """An estimate of the tokens in `text`: about four characters per token.

        The service reports no token counts and its tokenizer is not public, so
        this uses the rule of `langchain_core`'s `count_tokens_approximately`
        (no download, no `transformers`). `custom_get_token_ids` wins when set.
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens(text)
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """An estimate of the tokens in `messages` (and `tools`' schemas).

        Uses `langchain_core`'s `count_tokens_approximately`, so it works offline
        and with `trim_messages(token_counter=model)`. It is an estimate: the
        service counts no tokens and the prompt it receives adds role labels
        and instructions.
        """
        return count_tokens_approximately(
            messages,
            chars_per_token=_CHARS_PER_TOKEN,
            tools=[convert_to_openai_tool(tool) for tool in tools or ()] or None,
        )

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What `ChatDynaspark` supports, for any model the service offers.

        Tool calling and tool choice are emulated through the prompt;
        `structured_output` (which means a native feature) is `False`, so
        `create_agent(response_format=...)` uses its tool strategy. Images
        need the form: the API takes text only.
        """
        images = self.endpoint == "form"
        return ModelProfile(
            text_inputs=True,
            image_inputs=images,
            image_url_inputs=images,
            image_tool_message=images,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            text_outputs=True,
            image_outputs=False,
            audio_outputs=False,
            video_outputs=False,
            tool_calling=True,
            tool_choice=True,
            tool_call_streaming=True,
            structured_output=False,
            mid_conversation_system_messages=True,
        )

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="dynaspark",
            ls_model_name=kwargs.get("model")
            or self._chosen_model()
            or API_DEFAULT_MODEL,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if self.endpoint == "api" and isinstance(temperature, (int, float)):
            params["ls_temperature"] = float(temperature)
        if ls_stop := stop or self.stop:
            params["ls_stop"] = ls_stop
        return params

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Like `BaseChatModel.ainvoke`, checking the call's arguments first.

        Checked here, in the caller's task, so that a warning points at the
        caller's line.
        """
        self._precheck(kwargs)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Like `BaseChatModel.batch`, checking the call's arguments first.

        Checked once, in the caller's thread, so that a warning points at the
        caller's line and bad arguments fail before any request is sent.
        """
        self._precheck(kwargs)
        return super().batch(
            inputs, config, return_exceptions=return_exceptions, **kwargs
        )

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Like `BaseChatModel.abatch`, checking the call's arguments first."""
        self._precheck(kwargs)
        return await super().abatch(
            inputs, config, return_exceptions=return_exceptions, **kwargs
        )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, which the model is told about in its prompt.

        Dynaspark has no native tool calling: the prompt lists the tools and asks
        for a JSON reply, which is parsed into `AIMessage.tool_calls`.

        Args:
            tools: Tools as LangChain accepts them: `@tool` functions, `BaseTool`,
                Pydantic classes, TypedDicts, functions, OpenAI tool dicts.
            tool_choice: `None`/`"auto"` (the model decides), `"any"`/`"required"`
                (at least one call), a tool name (that tool), or `"none"`.
            strict: Passed to `convert_to_openai_tool`; it tightens the schemas
                shown to the model, nothing more.
            parallel_tool_calls: `False` asks for at most one call per reply and
                turns any further calls into invalid tool calls.
            **kwargs: Any other arguments to bind.

        Raises:
            DynasparkInputError: If a tool cannot be emulated, or `tool_choice`
                names no bound tool.
        """
        formatted = check_tools(tools, strict=strict)
        if tool_choice is not None:
            kwargs["tool_choice"] = check_tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = (
            "json_schema"
        ),
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Model wrapper that returns outputs formatted to match the given schema.

        Args:
            schema: A Pydantic class, a TypedDict, or a JSON schema (a dict with a
                `title` for `function_calling`). Optional for `json_mode`.
            method: `"json_schema"` (default) shows the schema in the prompt and
                asks for only a JSON object; `"json_mode"` asks for only a JSON
                object (describe the keys in your prompt); `"function_calling"`
                binds the schema as the only tool and forces a call to it.
            include_raw: If `True`, return `{"raw": AIMessage, "parsed": ...,
                "parsing_error": ...}` instead of raising on parsing errors.
            strict: Accepted for compatibility; the service cannot enforce a
                schema, so the reply is validated client-side either way.
            **kwargs: Not supported; raises.

        Returns:
            A runnable that returns an instance of the Pydantic class, or a dict.

        Raises:
            ValueError: If `method` is unknown, `schema` is missing where it is
                needed, or other keyword arguments are given.
        """
        if kwargs:
            msg = f"Received unsupported arguments {kwargs}"
            raise ValueError(msg)
        # Imported here: output parsers are only needed once structured output is.
        from langchain_dynaspark.emulation.structured_output import (  # noqa: PLC0415
            structured_runnable,
        )

        return structured_runnable(
            self, schema, method=method, include_raw=include_raw, strict=strict
        )

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun
        | AsyncCallbackManagerForLLMRun
        | None = None,
        **kwargs: Any,
    ) -> bool:
        """Serve `invoke` from a stream only when the stream is token by token.

        That is the API endpoint's plain-text reply, with `streaming=True` or a
        streaming listener attached (`astream_events`, LangGraph's messages
        mode): the listener gets each event as it arrives, and the chunks add up
        to the message a plain `invoke` gives. Otherwise the reply comes in one
        piece, so `invoke` gains nothing from streaming; and langchain-core,
        adding chunks up, re-derives tool calls from `tool_call_chunks` alone,
        which would drop invalid calls' errors and make a call to a tool that
        was not offered valid. There `invoke` emits the reply as one token event
        (see `_generate`), with the same message.
        """
        return super()._should_stream(
            async_api=async_api, run_manager=run_manager, **kwargs
        ) and (bool(kwargs.get("stream")) or self._streams_events(dict(kwargs)))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, stop, run_manager, kwargs)
        if run_manager and super()._should_stream(
            async_api=False, run_manager=run_manager, **kwargs
        ):
            chunk = _chunk(message, f"{LC_ID_PREFIX}-{run_manager.run_id}")
            message.id = chunk.message.id
            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return _result(message)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = await self._areply(messages, stop, run_manager, kwargs)
        if run_manager and super()._should_stream(
            async_api=True, run_manager=run_manager, **kwargs
        ):
            chunk = _chunk(message, f"{LC_ID_PREFIX}-{run_manager.run_id}")
            message.id = chunk.message.id
            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return _result(message)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the reply: on the API, event by event; else in one piece.

        With tools bound or structured output requested, the reply is buffered
        and parsed (and repaired) as `invoke` does it, then given as one chunk,
        so a stream gives the same tool calls or parsed object as `invoke`.
        """
        if not self._streams_events(kwargs):
            chunk = _chunk(self._reply(messages, stop, run_manager, kwargs))
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        call = self._prepare(messages, stop, kwargs, stream=True)
        for chunk in iterate_sync(self._api_chunks(call)):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not self._streams_events(kwargs):
            chunk = _chunk(await self._areply(messages, stop, run_manager, kwargs))
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        call = self._prepare(messages, stop, kwargs, stream=True)
        chunks = self._api_chunks(call)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    def _streams_events(self, kwargs: dict[str, Any]) -> bool:
        """Whether a stream yields the API's events as they come (else buffered).

        Takes `format_retries` out: a reply with no form to meet needs no repair.
        """
        if self.endpoint != "api" or kwargs.get("tools"):
            return False
        if kwargs.get("response_format") is not None:
            return False
        _pop_format_retries(kwargs, self.format_retries)
        return True

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """One request, and a repair request if the reply missed its form."""
        retries = _pop_format_retries(kwargs, self.format_retries)
        # Checked here, in the caller's thread, so a warning names its line.
        call = self._prepare(messages, stop, dict(kwargs), stream=False)
        attempt = run_sync(self._acall(call))

        def ask(conversation: list[BaseMessage], left: int) -> AIMessage:
            config = _repair_config(run_manager)
            return self.invoke(
                conversation, config, stop=stop, format_retries=left, **kwargs
            )

        return repair(messages, attempt, retries, ask)

    async def _areply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """Async `_reply`."""
        retries = _pop_format_retries(kwargs, self.format_retries)
        call = self._prepare(messages, stop, dict(kwargs), stream=False)
        attempt = await self._acall(call)
        if attempt.repair_prompt is None:
            return attempt.message  # the common case: no repair, no closure

        async def ask(conversation: list[BaseMessage], left: int) -> AIMessage:
            config = _repair_config(run_manager)
            return await self.ainvoke(
                conversation, config, stop=stop, format_retries=left, **kwargs
            )

        return await arepair(messages, attempt, retries, ask)

    def _prepare(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> _Call:
        """Check a call's arguments and build its request; nothing is sent.

        Raises:
            DynasparkInputError: If the input cannot be sent to this endpoint.
        """
        model, sampling, emulation = self._call_options(kwargs)
        texts = resolve_instructions(self.format_instructions)
        instructions = emulation.instructions(texts)
        stop = self.stop if stop is None else stop
        if self.endpoint == "form":
            prompt = build_prompt(messages, instructions=instructions)
            return _Call(model or self.model, prompt, emulation, stop, texts)
        system, rest = api.split_system(messages)
        prompt = build_prompt(rest, instructions=instructions)
        if prompt.images:
            msg = (
                "The Dynaspark API takes text only, and this conversation holds "
                f"{len(prompt.images)} image(s). Send images with "
                "ChatDynaspark(endpoint='form')."
            )
            raise DynasparkInputError(msg)
        model = model or self._chosen_model()
        query = api.build_query(
            user_input=prompt.text,
            system=system,
            model=model,
            sampling=sampling,
            json_mode=emulation.response_format is not None,
            stream=stream and not emulation.buffered,
            private=self.private,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
        )
        api.check_request_line(self._url(), query, self.max_request_line)
        return _Call(model, prompt, emulation, stop, texts, query)

    def _precheck(self, kwargs: dict[str, Any]) -> None:
        """Check a call's arguments (and warn) before LangChain takes them over."""
        if not kwargs:
            return
        self._call_options(
            {k: v for k, v in kwargs.items() if k not in _CONSUMED_BY_LANGCHAIN}
        )

    def _call_options(
        self, kwargs: dict[str, Any]
    ) -> tuple[str | None, dict[str, float | int], _Emulation]:
        """Take a call's model, sampling parameters and emulation from `kwargs`.

        Sampling parameters are checked on both endpoints and sent on the API;
        the form warns that it ignores them (once per model and parameter).

        Raises:
            DynasparkInputError: If an argument is unknown or out of range.
        """
        if not kwargs:  # the common call: nothing to check, no emulation
            if self.endpoint == "form":
                return None, {}, _NO_EMULATION
            return None, self._sampling({}), _NO_EMULATION
        model = _pop_model(kwargs)
        given = {name: kwargs.pop(name) for name in SAMPLING_PARAMS if name in kwargs}
        for name, value in given.items():
            if value is not None:
                _check_sampling(name, value)
        emulation = _Emulation.pop(kwargs)
        ignored = set(_IGNORED_PARAMS.intersection(kwargs))
        unknown = sorted(set(kwargs) - ignored)
        if unknown:
            raise DynasparkInputError(_unknown_message(unknown, _CALL_ARGUMENTS))
        if self.endpoint == "form":
            ignored.update(name for name, value in given.items() if value is not None)
            self._warn_once(ignored)
            return model, {}, emulation
        self._warn_once(ignored)
        return model, self._sampling(given), emulation

    def _sampling(self, given: dict[str, Any]) -> dict[str, float | int]:
        """The sampling parameters to send: the call's, else the model's."""
        return {
            name: value
            for name in SAMPLING_PARAMS
            if (value := given.get(name, getattr(self, name))) is not None
        }

    def _warn_once(self, names: set[str]) -> None:
        """Warn about ignored parameters not warned about before by this model."""
        if not names:
            return
        with _warned_lock:
            new = names - self._warned
            self._warned.update(new)
        if new:
            _warn_ignored(new, self.endpoint)

    def _chosen_model(self) -> str | None:
        """The model to name: on the API, only one the user chose."""
        if self.endpoint == "form" or "model" in self.model_fields_set:
            return self.model
        return None

    async def _acall(self, call: _Call) -> Attempt:
        """One request: the endpoint's request and reply -> `AIMessage`."""
        settings = self._transport_settings()
        if call.query is None:
            reply = await form.request(
                settings, call.prompt, call.model or self.model, self._image_limits()
            )
        else:
            reply = await api.request(settings, call.query)
        text, cut = apply_stop(reply.text, call.stop)
        emulation = call.emulation
        parsed, problem = (
            await asyncio.to_thread(emulation.read, text)
            if len(text) > _READ_IN_THREAD
            else emulation.read(text)
        )
        finish_reason = (
            "tool_calls"
            if parsed.tool_calls
            else "stop_sequence"
            if cut
            else reply.finish_reason or "stop"
        )
        message = AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            invalid_tool_calls=parsed.invalid_tool_calls,
            usage_metadata=reply.usage,
            response_metadata=_metadata(call, reply, finish_reason),
        )
        return Attempt(
            message,
            text,
            repair_prompt(
                call.texts["repair"], problem, emulation.instructions(call.texts)
            )
            if problem
            else None,
        )

    async def _api_chunks(
        self, call: _Call
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        """The API's events as chunks, each as soon as it arrives.

        Text that could still begin a stop sequence is held back until it
        cannot; once a stop sequence matches, nothing more is read. The last
        chunk (with the text of the event that ended the reply, if any) carries
        the usage and metadata, so a reply that came in one piece is one chunk.
        """
        assert call.query is not None
        scanner = StopScanner(call.stop)
        model = usage = finish_reason = limits = None
        tail = ""
        pieces = api.stream(self._transport_settings(), call.query)
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                model = piece.model or model
                usage = piece.usage or usage
                finish_reason = piece.finish_reason or finish_reason
                limits = piece.rate_limit or limits
                text = scanner.feed(piece.text)
                if scanner.matched or piece.done:
                    tail = text
                    break
                if text:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        tail += scanner.flush()
        last = Reply(tail, model=model, usage=usage, rate_limit=limits)
        finish = "stop_sequence" if scanner.matched else finish_reason or "stop"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=last.text,
                usage_metadata=usage,
                response_metadata=_metadata(call, last, finish),
                chunk_position="last",
            )
        )

    def _image_limits(self) -> ImageLimits:
        return _limits_of(
            self.max_image_side,
            self.max_image_bytes,
            self.max_image_pixels,
            self.max_image_download_bytes,
            self.strip_image_metadata,
        )

    def _url(self) -> str:
        path = self.api_path if self.endpoint == "api" else self.path
        return self.base_url.rstrip("/") + path

    def _transport_settings(self) -> TransportSettings:
        api_key = self.api_key.get_secret_value() if self.api_key else ""
        return _settings_of(
            self._url(),
            self.timeout,
            self.connect_timeout,
            self.max_retries,
            self.proxy,
            self.max_response_bytes,
            self.max_connections,
            (api_key,) if api_key else (),
            api.NOT_FOUND_HINT if self.endpoint == "api" else form.NOT_FOUND_HINT,
            "user_input",
        )


@dataclass(frozen=True)
class _Call:
    """One call, checked and ready to send.

    Attributes:
        model: The model to name; `None` on the API means the service's default.
        prompt: The prompt (on the API, less the leading system messages).
        emulation: The tools or response format the call asks for.
        stop: The stop sequences in force.
        texts: The instruction texts in force (with `format_instructions`).
        query: The API query; `None` on the form.
    """

    model: str | None
    prompt: Prompt
    emulation: _Emulation
    stop: list[str] | None
    texts: dict[str, str]
    query: dict[str, str] | None = None


def _metadata(call: _Call, reply: Reply, finish_reason: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_name": reply.model or call.model or API_DEFAULT_MODEL,
        "model_provider": "dynaspark",
        "finish_reason": finish_reason,
    }
    if reply.rate_limit:
        metadata["rate_limit"] = dict(reply.rate_limit)
    return metadata


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def _chunk(message: AIMessage, id_: str | None = None) -> ChatGenerationChunk:
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
            tool_call_chunk(name=name, args=args, id=id_, index=index)
            for index, (name, args, id_) in enumerate(pieces)
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


@dataclass(frozen=True)
class _Emulation:
    """What one request asks for beyond text: tool calls, a JSON reply."""

    tools: list[dict[str, Any]]
    tool_choice: str
    parallel_tool_calls: bool | None
    response_format: dict[str, Any] | None

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> _Emulation:
        """Take (and check) the tool and response-format arguments of a call."""
        tools = check_tools(kwargs.pop("tools", None) or ())
        tool_choice = check_tool_choice(kwargs.pop("tool_choice", None), tools)
        parallel = kwargs.pop("parallel_tool_calls", None)
        if parallel is not None and not isinstance(parallel, bool):
            msg = "`parallel_tool_calls` must be True, False or None."
            raise DynasparkInputError(msg)
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            response_format = check_response_format(response_format)
        return cls(tools, tool_choice, parallel, response_format)

    @property
    def buffered(self) -> bool:
        """Whether the reply must be whole before it is parsed."""
        return bool(self.tools) or self.response_format is not None

    def instructions(self, texts: dict[str, str]) -> str | None:
        """The instructions this request needs, from the resolved `texts`."""
        return build_instructions(
            texts,
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
        )

    def read(self, text: str) -> tuple[ParsedReply, str | None]:
        """The reply split into prose and calls, and what is wrong with its form."""
        parsed = self.parse(text)
        return parsed, self.problem(parsed, text)

    def parse(self, text: str) -> ParsedReply:
        """Split the reply into prose and tool calls when tools are bound."""
        if not self.tools:
            return ParsedReply(text)
        offered = (
            {}
            if self.tool_choice == "none"
            else {
                tool["function"]["name"]: tool["function"].get("parameters")
                for tool in self.tools
            }
        )
        max_calls = 1 if self.parallel_tool_calls is False else None
        required = None if self.tool_choice in ("auto", "none") else self.tool_choice
        return parse_tool_calls(text, offered, max_calls=max_calls, required=required)

    def problem(self, parsed: ParsedReply, text: str) -> str | None:
        """What is wrong with the reply's form, if it had to take one."""
        return format_problem(
            parsed,
            text,
            tool_choice=self.tool_choice if self.tools else None,
            response_format=self.response_format,
        )


_NO_EMULATION = _Emulation.pop({})
"""The emulation of a call without tools or a response format (read only)."""


def _pop_model(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.pop("model", None)
    if model is not None and not isinstance(model, str):
        msg = f"`model` must be a model name string, not {type(model).__name__}."
        raise DynasparkInputError(msg)
    if model is not None:
        _check_model_name(model)
    return model


def _check_model_name(model: str) -> None:
    """Refuse a blank model name, which the service cannot answer."""
    if not model.strip():
        msg = f"`model` is empty: give a model name, such as {DEFAULT_MODEL!r}."
        raise DynasparkInputError(msg)


def _pop_format_retries(kwargs: dict[str, Any], default: int) -> int:
    retries = kwargs.pop("format_retries", default)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = "`format_retries` must be a whole number, 0 or more."
        raise DynasparkInputError(msg)
    return retries


def _repair_config(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> RunnableConfig:
    """The repair request runs nested in the call's run, so traces show it.

    Tagged `nostream` so LangGraph's message stream shows only the final reply.
    """
    config = RunnableConfig(run_name="ChatDynaspark format repair", tags=["nostream"])
    if run_manager is not None:
        manager_class = (
            AsyncCallbackManager
            if isinstance(run_manager, AsyncCallbackManagerForLLMRun)
            else CallbackManager
        )
        manager = manager_class(handlers=[], parent_run_id=run_manager.run_id)
        manager.set_handlers(run_manager.inheritable_handlers)
        manager.add_tags(run_manager.inheritable_tags)
        manager.add_metadata(run_manager.inheritable_metadata)
        config["callbacks"] = manager
    return config


def _check_sampling(name: str, value: Any) -> None:
    """Check one per-call sampling parameter against its documented range."""
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"`seed` must be an integer, not {value!r}."
            raise DynasparkInputError(msg)
        return
    low, high = _SAMPLING_RANGES[name]
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or not math.isfinite(value) or not low <= value <= high:
        msg = f"`{name}` must be a number from {low:g} to {high:g}, not {value!r}."
        raise DynasparkInputError(msg)


_limits_of = functools.lru_cache(maxsize=32)(ImageLimits)
_settings_of = functools.lru_cache(maxsize=32)(TransportSettings)
"""`ImageLimits` and `TransportSettings`, remembering their last results.

A call derives these frozen settings from the model's fields, which are the same
call after call (building them anew cost about 5 µs a call each). A result is
shared only by calls with equal settings, so no caller sees another's.
Positional arguments only, in field order."""


@functools.cache
def _shown_settings(
    cls: type[BaseModel],
) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[str, ...]]:
    """What `_identifying_params` shows: a reader of the fields, and their names.

    The fields a `ChatDynaspark` class adds to `BaseChatModel`, less
    `_SECRET_FIELDS`, read all at once by an `attrgetter` (in field order), and
    the names they are shown under; worked out once per class.
    """
    names = [
        name
        for name in cls.model_fields
        if name not in BaseChatModel.model_fields and name not in _SECRET_FIELDS
    ]
    return attrgetter(*names), tuple(_SHOWN_AS.get(name, name) for name in names)


_kept_params: dict[int, tuple[Any, tuple[Any, ...], dict[str, Any]]] = {}
"""By `id` of a model: the reader, the field values its `_identifying_params`
were derived from, and those. Params are a pure function of the class (its
reader) and these objects, which the entry keeps alive, so a model that reuses
an `id` gets them only if it holds the very same objects."""
_MAX_KEPT_PARAMS = 256


@functools.cache
def _arguments_of(cls: type[BaseModel]) -> frozenset[str]:
    """The names and aliases a model class takes."""
    names = set(cls.model_fields)
    for field in cls.model_fields.values():
        if field.alias:
            names.add(field.alias)
        if isinstance(field.validation_alias, AliasChoices):
            names.update(
                choice
                for choice in field.validation_alias.choices
                if isinstance(choice, str)
            )
    return frozenset(names)


def _unknown_message(unknown: list[str], known: Sequence[str]) -> str:
    hints = []
    for name in unknown:
        near = difflib.get_close_matches(name, known, n=1)
        hints.append(f"`{name}`" + (f" (did you mean `{near[0]}`?)" if near else ""))
    return (
        f"ChatDynaspark got unexpected argument(s): {', '.join(hints)}. Check the "
        "spelling; the arguments are listed in the ChatDynaspark docstring."
    )


def _warn_ignored(names: set[str], endpoint: str) -> None:
    """Warn that `names` are ignored: on the form, every sampling parameter."""
    reason = (
        "the Dynaspark form endpoint has no sampling parameters"
        if endpoint == "form"
        else "the Dynaspark API has no such parameter"
    )
    warnings.warn(
        f"ChatDynaspark ignores {', '.join(sorted(names))}: {reason}.",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The `stacklevel` of the first frame outside this package and LangChain.

    Counted from the function that calls `warnings.warn`, so that the warning
    points at the user's own line however deep LangChain's machinery is.
    """
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _INTERNAL_MODULES:
            return level
        frame = frame.f_back
        level += 1
    return 2
