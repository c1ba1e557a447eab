"""Image and speech models without a network: choices, checks, requests, blocks."""

from __future__ import annotations

import base64
import io
import warnings

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from PIL import Image
from pydantic import ValidationError

from langchain_dynaspark import ChatDynaspark, DynasparkInputError
from langchain_dynaspark.emulation.tool_calls import ParsedReply
from langchain_dynaspark.endpoints import Call, configure
from langchain_dynaspark.endpoints.image import ImageEndpoint
from langchain_dynaspark.endpoints.speech import SpeechEndpoint
from langchain_dynaspark.media import audio_mime, image_mime, media_kind
from langchain_dynaspark.messages import final_chunk, last_chunk, reply_message
from langchain_dynaspark.reply import Reply


def encoded(fmt: str, size: tuple[int, int] = (3, 2)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("model", "endpoint", "surface"),
    [
        ("flux", "form", ImageEndpoint),
        ("turbo", "api", ImageEndpoint),
        ("gptimage", "form", ImageEndpoint),
        ("openai-audio", "form", SpeechEndpoint),
        ("openai-audio", "api", SpeechEndpoint),
    ],
)
def test_media_models_pick_their_surface_whatever_endpoint_says(
    model: str, endpoint: str, surface: type
) -> None:
    chat = ChatDynaspark(model=model, endpoint=endpoint)  # type: ignore[arg-type]

    (only,) = configure(chat).surfaces
    assert isinstance(only, surface)


def test_text_models_keep_their_endpoint() -> None:
    assert configure(ChatDynaspark()).name == "auto"
    assert configure(ChatDynaspark(endpoint="form")).name == "form"
    assert configure(ChatDynaspark(endpoint="api")).name == "api"
    assert media_kind("gemini-2.0-flash") is None


def test_a_seed_on_an_image_model_is_sent_not_warned_about() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chat = ChatDynaspark(model="flux", seed=11, width=512)

    request = (
        configure(chat)
        .route(Call(None, [HumanMessage("a cat")], sampling={"seed": 11}))
        .request
    )
    assert request.fields["seed"] == "11"
    assert request.fields["width"] == "512"
    assert "height" not in request.fields
    assert request.fields["model"] == "flux"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "flux", "width": 63}, "greater than or equal to 64"),
        ({"model": "flux", "height": 2049}, "less than or equal to 2048"),
        ({"model": "openai-audio", "voice": "robot"}, "Unknown voice 'robot'"),
        ({"voice": "nova"}, "`voice` applies to model='openai-audio'"),
        ({"width": 256}, "`width` applies to the image models"),
        ({"model": "openai-audio", "nologo": True}, "`nologo` applies"),
        ({"model": "turbo", "temperature": 0.2}, "takes no temperature"),
        ({"model": "flux", "image_output": "file"}, "image_output"),
    ],
)
def test_settings_that_do_not_fit_the_model_are_refused(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        ChatDynaspark(**kwargs)  # type: ignore[arg-type]


def test_speech_requests_carry_the_voice_and_the_system_prompt() -> None:
    chat = ChatDynaspark(model="openai-audio", voice="shimmer", api_key="k")
    messages = [SystemMessage("Whisper."), HumanMessage("hello")]

    request = configure(chat).route(Call(None, messages)).request

    assert request.fields["voice"] == "shimmer"
    assert request.fields["system"] == "Whisper."
    assert request.fields["user_input"] == "hello"
    assert request.fields["api_key"] == "k"
    assert request.fields["model"] == "openai-audio"


@pytest.mark.parametrize("model", ["flux", "openai-audio"])
def test_a_long_prompt_is_refused_without_pointing_at_another_surface(
    model: str,
) -> None:
    chat = ChatDynaspark(model=model)

    with pytest.raises(DynasparkInputError, match="request line") as caught:
        configure(chat).route(Call(None, [HumanMessage("cat " * 2000)]))
    assert "Shorten the conversation, or raise `max_request_line`" in str(caught.value)
    assert "endpoint=" not in str(caught.value)


def test_image_bytes_are_told_by_their_header() -> None:
    assert image_mime(encoded("PNG")) == "image/png"
    assert image_mime(encoded("JPEG")) == "image/jpeg"
    assert image_mime(encoded("GIF")) is None
    assert image_mime(encoded("WEBP")) is None
    assert image_mime(b"\x89PNG\r\n\x1a\n" + bytes(40)) is None
    assert image_mime(b"\xff\xd8\xff garbage") is None
    assert image_mime(b"") is None


def test_mp3_bytes_are_told_by_their_header() -> None:
    assert audio_mime(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb") == "audio/mpeg"
    assert audio_mime(b"\xff\xfb\x90\xc4" + bytes(10)) == "audio/mpeg"
    assert audio_mime(b'{"error": "x"}') is None
    assert audio_mime(b"<html></html>") is None
    assert audio_mime(b"") is None
    assert audio_mime(b"ID3") is None


def test_blocks_are_the_same_in_the_message_and_its_chunks() -> None:
    block = {
        "type": "image",
        "base64": base64.b64encode(b"x").decode(),
        "mime_type": "image/png",
    }
    reply = Reply(model="flux", done=True, blocks=(block,), source_url="http://h/i.png")

    message = reply_message("image", "flux", reply, ParsedReply("", [], []), cut=False)
    chunk = final_chunk("image", "flux", reply, "stop").message
    one = last_chunk(message).message

    assert message.content == [block]
    assert chunk.content == [block]
    assert one.content == [block]
    for m in (message, chunk, one):
        assert m.response_metadata["image_url"] == "http://h/i.png"
    assert message.usage_metadata is None
    assert (
        reply_message(
            "api", None, Reply("hi"), ParsedReply("hi", [], []), cut=False
        ).content
        == "hi"
    )
