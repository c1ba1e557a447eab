"""What the service's image and speech models take and give back. Pure.

The image models (`flux`, `turbo`, `gptimage`) answer a prompt with a picture,
`openai-audio` with speech. This module holds their names and settings, checks
a model's settings and a call against them (before anything is sent), tells a
PNG, JPEG or MP3 body from anything else by its first bytes, and makes the
standard LangChain content blocks the replies hold.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import Field

from langchain_dynaspark.errors import DynasparkInputError
from langchain_dynaspark.options import SAMPLING_PARAMS

__all__ = [
    "DEFAULT_SIDE",
    "IMAGE_MODELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "SPEECH_MODEL",
    "VOICES",
    "ImageOutput",
    "MediaFields",
    "audio_block",
    "audio_mime",
    "check_call",
    "check_fields",
    "check_kind",
    "image_block",
    "image_mime",
    "media_kind",
    "size_field",
    "url_block",
]

IMAGE_MODELS = ("flux", "turbo", "gptimage")
"""The service's image models; `flux` is its default."""
SPEECH_MODEL = "openai-audio"
"""The model that answers with speech."""
VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")
"""The voices of `openai-audio`; `alloy` is the official client's default."""
MIN_SIDE = 64
MAX_SIDE = 2048
"""The documented range of an image's `width` and `height`, in pixels."""
DEFAULT_SIDE = 768
"""The service's `width` and `height` when none is sent."""
ImageOutput = Literal["base64", "url"]
"""`"base64"`: the image is downloaded into the reply; `"url"`: only its URL."""

_WHAT = {"image": "an image", "speech": "a spoken reply"}
_IMAGE_FIELDS = ("width", "height", "nologo", "image_output")
_NOT_FOR_IMAGES = tuple(n for n in SAMPLING_PARAMS if n != "seed")
"""The sampling parameters an image model does not take: all but `seed`."""
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


class MediaFields(Protocol):
    """The model settings the image and speech models read."""

    model: str
    width: int | None
    height: int | None
    voice: str
    temperature: float | None
    top_p: float | None
    presence_penalty: float | None
    frequency_penalty: float | None

    @property
    def model_fields_set(self) -> set[str]:
        """The fields given by hand."""
        ...


def media_kind(model: object) -> Literal["image", "speech"] | None:
    """Which media `model` answers with: `"image"`, `"speech"`, or `None` (text)."""
    if model in IMAGE_MODELS:
        return "image"
    return "speech" if model == SPEECH_MODEL else None


def size_field() -> Any:
    """A `width` or `height` field: unset (the service's 768), or 64 to 2048."""
    return Field(default=None, ge=MIN_SIDE, le=MAX_SIDE)


def check_fields(fields: MediaFields) -> None:
    """Refuse settings the model cannot use, saying why.

    Image settings (`width`, `height`, `nologo`, `image_output`) belong to the
    image models, `voice` to `openai-audio`; an image model takes no sampling
    parameter but `seed`.

    Raises:
        DynasparkInputError: If a setting does not fit the model.
    """
    kind = media_kind(fields.model)
    given = fields.model_fields_set
    if fields.voice not in VOICES:
        msg = f"Unknown voice {fields.voice!r}: choose one of {', '.join(VOICES)}."
        raise DynasparkInputError(msg)
    for name in (w for w in _IMAGE_FIELDS if w in given and kind != "image"):
        msg = (
            f"`{name}` applies to the image models ({', '.join(IMAGE_MODELS)}), not "
            f"to model={fields.model!r}. Choose an image model, or leave it out."
        )
        raise DynasparkInputError(msg)
    if "voice" in given and kind != "speech":
        msg = (
            f"`voice` applies to model={SPEECH_MODEL!r} (spoken replies), not to "
            f"model={fields.model!r}. Set model={SPEECH_MODEL!r}, or leave it out."
        )
        raise DynasparkInputError(msg)
    if kind == "image":
        _refuse_sampling(
            [n for n in _NOT_FOR_IMAGES if getattr(fields, n) is not None],
            fields.model,
        )


