"""`ChatDynaspark`: the Dynaspark service as a LangChain chat model.

A thin class: its fields, their validation and the LangChain hooks. The work of
a call is a one-way run through modules named after its steps: `options` (the
call's arguments), `calls` (the chosen surface's request), `pipeline` (send,
read, parse) and `messages` (the `AIMessage` or chunks); each surface of the
service is a module of `langchain_dynaspark.endpoints`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.base import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_dynaspark import calls, images, media, options, pipeline, transport
from langchain_dynaspark.calls import PreparedCall
from langchain_dynaspark.emulation.format_repair import arepair, repair, repair_config
from langchain_dynaspark.emulation.instructions import (
    check_tool_choice,
    check_tools,
    resolve_instructions,
)
from langchain_dynaspark.endpoints import CHOICES, Router, capabilities, configure
from langchain_dynaspark.endpoints.api import DEFAULT_API_PATH, DEFAULT_MAX_REQUEST_LINE
from langchain_dynaspark.endpoints.form import DEFAULT_PATH
from langchain_dynaspark.messages import last_chunk, result
from langchain_dynaspark.options import DEFAULT_MODEL, KNOWN_MODELS
from langchain_dynaspark.params import identifying_params, ls_params
from langchain_dynaspark.profile import model_profile
from langchain_dynaspark.redact import scrub_url

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "KNOWN_MODELS", "ChatDynaspark"]

DEFAULT_BASE_URL = "https://dynaspark.onrender.com"
_CHARS_PER_TOKEN = 4.0
"""The ratio `count_tokens_approximately` assumes, for `get_num_tokens`."""


class ChatDynaspark(BaseChatModel):
    """Chat model for the free, no-key Dynaspark AI service.

    Dynaspark has no roles, no history and one reply per request: `ChatDynaspark`
    renders the whole conversation into the single prompt the service takes
    (each message labelled by its role) and turns the reply into an `AIMessage`.

    It speaks both surfaces of the service: the web form (`endpoint="form"`:
    images, no sampling parameters) and the documented API (`endpoint="api"`:
    sampling parameters, a system prompt, token streaming, token usage and
    rate-limit headers; text only). By default (`endpoint="auto"`) each call
    goes where it fits: the API when it fits its request line and holds no
    image, else the form; `response_metadata["endpoint"]` says which answered.

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
        endpoint: `"auto"` (default: each call where it fits), `"form"` or
            `"api"` (pinned: that surface only).
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

    Key init args — image and speech params:
        width, height: Size of a generated picture, 64 to 2048 pixels (unset:
            the service's 768); image models only.
        nologo: Ask for pictures without the provider's logo.
        image_output: `"base64"` (default) downloads the picture into the
            reply's image block; `"url"` gives a block with only its URL.
        voice: The voice of `model="openai-audio"`: `alloy` (default), `echo`,
            `fable`, `onyx`, `nova` or `shimmer`.

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

    Images and speech:
        `model="flux"` (also `"turbo"`, `"gptimage"`) answers with one standard
        image block (`{"type": "image", "base64": ..., "mime_type": ...}`),
        downloaded from the service's `image_url` (kept in
        `response_metadata["image_url"]`); `model="openai-audio"` answers with
        one audio block (`"mime_type": "audio/mpeg"`). These models pick their
        surface whatever `endpoint` says, and refuse images, tools and
        structured output before sending. See `docs/images-and-speech.md` and
        `DynasparkImageGenerationTool`.

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

    endpoint: Literal["auto", "form", "api"] = "auto"
    """Which surface of the service carries a call: `"auto"` (each call where it
    fits: the documented API when it fits the request line and holds no image,
    else the web form; a surface that answers as gone is skipped for a while),
    or pinned: `"form"` (the web form: images, no sampling parameters) or
    `"api"` (the documented API: sampling parameters, a system prompt, token
    streaming, token usage, rate-limit headers; text only)."""

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

    temperature: float | None = options.sampling_field("temperature")
    """Sampling temperature, 0 to 3 (`endpoint="api"`; the form ignores it)."""

    top_p: float | None = options.sampling_field("top_p")
    """Nucleus sampling, 0 to 1 (`endpoint="api"`; the form ignores it)."""

    presence_penalty: float | None = options.sampling_field("presence_penalty")
    """Presence penalty, -2 to 2 (`endpoint="api"`; the form ignores it)."""

    frequency_penalty: float | None = options.sampling_field("frequency_penalty")
    """Frequency penalty, -2 to 2 (`endpoint="api"`; the form ignores it)."""

    seed: int | None = None
    """Seed for reproducible sampling (`endpoint="api"`; the form ignores it)."""

    max_request_line: int = Field(default=DEFAULT_MAX_REQUEST_LINE, ge=64)
    """Longest request line, in bytes, sent on `endpoint="api"`, where the
    conversation travels in the URL. Longer requests are refused before sending.
    The default is gunicorn's limit; many proxies accept 8190."""

    timeout: float | None = Field(default=120.0, gt=0)
    """Seconds one attempt may take in all; `None` for no limit. On a stream:
    seconds to the first event, then between events (keep-alives do not count)."""

    connect_timeout: float | None = Field(default=15.0, gt=0)
    """Seconds to open a connection; `None` for no limit."""

    max_retries: int = Field(default=2, ge=0)
    """Retries after the first attempt on 429, 5xx, timeouts, connection errors."""

    proxy: str | None = None
    """HTTP(S) proxy URL; when unset, `HTTP(S)_PROXY` from the environment."""

    max_connections: int = Field(default=transport.DEFAULT_MAX_CONNECTIONS, ge=1)
    """Requests in flight at once on the pooled session this model uses (models
    with the same value share it); more wait for a free slot, and their
    `timeout` starts once they have one."""

    max_response_bytes: int = Field(default=transport.DEFAULT_MAX_RESPONSE_BYTES, ge=1)
    """Largest answer body read, in bytes; a larger one raises
    `DynasparkResponseTooLargeError` while it streams in."""

    stop: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("stop", "stop_sequences")
    )
    """Stop sequences: the reply is cut at the first one (client side)."""

    streaming: bool = False
    """Whether `invoke` also streams to callbacks (event by event on the API,
    for a plain-text reply; else the whole reply as one token)."""

    max_image_side: int = Field(default=images.DEFAULT_MAX_IMAGE_SIDE, ge=64)
    """Longest side, in pixels, of the image sent; larger ones are downscaled."""

    max_image_bytes: int = Field(default=images.DEFAULT_MAX_IMAGE_BYTES, ge=16_384)
    """Largest upload, in bytes; JPEG quality, then size, is lowered to fit."""

    max_image_pixels: int = Field(default=images.DEFAULT_MAX_IMAGE_PIXELS, ge=1)
    """Most pixels an input image may have; more is refused (decompression bombs).
    Pillow's own `PIL.Image.MAX_IMAGE_PIXELS` applies as well."""

    max_image_download_bytes: int = Field(
        default=images.DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES, ge=1
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

    width: int | None = media.size_field()
    """Width of a generated image in pixels, 64 to 2048 (image models only;
    unset: the service's 768)."""

    height: int | None = media.size_field()
    """Height of a generated image in pixels, 64 to 2048 (image models only;
    unset: the service's 768)."""

    nologo: bool = False
    """Ask for a generated image without the provider's logo (image models)."""

    image_output: media.ImageOutput = "base64"
    """`"base64"`: download a generated image into the reply's image block;
    `"url"`: give a block with only the image's URL (image models)."""

    voice: str = "alloy"
    """The voice of `model="openai-audio"`: alloy, echo, fable, onyx, nova or
    shimmer."""

    model_config = ConfigDict(populate_by_name=True)

    _warned: set[str] = PrivateAttr(default_factory=set)
    """Ignored parameters this model has warned about (once each)."""

    @model_validator(mode="before")
    @classmethod
    def _check_arguments(cls, values: Any) -> Any:
        """Refuse unknown arguments; warn about (and drop) ignored parameters."""
        if not isinstance(values, dict):
            return values
        endpoint = values.get("endpoint", "auto")
        takes = _takes_sampling(endpoint, values.get("model", values.get("model_name")))
        return options.construction_arguments(
            values, options.arguments_of(cls), takes_sampling=takes
        )

    @model_validator(mode="after")
    def _remember_warnings(self) -> Self:
        """Sampling fields warned about at construction are not warned again.

        Image and speech settings must fit the model, too (see `media`).
        """
        media.check_fields(self)
        if not _takes_sampling(self.endpoint, self.model):
            self._warned.update(
                n for n in options.SAMPLING_PARAMS if getattr(self, n) is not None
            )
        return self

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        options.check_model_name(value)
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
        return identifying_params(self, BaseChatModel)

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
        `create_agent(response_format=...)` uses its tool strategy. Image input
        is what the surface can carry (the form; the API takes text only); an
        image or speech model answers with an image or audio only.
        """
        return model_profile(capabilities(self.endpoint, self.model))

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        return ls_params(
            self._endpoint(),
            kwargs.get("model"),
            kwargs.get("temperature", self.temperature),
            stop or self.stop,
        )

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
            chunk = last_chunk(message, f"{LC_ID_PREFIX}-{run_manager.run_id}")
            message.id = chunk.message.id
            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return result(message)

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
            chunk = last_chunk(message, f"{LC_ID_PREFIX}-{run_manager.run_id}")
            message.id = chunk.message.id
            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return result(message)

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
            chunk = last_chunk(self._reply(messages, stop, run_manager, kwargs))
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        call = self._prepare(messages, stop, kwargs, stream=True)
        for chunk in transport.iterate_sync(pipeline.chunks(call)):
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
            chunk = last_chunk(await self._areply(messages, stop, run_manager, kwargs))
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            return
        call = self._prepare(messages, stop, kwargs, stream=True)
        chunks = pipeline.chunks(call)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    def _streams_events(self, kwargs: dict[str, Any]) -> bool:
        """Whether a stream yields the surface's events as they come (else buffered).

        Takes `format_retries` out: a reply with no form to meet needs no repair.
        """
        if not capabilities(self.endpoint, self.model).streaming or kwargs.get("tools"):
            return False
        if kwargs.get("response_format") is not None:
            return False
        options.pop_format_retries(kwargs, self.format_retries)
        return True

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """One request, and a repair request if the reply missed its form."""
        retries = options.pop_format_retries(kwargs, self.format_retries)
        # Checked here, in the caller's thread, so a warning names its line.
        call = self._prepare(messages, stop, dict(kwargs), stream=False)
        attempt = transport.run_sync(pipeline.attempt(call))

        def ask(conversation: list[BaseMessage], left: int) -> AIMessage:
            config = repair_config(run_manager)
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
        retries = options.pop_format_retries(kwargs, self.format_retries)
        call = self._prepare(messages, stop, dict(kwargs), stream=False)
        attempt = await pipeline.attempt(call)
        if attempt.repair_prompt is None:
            return attempt.message  # the common case: no repair, no closure

        async def ask(conversation: list[BaseMessage], left: int) -> AIMessage:
            config = repair_config(run_manager)
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
    ) -> PreparedCall:
        """Check a call's arguments and build its request; nothing is sent.

        Raises:
            DynasparkInputError: If the input cannot be sent to this endpoint.
        """
        return calls.prepare(
            self._endpoint(),
            messages,
            options.call_options(kwargs),
            sampling=_sampling_of(self),
            stop=self.stop if stop is None else stop,
            format_instructions=self.format_instructions,
            stream=stream,
            warn=self._warn_once,
        )

    def _precheck(self, kwargs: dict[str, Any]) -> None:
        """Check a call's arguments (and warn) before LangChain takes them over."""
        if kwargs:
            calls.precheck(
                self._endpoint(), kwargs, _sampling_of(self), self._warn_once
            )

    def _warn_once(self, names: Iterable[str], endpoint: str) -> None:
        """Warn about ignored `names` this model has not warned about before."""
        options.warn_once(self._warned, names, endpoint)

    def _endpoint(self) -> Router:
        """The surfaces this model may speak, configured from its fields."""
        return configure(self)


_sampling_of = attrgetter(*options.SAMPLING_PARAMS)
"""A model's own sampling parameters, in `options.SAMPLING_PARAMS` order."""


def _takes_sampling(endpoint: Any, model: Any) -> bool:
    """Whether the surface for `endpoint` and `model` takes sampling parameters.

    The image and speech models' surfaces do, whatever `endpoint` says (an image
    model only `seed`: `media.check_fields` refuses the others).
    """
    known = isinstance(endpoint, str) and endpoint in CHOICES
    return not known or capabilities(endpoint, model).sampling
