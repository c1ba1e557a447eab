"""langchain-tests standard unit suite for ChatDynaspark."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_dynaspark import ChatDynaspark


class TestChatDynasparkStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatDynaspark]:
        return ChatDynaspark

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The form endpoint has no sampling parameters: ChatDynaspark warns about
        # and drops temperature/max_tokens (tested in test_chat_models.py).
        params = super().standard_chat_model_params
        return {
            k: v for k, v in params.items() if k not in {"temperature", "max_tokens"}
        }

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gemini-2.0-flash"}

    @property
    def model_override_value(self) -> str:
        return "gemini-2.0-flash-lite"

    @property
    def returns_usage_metadata(self) -> bool:
        return False

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"DYNASPARK_BASE_URL": "http://127.0.0.1:9/"},
            {},
            {"base_url": "http://127.0.0.1:9/"},
        )
