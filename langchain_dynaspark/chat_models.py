"""`ChatDynaspark`: the Dynaspark form endpoint as a LangChain chat model."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams, ModelProfile
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils import from_env
from pydantic import ConfigDict, Field, model_validator

from langchain_dynaspark.errors import DynasparkInputError
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.reply import apply_stop, reply_text
from langchain_dynaspark.transport import TransportSettings, post_form, run_sync

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "KNOWN_MODELS", "ChatDynaspark"]

DEFAULT_BASE_URL = "https://dynaspark.onrender.com"
DEFAULT_PATH = "/generate_response"
DEFAULT_MODEL = "gemini-1.5-flash"
KNOWN_MODELS = (
    "gemini-1.5-flash",
    "gemini-1.5-flash-8b",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
)
"""Models the service is known to offer. Any other name is sent unchanged."""

_UNSUPPORTED_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_output_tokens",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    }
)
"""Sampling parameters other chat models take and the form endpoint has not."""


class ChatDynaspark(BaseChatModel):
    """Chat model for the free, no-key Dynaspark AI service.

    Dynaspark has no roles, no history and one reply per request: `ChatDynaspark`
    renders the whole conversation into the single prompt the service takes
    (each message labelled by its role) and turns the reply into an `AIMessage`.

    Setup:
        No API key is needed.

        ```bash
        pip install langchain-dynaspark
        ```

        `DYNASPARK_BASE_URL` overrides the service address, e.g. to point at the
        local test server (`python -m langchain_dynaspark.testing.server`).

    Key init args — completion params:
        model: Model name (alias `model_name`), default `"gemini-1.5-flash"`.
            Known: `gemini-1.5-flash`, `gemini-1.5-flash-8b`, `gemini-2.0-flash`,
            `gemini-2.0-flash-lite`; any other string is sent unchanged.
        stop: Stop sequences, applied to the reply on the client side.
        streaming: Whether `invoke` goes through `stream` (callbacks get the reply
            as a token event).

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
        The service answers in one piece, so a stream yields the whole reply as
        one chunk, as soon as it arrives.

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

        `finish_reason` is `"stop_sequence"` when a stop sequence cut the reply.
        The service reports no token usage, so `usage_metadata` is not set.
    """

    model: str = Field(default=DEFAULT_MODEL, alias="model_name")
    """Model name, sent unchanged as the form's `ai_model` field."""

    base_url: str = Field(
        default_factory=from_env("DYNASPARK_BASE_URL", default=DEFAULT_BASE_URL)
    )
    """Service address; read from `DYNASPARK_BASE_URL` when not given."""

    path: str = DEFAULT_PATH
    """Path of the form endpoint; the service has renamed it before."""

    timeout: float | None = Field(default=120.0, gt=0)
    """Seconds one attempt may take in all; `None` for no limit."""

    connect_timeout: float | None = Field(default=15.0, gt=0)
    """Seconds to open a connection; `None` for no limit."""

    max_retries: int = Field(default=2, ge=0)
    """Retries after the first attempt on 429, 5xx, timeouts, connection errors."""

    proxy: str | None = None
    """HTTP(S) proxy URL; when unset, `HTTP(S)_PROXY` from the environment."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences: the reply is cut at the first one (client side)."""

    streaming: bool = False
    """Whether `invoke` goes through `stream`."""

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_unsupported_params(cls, values: Any) -> Any:
        """Warn about (and drop) sampling parameters the service does not take."""
        if isinstance(values, dict):
            given = _UNSUPPORTED_PARAMS.intersection(values)
            if given:
                _warn_unsupported(given)
                values = {k: v for k, v in values.items() if k not in given}
        return values

    @property
    def _llm_type(self) -> str:
        return "dynaspark-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "path": self.path}

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What `ChatDynaspark` supports, for any model the service offers."""
        return ModelProfile(
            text_inputs=True,
            image_inputs=False,
            image_url_inputs=False,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            text_outputs=True,
            image_outputs=False,
            audio_outputs=False,
            video_outputs=False,
            tool_calling=False,
            structured_output=False,
            mid_conversation_system_messages=True,
        )

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="dynaspark",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        if ls_stop := stop or self.stop:
            params["ls_stop"] = ls_stop
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(
                self._stream(messages, stop, run_manager, **kwargs)
            )
        return _result(run_sync(self._acall(messages, stop, kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(
                self._astream(messages, stop, run_manager, **kwargs)
            )
        return _result(await self._acall(messages, stop, kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunk = _chunk(run_sync(self._acall(messages, stop, kwargs)))
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
        chunk = _chunk(await self._acall(messages, stop, kwargs))
        if run_manager:
            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        yield chunk

    async def _acall(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        """One request: prompt -> form POST -> reply text -> `AIMessage`."""
        model = _pop_model(kwargs) or self.model
        _reject_unknown(kwargs)
        prompt = build_prompt(messages)
        body = await post_form(
            self._transport_settings(),
            {"user_input": prompt.text, "ai_model": model},
            None,
        )
        text, cut = apply_stop(reply_text(body), self.stop if stop is None else stop)
        finish_reason: Literal["stop", "stop_sequence"] = (
            "stop_sequence" if cut else "stop"
        )
        return AIMessage(
            content=text,
            response_metadata={
                "model_name": model,
                "model_provider": "dynaspark",
                "finish_reason": finish_reason,
            },
        )

    def _transport_settings(self) -> TransportSettings:
        return TransportSettings(
            url=self.base_url.rstrip("/") + self.path,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_retries=self.max_retries,
            proxy=self.proxy,
        )


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def _chunk(message: AIMessage) -> ChatGenerationChunk:
    """The whole reply as the one and last chunk of a stream."""
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=message.content,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )


def _pop_model(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.pop("model", None)
    if model is not None and not isinstance(model, str):
        msg = f"`model` must be a model name string, not {type(model).__name__}."
        raise DynasparkInputError(msg)
    return model


def _reject_unknown(kwargs: dict[str, Any]) -> None:
    ignored = _UNSUPPORTED_PARAMS.intersection(kwargs)
    if ignored:
        _warn_unsupported(ignored)
    unknown = sorted(set(kwargs) - ignored)
    if unknown:
        msg = (
            f"ChatDynaspark got unexpected keyword argument(s): {', '.join(unknown)}. "
            "Per call it takes `model` and `stop`."
        )
        raise DynasparkInputError(msg)


def _warn_unsupported(names: set[str] | frozenset[str]) -> None:
    warnings.warn(
        f"ChatDynaspark ignores {', '.join(sorted(names))}: the Dynaspark form "
        "endpoint has no sampling parameters.",
        UserWarning,
        stacklevel=3,
    )
