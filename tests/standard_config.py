"""What both langchain-tests standard suites need to know about ChatDynaspark."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests.chat_models import ChatModelTests

from langchain_dynaspark import ChatDynaspark


class DynasparkStandardConfig:
    """Capability flags and parameters, set to the truth, shared by both suites.

    Listed before the langchain-tests base class, so these properties win.
    """

    @property
    def chat_model_class(self) -> type[ChatDynaspark]:
        return ChatDynaspark

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The form endpoint has no sampling parameters: ChatDynaspark warns about
        # and drops temperature/max_tokens (tested in test_chat_models.py).
        params = super().standard_chat_model_params  # type: ignore[misc]
        return {
            k: v for k, v in params.items() if k not in {"temperature", "max_tokens"}
        }

    @property
    def model_override_value(self) -> str:
        return "gemini-2.0-flash-lite"

    @property
    def returns_usage_metadata(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    # Tool calling and structured output are emulated through the prompt.
    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True


class DynasparkApiStandardConfig:
    """The same suites on `endpoint="api"`: usage metadata on, image input off.

    Listed before the form's test class, so these properties win over it.
    """

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "endpoint": "api"}  # type: ignore[misc]

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The API takes temperature; max_tokens exists on neither endpoint.
        params = ChatModelTests.standard_chat_model_params.fget(self)  # type: ignore[attr-defined]
        return {k: v for k, v in params.items() if k != "max_tokens"}

    @property
    def model_override_value(self) -> str:
        return "openai-large"

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False
