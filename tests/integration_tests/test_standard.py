"""langchain-tests standard integration suite, against the local server.

With `DYNASPARK_LIVE=1` the same suite runs against the real service.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import httpx
import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_dynaspark import transport
from langchain_dynaspark.testing.server import DynasparkTestServer
from tests.conftest import LIVE, LIVE_BASE_URL
from tests.standard_config import DynasparkApiStandardConfig, DynasparkStandardConfig


@pytest.fixture(autouse=True)
def _fresh_server(dynaspark_server: DynasparkTestServer) -> None:
    dynaspark_server.reset()
    _Server.url = LIVE_BASE_URL if LIVE else dynaspark_server.url


class _Server:
    url = ""


_STANDARD_IMAGE_URL = (
    "https://raw.githubusercontent.com/langchain-ai/docs/"
    "4d11d08b6b0e210bd456943f7a22febbd168b543/src/images/agentic-rag-output.png"
)
"""The image the standard image tests fetch, and pass to the model as a URL."""


@cache
def _standard_image() -> bytes:
    """A local stand-in for the standard tests' diagram: a PNG with a few boxes."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360), "white")
    draw = ImageDraw.Draw(image)
    for left, colour in ((40, "steelblue"), (260, "orange"), (480, "seagreen")):
        draw.rectangle((left, 140, left + 120, 220), fill=colour, outline="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _standard_image_served_locally(
    monkeypatch: pytest.MonkeyPatch, dynaspark_server: DynasparkTestServer
) -> None:
    """The image tests' download of `_STANDARD_IMAGE_URL` never leaves the machine.

    `httpx.get` (the test's own fetch) answers with a local PNG, and the model's
    download of that URL is sent to the local server, which serves the same bytes.
    """
    data = _standard_image()
    dynaspark_server.files["standard.png"] = (data, "image/png")
    real_get, real_download = httpx.get, transport.download

    def get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
        if url == _STANDARD_IMAGE_URL:
            request = httpx.Request("GET", url)
            return httpx.Response(200, content=data, request=request)
        return real_get(url, *args, **kwargs)

    async def download(url: str, **kwargs: Any) -> tuple[bytes, str]:
        if url == _STANDARD_IMAGE_URL:
            url = f"{dynaspark_server.url}/files/standard.png"
        return await real_download(url, **kwargs)

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setattr(transport, "download", download)


class TestChatDynasparkIntegration(DynasparkStandardConfig, ChatModelIntegrationTests):
    # The tool-calling and structured-output tests pass against the local
    # server's literal-minded stand-in for the model (`testing.stand_in`).
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gemini-2.0-flash", "base_url": _Server.url}


class TestChatDynasparkApiIntegration(
    DynasparkApiStandardConfig, TestChatDynasparkIntegration
):
    """The same suite on `endpoint="api"`, with token usage and no images."""
