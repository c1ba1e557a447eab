"""Image blocks -> the one file the Dynaspark form takes in its `file` field.

The service takes one image per request, so `prepare_upload` turns every image of
a conversation (standard LangChain image blocks, as collected by
`prompt.build_prompt`) into a single `Upload`:

- Inline images (`base64`, `data:` URLs) are decoded; `http(s)` URLs are
  downloaded concurrently on the pooled session, each refused past
  `max_download_bytes` while it streams in. Any other URL scheme is refused
  before any request.
- One image is sent as it is when it is a PNG, JPEG, WEBP or GIF that needs no
  change: within `max_side` and `max_bytes`, upright, well-formed, and with no
  metadata to strip. Otherwise it is decoded once, turned upright (EXIF
  orientation), downscaled to `max_side` (JPEG draft mode decodes big photos at
  a reduced scale), stripped of metadata (EXIF, GPS, XMP, comments, text
  chunks) and re-encoded: JPEG stays JPEG, PNG stays PNG, any other format
  becomes PNG, or JPEG for photos.
- Several images are composed, in order, into one labelled grid ("Image 1",
  "Image 2", ...), matching the `[Image N]` marks in the prompt text. The grid
  is planned from the headers alone; then each image is decoded (inline data
  from base64 again), drawn and dropped before the next, so memory holds one
  decoded image at a time whatever the format and the number of images.
- The result is kept under `max_bytes` by lowering JPEG quality, then size.

Unreadable, truncated or corrupt images, decompression bombs (more than
`max_pixels`, or over pillow's `Image.MAX_IMAGE_PIXELS`) and non-image downloads
raise `DynasparkImageError` before anything is sent to the service.

Pillow is imported only when an image is prepared, and the pillow work runs in a
worker thread, off the event loop.

This module finds the images and fetches them; `image_codec` prepares one
image, `image_grid` composes several, and `image_limits` holds the input image
and its limits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from langchain_dynaspark import transport
from langchain_dynaspark.errors import DynasparkImageError
from langchain_dynaspark.image_codec import prepare_single
from langchain_dynaspark.image_grid import composite
from langchain_dynaspark.image_limits import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_IMAGE_SIDE,
    ImageLimits,
    RawImage,
)
from langchain_dynaspark.transport import TransportSettings, Upload

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_IMAGE_SIDE",
    "ImageLimits",
    "RawImage",
    "build_upload",
    "prepare_upload",
]

_URL_SAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class _Source:
    """Where one image comes from: inline data, or an http(s) URL to download."""

    number: int
    label: str
    url: str | None = None
    base64: str | None = None
    data: bytes | None = None


async def prepare_upload(
    images: Sequence[Mapping[str, Any]],
    *,
    limits: ImageLimits,
    settings: TransportSettings,
) -> Upload:
    """Turn the conversation's image blocks into the one file to upload.

    Args:
        images: Standard LangChain image blocks (`base64`, or `url`: http(s) or
            `data:`), in the order of their `[Image N]` marks.
        limits: Size limits and metadata handling.
        settings: Transport settings used to download URL images.

    Returns:
        The file for the form's `file` field.

    Raises:
        DynasparkImageError: If an image cannot be fetched, read or prepared.
    """
    sources = [_source(number, block) for number, block in enumerate(images, 1)]
    downloads = await _download_all(sources, limits, settings)
    return await asyncio.to_thread(_build_from_sources, sources, downloads, limits)


def build_upload(images: Sequence[RawImage], limits: ImageLimits) -> Upload:
    """Prepare one image, or a labelled grid of several, for upload. Blocking.

    Args:
        images: The encoded images, in order.
        limits: Size limits and metadata handling.

    Returns:
        The file for the form's `file` field.

    Raises:
        DynasparkImageError: If an image cannot be read or prepared.
    """
    return _build([functools.partial(_given, raw) for raw in images], limits)


def _build(loaders: Sequence[Callable[[], RawImage]], limits: ImageLimits) -> Upload:
    """Prepare the images that `loaders` produce, each when it is needed."""
    if len(loaders) == 1:
        return prepare_single(loaders[0](), limits)
    return composite(loaders, limits)


def _given(raw: RawImage) -> RawImage:
    return raw


def _source(number: int, block: Mapping[str, Any]) -> _Source:
    label = f"Image {number}"
    if block.get("base64"):
        return _Source(number, label, base64=block["base64"])
    url = str(block.get("url") or "")
    if url[:5].lower() == "data:":
        return _data_url(number, label, url)
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return _Source(number, f"{label} (from {parts.hostname})", url=url)
    scheme = f"a {parts.scheme}: URL" if parts.scheme else "a URL without a scheme"
    msg = (
        f"{label} is given as {scheme}. Only http(s) URLs are downloaded; send a "
        "local file as base64 data (an `image` block with `base64` and "
        "`mime_type`, or a `data:` URL)."
    )
    raise DynasparkImageError(msg)


def _data_url(number: int, label: str, url: str) -> _Source:
    header, comma, payload = url[5:].partition(",")
    if not comma:
        msg = f"{label} is a malformed data: URL (no comma before the data)."
        raise DynasparkImageError(msg)
    params = [param.strip().lower() for param in header.split(";")]
    if "base64" in params:
        return _Source(number, label, base64=payload)
    return _Source(number, label, data=unquote_to_bytes(payload))


async def _download_all(
    sources: Sequence[_Source], limits: ImageLimits, settings: TransportSettings
) -> dict[str, tuple[bytes, str]]:
    """Download every distinct URL concurrently; on a failure, cancel the rest."""
    first_use: dict[str, _Source] = {}
    for source in sources:
        if source.url is not None:
            first_use.setdefault(source.url, source)
    if not first_use:
        return {}
    tasks = {
        url: asyncio.ensure_future(_download(source, limits, settings))
        for url, source in first_use.items()
    }
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    return {url: task.result() for url, task in tasks.items()}


async def _download(
    source: _Source, limits: ImageLimits, settings: TransportSettings
) -> tuple[bytes, str]:
    assert source.url is not None
    try:
        return await transport.download(
            source.url, max_bytes=limits.max_download_bytes, settings=settings
        )
    except DynasparkImageError as exc:
        raise DynasparkImageError(f"Image {source.number}: {exc}") from None


def _build_from_sources(
    sources: Sequence[_Source],
    downloads: Mapping[str, tuple[bytes, str]],
    limits: ImageLimits,
) -> Upload:
    loaders = [functools.partial(_raw, source, downloads) for source in sources]
    return _build(loaders, limits)


def _raw(source: _Source, downloads: Mapping[str, tuple[bytes, str]]) -> RawImage:
    """The bytes of `source`, as a `RawImage`.

    Inline data is decoded anew on each call, so no more than one image's
    decoded bytes need be held at a time.
    """
    if source.url is not None:
        data, declared = downloads[source.url]
        return RawImage(source.label, data, declared)
    return RawImage(source.label, _inline_bytes(source))


def _inline_bytes(source: _Source) -> bytes:
    if source.data is not None:
        return source.data
    assert source.base64 is not None
    # Standard or URL-safe alphabet, with or without padding and line breaks.
    text = "".join(source.base64.split()).translate(_URL_SAFE)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        msg = f"{source.label} is not valid base64 data."
        raise DynasparkImageError(msg) from None
