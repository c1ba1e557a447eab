"""What `ChatDynaspark` supports on a surface, as a LangChain `ModelProfile`. Pure."""

from __future__ import annotations

from langchain_core.language_models.model_profile import ModelProfile

from langchain_dynaspark.endpoints.base import Capabilities

__all__ = ["model_profile"]


def model_profile(capabilities: Capabilities) -> ModelProfile:
    """The profile of a model that speaks a surface with these `capabilities`.

    Tool calling and tool choice are emulated through the prompt on every
    surface; `structured_output` (which means a native feature) is `False`, so
    `create_agent(response_format=...)` uses its tool strategy. Image input is
    what the surface can carry. An image or speech model answers with that and
    nothing else: no text, no tool calls.
    """
    images = capabilities.images
    text = capabilities.output == "text"
    return ModelProfile(
        text_inputs=True,
        image_inputs=images,
        image_url_inputs=images,
        image_tool_message=images,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        text_outputs=text,
        image_outputs=capabilities.output == "image",
        audio_outputs=capabilities.output == "audio",
        video_outputs=False,
        tool_calling=text,
        tool_choice=text,
        tool_call_streaming=text,
        structured_output=False,
        mid_conversation_system_messages=True,
    )
