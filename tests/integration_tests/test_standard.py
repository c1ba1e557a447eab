"""langchain-tests standard integration suite, against the local server.

With `DYNASPARK_LIVE=1` the same suite runs against the real service.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.testing.server import DynasparkTestServer
from tests.conftest import LIVE, LIVE_BASE_URL


@pytest.fixture(autouse=True)
def _fresh_server(dynaspark_server: DynasparkTestServer) -> None:
    dynaspark_server.reset()
    _Server.url = LIVE_BASE_URL if LIVE else dynaspark_server.url


class _Server:
    url = ""


class TestChatDynasparkIntegration(ChatModelIntegrationTests):
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
        return {"model": "gemini-2.0-flash", "base_url": _Server.url}

    @property
    def model_override_value(self) -> str:
        return "gemini-2.0-flash-lite"

    @property
    def returns_usage_metadata(self) -> bool:
        return False
