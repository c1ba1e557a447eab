"""`DynasparkImageGenerationTool`: image generation as a tool any agent can call.

The tool draws with the service's image models through a `ChatDynaspark`, so it
sends as the chat model does: the same transport (pooled connections, timeouts,
retries on 429 and 5xx, proxy, size caps). Its result is
`content_and_artifact`: the model reads a short text (what was drawn, and the
image's URL), and the `ToolMessage` carries the standard image block as its
`artifact`, for the application to show or keep, not for the model to read.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from langchain_dynaspark.chat_models import ChatDynaspark
from langchain_dynaspark.media import DEFAULT_SIDE, IMAGE_MODELS, size_field

__all__ = ["DynasparkImageGenerationTool", "ImageGenerationInput"]

_SHARED = (
    "base_url",
    "api_key",
    "timeout",
    "connect_timeout",
    "max_retries",
    "proxy",
    "max_connections",
    "max_response_bytes",
    "max_request_line",
    "max_image_download_bytes",
)
"""The settings the tool takes from its `chat_model`."""


class ImageGenerationInput(BaseModel):
    """The arguments of `DynasparkImageGenerationTool`."""

    prompt: str = Field(description="What to draw, described in words.")
    width: int | None = size_field()
    height: int | None = size_field()
    model: Literal["flux", "turbo", "gptimage"] | None = Field(
        default=None,
        description="The image model: flux (default), turbo (fast) or gptimage.",
    )
    seed: int | None = Field(
        default=None, description="A seed, to draw the same picture again."
    )


class DynasparkImageGenerationTool(BaseTool):
    """Draws a picture from a prompt with Dynaspark's image models.

    Setup:
        No key is needed. The tool sends with the settings of `chat_model`
        (`base_url`, `api_key`, timeouts, retries, proxy, connection pool and
        download cap), so it can share them with the model of an agent.

    Instantiate:
        ```python
        from langchain_dynaspark import ChatDynaspark, DynasparkImageGenerationTool

        draw = DynasparkImageGenerationTool(chat_model=ChatDynaspark(timeout=90))
        ```

    Invoke with a tool call:
        ```python
        message = draw.invoke(
            {
                "type": "tool_call",
                "id": "call_1",
                "name": draw.name,
                "args": {"prompt": "a red cat", "width": 256, "height": 256},
            }
        )
        message.content  # "Drew 'a red cat' with flux, 256x256: http://..."
        message.artifact  # {"type": "image", "base64": "...", "mime_type": ...}
        ```

    In an agent:
        ```python
        from langchain.agents import create_agent

        agent = create_agent(ChatDynaspark(), tools=[draw])
        ```
    """

    name: str = "dynaspark_image_generation"
    description: str = (
        "Draw a picture from a text description. Give `prompt` (what to draw); "
        "optionally `width` and `height` in pixels (64 to 2048), `model` (flux, "
        "turbo or gptimage) and `seed`. Returns the picture's URL."
    )
    args_schema: type[BaseModel] = ImageGenerationInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    chat_model: ChatDynaspark = Field(default_factory=ChatDynaspark)
    """Whose transport settings the tool sends with (its model is not used)."""
    default_model: str = IMAGE_MODELS[0]
    """The image model drawn with when the call names none."""
    nologo: bool = False
    """Ask for pictures without the provider's logo."""

    def _run(
        self,
        prompt: str,
        *,
        width: int | None = None,
        height: int | None = None,
        model: str | None = None,
        seed: int | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Draw the picture; `ChatDynaspark.invoke` runs it on the sync bridge."""
        painter = self._painter(width, height, model, seed)
        return _result(prompt, painter, painter.invoke(prompt, _child(run_manager)))

    async def _arun(
        self,
        prompt: str,
        *,
        width: int | None = None,
        height: int | None = None,
        model: str | None = None,
        seed: int | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Draw the picture, natively asynchronous."""
        painter = self._painter(width, height, model, seed)
        drawn = await painter.ainvoke(prompt, _child(run_manager))
        return _result(prompt, painter, drawn)

    def _painter(
        self, width: int | None, height: int | None, model: str | None, seed: int | None
    ) -> ChatDynaspark:
        """An image model with `chat_model`'s transport settings and these args.

        Raises:
            ValidationError: If a size is out of range or the model unknown.
        """
        shared = {name: getattr(self.chat_model, name) for name in _SHARED}
        picture: dict[str, Any] = {"width": width, "height": height, "seed": seed}
        return ChatDynaspark(
            **shared,
            **{k: v for k, v in picture.items() if v is not None},
            model=model or self.default_model,
            nologo=self.nologo,
        )


def _child(
    run_manager: CallbackManagerForToolRun | AsyncCallbackManagerForToolRun | None,
) -> RunnableConfig:
    """The config of the tool's model call: a child run of the tool's run."""
    return RunnableConfig(callbacks=run_manager.get_child() if run_manager else None)


def _result(
    prompt: str, painter: ChatDynaspark, message: AIMessage
) -> tuple[str, dict[str, Any]]:
    """What the model reads (what was drawn, the URL), and the image block."""
    (block,) = (b for b in message.content if isinstance(b, dict))
    size = f"{painter.width or DEFAULT_SIDE}x{painter.height or DEFAULT_SIDE}"
    url = message.response_metadata.get("image_url", "")
    return f"Drew {prompt!r} with {painter.model}, {size}: {url}", block
