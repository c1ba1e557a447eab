"""An input image, and the limits it is prepared for upload under."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_IMAGE_SIDE",
    "ImageLimits",
    "RawImage",
]

DEFAULT_MAX_IMAGE_SIDE = 2048
"""Longest side, in pixels, of the image sent."""
DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""Largest upload, in bytes."""
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
"""Most pixels an input image may have (pillow's own decompression-bomb limit)."""
DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""Largest image downloaded from a URL, in bytes."""


@dataclass(frozen=True)
class ImageLimits:
    """How large an image may be, and what happens to its metadata.

    Attributes:
        max_side: Longest side, in pixels, of the image sent.
        max_bytes: Largest upload, in bytes.
        max_pixels: Most pixels an input image may have (decompression bombs).
        max_download_bytes: Largest image downloaded from a URL, in bytes.
        strip_metadata: Whether EXIF, GPS, XMP, comments and text chunks are
            removed before upload.
    """

    max_side: int = DEFAULT_MAX_IMAGE_SIDE
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_download_bytes: int = DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES
    strip_metadata: bool = True


@dataclass(frozen=True)
class RawImage:
    """One input image, before pillow has looked at it.

    Attributes:
        label: How errors name it, e.g. `"Image 2 (from example.com)"`.
        data: The encoded image bytes.
        declared_type: The content type its source claimed, if any.
    """

    label: str
    data: bytes
    declared_type: str | None = None