def check_call(
    kind: Literal["image", "speech"],
    *,
    model: str,
    images: int,
    sampling: Mapping[str, float | int],
) -> None:
    """Refuse a call an image or speech model cannot answer; nothing is sent.

    Which model a call may name, and whether it may bind tools, is settled
    before, for every model (`check_kind`).

    Raises:
        DynasparkInputError: If the call attaches images, or gives an image
            model a sampling parameter other than `seed`.
    """
    if images:
        msg = (
            f"model={model!r} answers with {_WHAT[kind]} from a text prompt and "
            f"takes no image input, but the conversation holds {images} image(s). "
            "Remove them, or describe them in words."
        )
        raise DynasparkInputError(msg)
    if kind == "image":
        _refuse_sampling([n for n in sampling if n != "seed"], model)


def check_kind(
    output: Literal["text", "image", "audio"],
    model: str | None,
    *,
    emulated: bool,
) -> None:
    """Refuse a call that asks a model for what its kind of reply cannot hold.

    Args:
        output: What the model's replies hold (its surface's `output`).
        model: The model the call names, if any.
        emulated: Whether the call binds tools or asks for structured output.

    Raises:
        DynasparkInputError: If the call names a model of another kind (an
            image or speech model on a text model, or the reverse), or an image
            or speech model's call binds tools or asks for structured output.
    """
    named = media_kind(model)
    if output == "text":
        if named is not None:
            msg = (
                f"model={model!r} answers with {_WHAT[named]}, which a text "
                f"model's call cannot ask for: create one, "
                f"`ChatDynaspark(model={model!r})`."
            )
            raise DynasparkInputError(msg)
        return
    kind: Literal["image", "speech"] = "image" if output == "image" else "speech"
    if model is not None and named != kind:
        known = IMAGE_MODELS if kind == "image" else (SPEECH_MODEL,)
        msg = (
            f"Unknown {kind} model {model!r}: this model answers with "
            f"{_WHAT[kind]}, so the call's model must be one of {', '.join(known)}."
        )
        raise DynasparkInputError(msg)
    if emulated:
        msg = (
            f"This model answers with {_WHAT[kind]}, so it can neither call tools "
            "nor give structured output (`bind_tools`, `with_structured_output`). "
            "Use a text model for those; to let an agent draw, give it "
            "`DynasparkImageGenerationTool`."
        )
        raise DynasparkInputError(msg)


def image_mime(body: bytes) -> str | None:
    """`image/png` or `image/jpeg` if `body` is one (its header decodes), else `None`.

    The first bytes must be a PNG or JPEG signature, and pillow must read the
    header (no pixels are decoded).
    """
    if body.startswith(_PNG):
        expected = "PNG"
    elif body.startswith(_JPEG):
        expected = "JPEG"
    else:
        return None
    # Imported here: pillow is needed only once an image is read.
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        with Image.open(io.BytesIO(body), formats=[expected]) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    if width < 1 or height < 1:
        return None
    return f"image/{expected.lower()}"


def audio_mime(body: bytes) -> str | None:
    """`audio/mpeg` if `body` begins as MP3 does (ID3 tag or frame), else `None`."""
    if body.startswith(b"ID3") and len(body) > 10:
        return "audio/mpeg"
    if len(body) > 4 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    return None


def image_block(data: bytes, mime_type: str) -> dict[str, Any]:
    """A standard image content block holding `data`."""
    return {
        "type": "image",
        "base64": base64.b64encode(data).decode("ascii"),
        "mime_type": mime_type,
    }


def url_block(url: str) -> dict[str, Any]:
    """A standard image content block pointing at `url`."""
    return {"type": "image", "url": url}


def audio_block(data: bytes, mime_type: str) -> dict[str, Any]:
    """A standard audio content block holding `data`."""
    return {
        "type": "audio",
        "base64": base64.b64encode(data).decode("ascii"),
        "mime_type": mime_type,
    }


def _refuse_sampling(names: Sequence[str], model: str) -> None:
    if names:
        msg = (
            f"model={model!r} draws an image and takes no {', '.join(names)}; of "
            "the sampling parameters it takes only `seed`. Leave them out."
        )
        raise DynasparkInputError(msg)
