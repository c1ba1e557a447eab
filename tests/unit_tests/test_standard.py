"""langchain-tests standard unit suite for ChatDynaspark."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from tests.standard_config import DynasparkApiStandardConfig, DynasparkStandardConfig


class TestChatDynasparkStandard(DynasparkStandardConfig, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gemini-2.0-flash"}

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"DYNASPARK_BASE_URL": "http://127.0.0.1:9/"},
            {},
            {"base_url": "http://127.0.0.1:9/"},
        )


class TestChatDynasparkApiStandard(
    DynasparkApiStandardConfig, TestChatDynasparkStandard
):
    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "DYNASPARK_BASE_URL": "http://127.0.0.1:9/",
                "DYNASPARK_API_KEY": "sk-from-env",
            },
            {"endpoint": "api"},
            {"base_url": "http://127.0.0.1:9/", "api_key": "sk-from-env"},
        )
