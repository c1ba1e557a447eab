"""Image generation and spoken replies, against the local server.

`ChatDynaspark(model="flux")` answers with one standard image block downloaded
from the `image_url` the service gives; `model="openai-audio"` with one audio
block. Both behave as any reply does in invoke, stream, batch, chains,
callbacks and the cache, and every fault is a typed error, never content.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any
from urllib.parse import quote, quote_plus
from uuid import UUID

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate
from PIL import Image

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkInputError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkResponseError,
)
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

PNG_1PX = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
    b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def image_model(server: DynasparkTestServer, **kwargs: Any) -> ChatDynaspark:
    return ChatDynaspark(
        base_url=server.url, max_retries=0, **{"model": "flux", **kwargs}
    )


def speech_model(server: DynasparkTestServer, **kwargs: Any) -> ChatDynaspark:
    return ChatDynaspark(
        base_url=server.url, max_retries=0, model="openai-audio", **kwargs
    )


def picture(message: AIMessage) -> Image.Image:
    [block] = message.content
    assert isinstance(block, dict)
    return Image.open(io.BytesIO(base64.b64decode(block["base64"])))


def image_requests(server: DynasparkTestServer) -> list[dict[str, str]]:
    return [dict(r.fields) for r in server.requests if r.path == "/api/generate_image"]


# Images


def test_an_image_model_answers_with_one_downloaded_image_block(
    server: DynasparkTestServer,
) -> None:
    model = image_model(server, width=320, height=200, seed=5, nologo=True)

    message = model.invoke("a red cat")

    [block] = message.content
    assert isinstance(block, dict)
    assert block["type"] == "image"
    assert block["mime_type"] == "image/png"
    image = picture(message)
    assert image.format == "PNG"
    assert image.size == (320, 200)
    assert message.text == ""
    assert message.usage_metadata is None
    url = message.response_metadata["image_url"]
    assert url.startswith(server.url + "/generated/")
    assert message.response_metadata["model_name"] == "flux"
    [query] = image_requests(server)
    assert query == {
        "user_input": "a red cat",
        "model": "flux",
        "width": "320",
        "height": "200",
        "nologo": "true",
        "seed": "5",
        "api_key": "TH3_API_KEY",
    }


def test_the_mime_type_is_read_from_the_bytes(server: DynasparkTestServer) -> None:
    message = image_model(server, model="turbo", width=64, height=64).invoke("a dog")

    [block] = message.content
    assert isinstance(block, dict)
    assert block["mime_type"] == "image/jpeg"
    assert picture(message).format == "JPEG"


def test_a_given_api_key_replaces_the_free_key(server: DynasparkTestServer) -> None:
    image_model(server, api_key="my-key").invoke("a red cat")

    assert image_requests(server)[0]["api_key"] == "my-key"


def test_url_output_gives_a_url_block_and_downloads_nothing(
    server: DynasparkTestServer,
) -> None:
    server.files["never.png"] = (b"not fetched", "image/png")
    server.script(Reply(body={"image_url": server.url + "/files/never.png"}))

    message = image_model(server, image_output="url").invoke("a red cat")

    assert message.content == [
        {"type": "image", "url": server.url + "/files/never.png"}
    ]
    assert message.response_metadata["image_url"] == server.url + "/files/never.png"


def test_the_endpoint_field_does_not_matter_for_an_image_model(
    server: DynasparkTestServer,
) -> None:
    for endpoint in ("auto", "form", "api"):
        message = image_model(server, endpoint=endpoint, width=64).invoke("x")
        assert picture(message).size == (64, 768)
        assert message.response_metadata["endpoint"] == "image"
    assert len(image_requests(server)) == 3
    assert {r.path for r in server.requests} == {"/api/generate_image"}


def test_a_gone_image_surface_is_an_error_never_another_surface(
    server: DynasparkTestServer,
) -> None:
    server.gone.add("image")
    with pytest.raises(DynasparkNotFoundError, match="generate_image"):
        image_model(server).invoke("a red cat")
    with pytest.raises(DynasparkNotFoundError):
        image_model(server).invoke("a red cat")
    assert {r.path for r in server.requests} == {"/api/generate_image"}
    assert len(server.requests) == 2


def test_stream_batch_and_async_give_the_same_message(
    server: DynasparkTestServer,
) -> None:
    model = image_model(server, width=96, height=96, seed=1)
    invoked = model.invoke("a red cat")

    chunks = list(model.stream("a red cat"))
    batched = model.batch(["a red cat", "a red cat"])
    awaited = asyncio.run(model.ainvoke("a red cat"))

    assert len(chunks) == 1
    assert chunks[0].content == invoked.content
    assert (
        chunks[0].response_metadata["image_url"]
        == invoked.response_metadata["image_url"]
    )
    assert [m.content for m in batched] == [invoked.content] * 2
    assert awaited.content == invoked.content


def test_astream_on_the_api_endpoint_gives_one_chunk_with_the_block(
    server: DynasparkTestServer,
) -> None:
    model = image_model(server, endpoint="api", width=64, height=64)

    async def collect() -> list[Any]:
        return [chunk async for chunk in model.astream("a red cat")]

    [chunk] = asyncio.run(collect())
    [block] = chunk.content
    assert block["type"] == "image"
    assert chunk.response_metadata["image_url"].startswith(server.url)


def test_an_image_model_works_in_a_chain(server: DynasparkTestServer) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "a {colour} cat")])
    chain = prompt | image_model(server, width=64, height=64)

    message = chain.invoke({"colour": "blue"})

    assert picture(message).size == (64, 64)
    assert image_requests(server)[0]["user_input"] == "a blue cat"


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[Any] = []
        self.ends: list[LLMResult] = []

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **_: Any) -> None:
        self.tokens.append(chunk)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **_: Any) -> None:
        self.ends.append(response)


def test_callbacks_see_the_same_message(server: DynasparkTestServer) -> None:
    recorder = Recorder()
    model = image_model(server, width=64, height=64, streaming=True)

    message = model.invoke("a red cat", config={"callbacks": [recorder]})

    [token] = recorder.tokens
    assert token.message.content == message.content
    [end] = recorder.ends
    assert end.generations[0][0].message.content == message.content


def test_the_cache_keeps_image_replies(server: DynasparkTestServer) -> None:
    set_llm_cache(InMemoryCache())
    try:
        model = image_model(server, width=64, height=64)
        first = model.invoke("a red cat")
        second = model.invoke("a red cat")
        other = image_model(server, width=80, height=64).invoke("a red cat")
    finally:
        set_llm_cache(None)

    assert second.content == first.content
    assert second.response_metadata["image_url"] == first.response_metadata["image_url"]
    assert picture(other).size == (80, 64)
    assert len(image_requests(server)) == 2


def test_a_redirected_image_is_followed(server: DynasparkTestServer) -> None:
    server.files["cat.png"] = (PNG_1PX, "image/png")
    server.script(Reply(body={"image_url": server.url + "/moved/files/cat.png"}))

    message = image_model(server).invoke("a red cat")

    assert picture(message).size == (1, 1)
    assert message.response_metadata["image_url"].endswith("/moved/files/cat.png")


def test_a_relative_image_url_is_resolved(server: DynasparkTestServer) -> None:
    server.files["cat.png"] = (PNG_1PX, "image/png")
    server.script(Reply(body={"image_url": "/files/cat.png"}))

    message = image_model(server).invoke("a red cat")

    assert message.response_metadata["image_url"] == server.url + "/files/cat.png"


def test_an_image_over_the_download_cap_is_a_response_error(
    server: DynasparkTestServer,
) -> None:
    server.files["huge.png"] = (PNG_1PX + bytes(200_000), "image/png")
    server.script(Reply(body={"image_url": server.url + "/files/huge.png"}))

    model = image_model(server, max_image_download_bytes=100_000)
    with pytest.raises(DynasparkResponseError, match="max_image_download_bytes"):
        model.invoke("a red cat secret prompt")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Not found</body></html>", "image/png"),
        (b'{"error": "busy"}', "application/json"),
        (b"\x89PNG\r\n\x1a\nthis is no PNG at all", "image/png"),
        (b"", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
    ],
    ids=["html", "json", "bad-png", "empty", "gif"],
)
def test_an_image_url_that_is_no_png_or_jpeg_is_a_response_error(
    server: DynasparkTestServer, body: bytes, content_type: str
) -> None:
    server.files["bad"] = (body, content_type)
    server.script(Reply(body={"image_url": server.url + "/files/bad"}))

    with pytest.raises(DynasparkResponseError, match="not a PNG or JPEG"):
        image_model(server).invoke("a red cat")


def test_a_missing_image_is_a_response_error(server: DynasparkTestServer) -> None:
    server.script(Reply(body={"image_url": server.url + "/files/gone.png"}))

    with pytest.raises(DynasparkResponseError, match="HTTP 404"):
        image_model(server).invoke("a red cat")


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body={"error": "model overloaded"}), "model overloaded"),
        (Reply(body={"response": "I cannot draw"}), "image_url"),
        (Reply(body="<html><title>Waking up</title></html>"), "image_url"),
        (Reply(body={"image_url": "file:///etc/passwd"}), "not an http"),
    ],
    ids=["error", "text", "html", "file-url"],
)
def test_an_answer_without_an_image_url_is_a_response_error(
    server: DynasparkTestServer, reply: Reply, match: str
) -> None:
    server.script(reply)

    with pytest.raises(DynasparkResponseError, match=match):
        image_model(server).invoke("a red cat")


def test_errors_and_rate_limits_follow_the_text_api(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(Reply(status=503), Reply(status=429, headers={"Retry-After": "2"}))
    model = ChatDynaspark(base_url=server.url, model="flux", max_retries=2, width=64)

    message = model.invoke("a red cat")

    assert picture(message).size == (64, 768)
    assert len(image_requests(server)) == 3
    assert 2.0 in sleeps
    server.script(Reply(status=429, body={"error": "Rate limit exceeded"}))
    with pytest.raises(DynasparkRateLimitError):
        image_model(server).invoke("a red cat")


def test_the_rate_limit_window_counts_image_requests() -> None:
    with DynasparkTestServer(rate_limit=2) as server:
        model = image_model(server, width=64)
        first = model.invoke("a red cat")
        ChatDynaspark(base_url=server.url, endpoint="api", max_retries=0).invoke("hi")
        with pytest.raises(DynasparkRateLimitError):
            model.invoke("a red cat")

    assert first.response_metadata["rate_limit"]["remaining"] == 1


def test_error_messages_do_not_show_the_prompt_or_key(
    server: DynasparkTestServer,
) -> None:
    prompt = "my very private drawing prompt"
    server.script(Reply(body={"error": f"cannot draw {prompt} with key s3cret-key"}))

    with pytest.raises(DynasparkResponseError) as caught:
        image_model(server, api_key="s3cret-key").invoke(prompt)

    assert prompt not in str(caught.value)
    assert "s3cret-key" not in str(caught.value)
    assert "s3cret-key" not in (caught.value.server_message or "")


@pytest.mark.parametrize("gone", ["api", "image"])
def test_a_moved_media_path_says_what_to_set_and_no_other_surface(
    server: DynasparkTestServer, gone: str
) -> None:
    server.gone.add(gone)
    model = speech_model(server) if gone == "api" else image_model(server)
    with pytest.raises(DynasparkNotFoundError) as caught:
        model.invoke("hello")
    assert "base_url=" in str(caught.value)
    assert "endpoint=" not in str(caught.value)


def test_a_failed_download_does_not_show_the_url_query(
    server: DynasparkTestServer,
) -> None:
    prompt = "my very private drawing prompt"
    hops = "/moved" * 12  # more redirects than a download follows
    # The prompt unencoded: the error names the URL as aiohttp encoded it.
    url = f"{server.url}{hops}/files/never.png?p={prompt}"
    server.script(Reply(body={"image_url": url}))

    with pytest.raises(DynasparkResponseError, match="TooManyRedirects") as caught:
        image_model(server).invoke(prompt)

    assert "?[query]" in str(caught.value)
    for form in (prompt, quote_plus(prompt), quote(prompt)):
        assert form not in str(caught.value)


# Refused before sending


def test_images_attached_to_an_image_request_are_refused(
    server: DynasparkTestServer,
) -> None:
    photo = base64.b64encode(PNG_1PX).decode()
    message = HumanMessage(
        content_blocks=[
            {"type": "text", "text": "like this"},
            {"type": "image", "base64": photo, "mime_type": "image/png"},
        ]
    )
    for model in (image_model(server), speech_model(server)):
        with pytest.raises(DynasparkInputError, match="takes no image input"):
            model.invoke([message])
    assert server.requests == []


def test_tools_and_structured_output_are_refused(server: DynasparkTestServer) -> None:
    def get_weather(city: str) -> str:
        """Get the weather."""
        return city

    for model in (image_model(server), speech_model(server)):
        with pytest.raises(DynasparkInputError, match="neither call tools"):
            model.bind_tools([get_weather]).invoke("draw")
        with pytest.raises(DynasparkInputError, match="structured output"):
            model.with_structured_output(method="json_mode").invoke("draw")
    # Refused for what the call asks, not for the instruction texts it would send.
    quiet = image_model(server, format_instructions={"json_mode": ""})
    with pytest.raises(DynasparkInputError, match="structured output"):
        quiet.with_structured_output(method="json_mode").invoke("draw")
    assert server.requests == []


@pytest.mark.parametrize("model", ["flux", "openai-audio"])
@pytest.mark.parametrize("endpoint", ["auto", "form", "api"])
def test_a_text_model_call_naming_an_image_or_speech_model_is_refused(
    server: DynasparkTestServer, model: str, endpoint: str
) -> None:
    text_model = ChatDynaspark(base_url=server.url, endpoint=endpoint)  # type: ignore[arg-type]
    with pytest.raises(
        DynasparkInputError, match=f"ChatDynaspark\\(model='{model}'\\)"
    ):
        text_model.invoke("a red cat", model=model)
    assert server.requests == []


def test_the_profile_says_what_an_image_or_speech_model_answers_with() -> None:
    text, image, speech = (
        ChatDynaspark(model=m).profile
        for m in ("gemini-2.0-flash", "flux", "openai-audio")
    )
    assert text is not None
    assert image is not None
    assert speech is not None
    assert (text["text_outputs"], text["tool_calling"], text["image_outputs"]) == (
        True,
        True,
        False,
    )
    assert (image["image_outputs"], image["text_outputs"], image["tool_calling"]) == (
        True,
        False,
        False,
    )
    assert (
        speech["audio_outputs"],
        speech["image_inputs"],
        speech["tool_calling"],
    ) == (
        True,
        False,
        False,
    )


def test_a_call_naming_another_kind_of_model_is_refused(
    server: DynasparkTestServer,
) -> None:
    model = image_model(server)

    with pytest.raises(DynasparkInputError, match="Unknown image model 'dall-e'"):
        model.invoke("a red cat", model="dall-e")
    with pytest.raises(DynasparkInputError, match="Unknown speech model 'flux'"):
        speech_model(server).invoke("hello", model="flux")
    with pytest.raises(DynasparkInputError, match="takes no temperature"):
        model.invoke("a red cat", temperature=0.5)
    assert server.requests == []
    assert model.invoke("a red cat", model="gptimage", seed=3).content
    assert image_requests(server)[0]["model"] == "gptimage"
    assert image_requests(server)[0]["seed"] == "3"


def test_settings_changed_after_construction_are_checked_before_sending(
    server: DynasparkTestServer,
) -> None:
    model = speech_model(server)
    model.voice = "robot"

    with pytest.raises(DynasparkInputError, match="Unknown voice 'robot'"):
        model.invoke("hello")
    assert server.requests == []


# Speech


def test_a_spoken_reply_is_one_audio_block(server: DynasparkTestServer) -> None:
    server.script("Hello to you too")
    model = speech_model(server, voice="nova")

    message = model.invoke([("system", "Be brief."), ("human", "hello")])

    [block] = message.content
    assert isinstance(block, dict)
    assert block["type"] == "audio"
    assert block["mime_type"] == "audio/mpeg"
    audio = base64.b64decode(block["base64"])
    assert audio.startswith(b"ID3")
    assert message.usage_metadata is None
    assert message.response_metadata["model_name"] == "openai-audio"
    assert message.response_metadata["endpoint"] == "speech"
    [request] = server.requests
    assert request.fields["model"] == "openai-audio"
    assert request.fields["voice"] == "nova"
    assert request.fields["system"] == "Be brief."
    assert request.fields["api_key"] == "TH3_API_KEY"


def test_the_default_voice_is_alloy(server: DynasparkTestServer) -> None:
    speech_model(server).invoke("hello")

    assert server.requests[0].fields["voice"] == "alloy"


def test_speech_streams_as_one_chunk_and_batches(server: DynasparkTestServer) -> None:
    model = speech_model(server, endpoint="api")

    chunks = list(model.stream("hello"))
    batched = model.batch(["hello", "hello"])

    [chunk] = chunks
    assert chunk.content == batched[0].content
    assert [b["type"] for b in chunk.content if isinstance(b, dict)] == ["audio"]


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body={"error": "voice unavailable"}), "voice unavailable"),
        (Reply(body={"response": "hello"}), "not MP3 audio"),
        (Reply(body="<html><title>Maintenance</title></html>"), "not MP3 audio"),
        (Reply(body=b"", content_type="audio/mpeg"), "empty body"),
        (Reply(body=b"RIFF0000WAVE", content_type="audio/mpeg"), "not MP3"),
    ],
    ids=["json-error", "text", "html", "empty", "not-mp3"],
)
def test_a_reply_that_is_not_audio_is_a_response_error(
    server: DynasparkTestServer, reply: Reply, match: str
) -> None:
    server.script(reply)

    with pytest.raises(DynasparkResponseError, match=match):
        speech_model(server).invoke("hello")


def test_speech_errors_are_retried_like_text(
    server: DynasparkTestServer, sleeps: list[float]
) -> None:
    server.script(Reply(status=500), "spoken after all")
    model = ChatDynaspark(base_url=server.url, model="openai-audio", max_retries=1)

    message = model.invoke("hello")

    assert [b["type"] for b in message.content if isinstance(b, dict)] == ["audio"]
    assert len(server.requests) == 2
    assert len(sleeps) == 1
