"""Cache keys and traces, observed through LangChain's own cache and callbacks."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.tools import tool
from PIL import Image

from langchain_dynaspark import ChatDynaspark, DynasparkConnectionError
from langchain_dynaspark.testing.server import DynasparkTestServer

SECRET = "s3cr3t-pa55"


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return city


class RecordingCache(InMemoryCache):
    """An in-memory cache that remembers every key it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def lookup(self, prompt: str, llm_string: str) -> Any:
        self.keys.append(llm_string)
        return super().lookup(prompt, llm_string)

    def update(self, prompt: str, llm_string: str, return_val: Any) -> None:
        self.keys.append(llm_string)
        super().update(prompt, llm_string, return_val)


class Recorder(BaseCallbackHandler):
    """Everything a tracer is handed when a chat model run starts."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        **kwargs: Any,
    ) -> None:
        self.seen.append((serialized, kwargs))


@pytest.fixture
def cache() -> Iterator[RecordingCache]:
    cache = RecordingCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


def _png(side: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_same_settings_share_a_cached_reply(
    server: DynasparkTestServer, cache: RecordingCache
) -> None:
    first = ChatDynaspark(base_url=server.url).invoke("Hello World")
    second = ChatDynaspark(base_url=server.url).invoke("Hello World")
    assert second.text == first.text == "Echo: Hello World"
    assert len(server.requests) == 1


def test_stop_sequences_are_part_of_the_cache_key(
    server: DynasparkTestServer, cache: RecordingCache
) -> None:
    cut = ChatDynaspark(base_url=server.url, stop_sequences=["World"])
    whole = ChatDynaspark(base_url=server.url)
    assert cut.invoke("Hello World").text == "Echo: Hello "
    assert whole.invoke("Hello World").text == "Echo: Hello World"
    assert len(server.requests) == 2


def test_format_instructions_are_part_of_the_cache_key(
    server: DynasparkTestServer, cache: RecordingCache
) -> None:
    custom = ChatDynaspark(
        base_url=server.url, format_instructions={"json_mode": "JSON, please."}
    )
    default = ChatDynaspark(base_url=server.url)
    server.script('{"a": 1}', '{"a": 2}')
    assert custom.with_structured_output(method="json_mode").invoke("Hi") == {"a": 1}
    assert default.with_structured_output(method="json_mode").invoke("Hi") == {"a": 2}
    assert "JSON, please." in server.requests[0].fields["user_input"]
    assert "JSON, please." not in server.requests[1].fields["user_input"]


def test_image_limits_are_part_of_the_cache_key(
    server: DynasparkTestServer, cache: RecordingCache
) -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What colour?"},
            {"type": "image", "base64": _png(300), "mime_type": "image/png"},
        ]
    )
    ChatDynaspark(base_url=server.url, max_image_side=100).invoke([message])
    ChatDynaspark(base_url=server.url, max_image_side=200).invoke([message])
    sizes = [Image.open(io.BytesIO(r.file.data)).size for r in server.requests]  # type: ignore[union-attr]
    assert sizes == [(100, 100), (200, 200)]


def test_credentials_never_reach_callbacks_or_the_cache_key(
    server: DynasparkTestServer, cache: RecordingCache
) -> None:
    host_port = server.url.removeprefix("http://")
    model = ChatDynaspark(base_url=f"http://user:{SECRET}@{host_port}")
    recorder = Recorder()

    model.bind_tools([get_weather]).invoke("Hi", config={"callbacks": [recorder]})

    [(serialized, kwargs)] = recorder.seen
    assert kwargs["invocation_params"]["base_url"] == f"http://***@{host_port}"
    assert kwargs["metadata"]["ls_provider"] == "dynaspark"
    assert cache.keys
    for observed in (serialized, kwargs, cache.keys):
        assert SECRET not in str(observed)
    # The request itself still carries the credentials (basic auth).
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


def test_proxy_hint_on_a_loopback_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    model = ChatDynaspark(base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(DynasparkConnectionError, match=r"NO_PROXY=127\.0\.0\.1"):
        model.invoke("Hi")

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(DynasparkConnectionError) as caught:
        model.invoke("Hi")
    assert "NO_PROXY" not in str(caught.value)
