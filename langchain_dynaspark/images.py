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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

from langchain_dynaspark import transport
from langchain_dynaspark.errors import DynasparkError, DynasparkImageError
from langchain_dynaspark.transport import TransportSettings, Upload

if TYPE_CHECKING:
    from PIL import Image

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

DEFAULT_MAX_IMAGE_SIDE = 2048
"""Longest side, in pixels, of the image sent."""
DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""Largest upload, in bytes."""
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
"""Most pixels an input image may have (pillow's own decompression-bomb limit)."""
DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""Largest image downloaded from a URL, in bytes."""

_PASS_THROUGH = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
}
"""Formats the service takes as they are: extension and content type."""
_NEEDS_GHOSTSCRIPT = frozenset({"EPS"})
"""Formats pillow reads by running an external interpreter: never loaded."""
_METADATA_KEYS = frozenset(
    {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc"}
)
"""`Image.info` keys that carry metadata (EXIF with GPS and camera, XMP, ...)."""
_HARMLESS_JPEG_SEGMENTS = frozenset({"APP0", "APP2", "APP14"})
"""JPEG segments that are not metadata: JFIF, ICC profile, Adobe colour."""
_PROFILE_KEPT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})
"""Modes whose ICC profile still describes the image once it is L, LA, RGB(A)."""
_URL_SAFE = str.maketrans("-_", "+/")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION = 0x0112
_UPRIGHT = 1
_SWAPS_SIDES = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the image a quarter turn."""
_JPEG_QUALITIES = (85, 70, 55, 40)
_SHRINK = 0.75
_MIN_SIDE = 64
_MIN_LABEL = 16
_WHITE = (255, 255, 255)
_BACKGROUND = (160, 160, 160)
_LABEL_INK = (0, 0, 0)
_LABEL_PAPER = (232, 232, 232)


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
        return _single(loaders[0](), limits)
    return _composite(loaders, limits)


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


@contextmanager
def _reading(label: str) -> Iterator[None]:
    """Turn pillow's failures while reading `label` into `DynasparkImageError`."""
    from PIL import Image  # noqa: PLC0415 (lazy)

    try:
        yield
    except DynasparkError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DynasparkImageError(_bomb(label)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        msg = (
            f"{label} is truncated or corrupt and cannot be decoded "
            f"({type(exc).__name__}). Send an intact image."
        )
        raise DynasparkImageError(msg) from None


def _bomb(label: str) -> str:
    return (
        f"{label} has more pixels than pillow's decompression-bomb limit "
        "(PIL.Image.MAX_IMAGE_PIXELS) allows, and was refused. Send a smaller image."
    )


def _open(raw: RawImage, limits: ImageLimits) -> Image.Image:
    """Read the header of `raw` (no pixels yet) and check it against the limits."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 (lazy)

    with _reading(raw.label):
        try:
            image = Image.open(io.BytesIO(raw.data))
        except UnidentifiedImageError:
            said = (
                f" (the server said {raw.declared_type})" if raw.declared_type else ""
            )
            msg = (
                f"{raw.label} is not an image that can be read{said}. Send PNG, "
                "JPEG, WEBP, GIF, or another format pillow opens (BMP, TIFF, ...)."
            )
            raise DynasparkImageError(msg) from None
    if image.format in _NEEDS_GHOSTSCRIPT:
        image.close()
        msg = f"{raw.label} is {image.format}, which is not accepted. Send PNG or JPEG."
        raise DynasparkImageError(msg)
    width, height = image.size
    if width * height > limits.max_pixels:
        image.close()
        msg = (
            f"{raw.label} is {width}x{height} pixels, more than max_image_pixels "
            f"({limits.max_pixels}) allows: it could be a decompression bomb. Send "
            "a smaller image, or raise max_image_pixels."
        )
        raise DynasparkImageError(msg)
    if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
        image.close()
        raise DynasparkImageError(_bomb(raw.label))
    return image


def _orientation(image: Image.Image, data: bytes) -> int:
    """The EXIF orientation of `image` (encoded as `data`), without decoding it.

    Pillow looks for a PNG's EXIF after the pixel data by decoding them all;
    the chunk headers say where it is without that.
    """
    from PIL import Image  # noqa: PLC0415 (lazy)

    if image.format == "PNG" and "exif" not in image.info:
        exif = Image.Exif()
        late = _png_chunk(data, b"eXIf")
        if late is not None:
            exif.load(late)
    else:
        exif = image.getexif()
    value = exif.get(_ORIENTATION, _UPRIGHT)
    return value if isinstance(value, int) else _UPRIGHT


def _png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The data of the first `kind` chunk of a PNG, found by its chunk headers."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, found = struct.unpack_from(">I4s", data, offset)
        if found == kind:
            return data[offset + 8 : offset + 8 + length]
        if found == b"IEND":
            return None
        offset += 12 + length
    return None


def _upright_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    return _as_stored(image.size, orientation)


def _as_stored(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """`size` with its sides swapped if `orientation` turns the image a quarter.

    The swap is its own inverse: it maps stored sizes to upright ones too.
    """
    width, height = size
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int] | None:
    """The largest size within `box` with the aspect of `size`; `None` if it fits."""
    width, height = size
    if width <= box[0] and height <= box[1]:
        return None
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode(
    image: Image.Image, label: str, orientation: int, target: tuple[int, int] | None
) -> None:
    """Decode the pixels once; big JPEGs at the smallest scale still >= `target`."""
    if target is not None:
        image.draft(None, _as_stored(target, orientation))
    with _reading(label):
        image.load()


def _single(raw: RawImage, limits: ImageLimits) -> Upload:
    image = _open(raw, limits)
    with _reading(raw.label):
        orientation = _orientation(image, raw.data)
    target = _fit(_upright_size(image, orientation), (limits.max_side,) * 2)
    _decode(image, raw.label, orientation, target)
    if target is None and _sendable_as_is(image, raw.data, orientation, limits):
        extension, content_type = _PASS_THROUGH[image.format or ""]
        return Upload(f"image.{extension}", content_type, raw.data)
    source_format = image.format
    keep = _kept_info(image, limits)
    prepared = _upright(_scaled(_normalized(image), target, orientation), orientation)
    del image
    if source_format in ("JPEG", "MPO"):
        kind = "JPEG"
    elif source_format == "PNG" or not _is_photo(prepared):
        kind = "PNG"
    else:
        kind = "JPEG"
    return _encode(prepared, kind, "image", limits, keep)


def _sendable_as_is(
    image: Image.Image, data: bytes, orientation: int, limits: ImageLimits
) -> bool:
    return (
        image.format in _PASS_THROUGH
        and image.mode != "CMYK"
        and len(data) <= limits.max_bytes
        and orientation == _UPRIGHT
        and not (limits.strip_metadata and _has_metadata(image))
        and _ends_cleanly(image.format or "", data)
    )


def _has_metadata(image: Image.Image) -> bool:
    """Whether the decoded image carries metadata that stripping would remove."""
    if _METADATA_KEYS.intersection(image.info):
        return True
    if image.format == "PNG":
        return bool(getattr(image, "text", None))
    if image.format == "JPEG":
        segments = getattr(image, "applist", [])
        return any(name not in _HARMLESS_JPEG_SEGMENTS for name, _ in segments)
    return False


def _ends_cleanly(image_format: str, data: bytes) -> bool:
    """Whether the file ends where its format says (no truncation, no trailer)."""
    if image_format == "PNG":
        return data.endswith(b"IEND\xaeB`\x82")
    if image_format == "JPEG":
        return data.endswith(b"\xff\xd9")
    if image_format == "GIF":
        return data.endswith(b";")
    riff_size = int.from_bytes(data[4:8], "little")
    return len(data) == 8 + riff_size + (riff_size & 1)


def _kept_info(image: Image.Image, limits: ImageLimits) -> dict[str, Any]:
    """Encoder options carried over: the ICC profile, and EXIF if not stripped."""
    kept: dict[str, Any] = {}
    profile = image.info.get("icc_profile")
    if profile and image.mode in _PROFILE_KEPT_MODES:
        kept["icc_profile"] = profile
    if not limits.strip_metadata:
        exif = image.getexif()
        exif.pop(_ORIENTATION, None)
        if exif:
            kept["exif"] = exif.tobytes()
    return kept


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    from PIL import Image  # noqa: PLC0415 (lazy)

    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return image if method is None else image.transpose(method)


def _normalized(image: Image.Image) -> Image.Image:
    """`image` as L, LA, RGB or RGBA; alpha only where something is see-through."""
    mode = image.mode
    if mode == "I" or mode.startswith("I;16"):
        converted = image.convert("I").point(lambda value: value / 256).convert("L")
    elif mode in ("PA", "RGBa") or "transparency" in image.info:
        converted = image.convert("RGBA")
    elif mode in ("L", "RGB", "LA", "RGBA"):
        converted = image
    elif mode == "1":
        converted = image.convert("L")
    elif mode == "La":
        converted = image.convert("LA")
    else:
        converted = image.convert("RGB")
    if converted.mode in ("LA", "RGBA"):
        lowest, _ = converted.getchannel("A").getextrema()
        if lowest == 255:
            converted = converted.convert(converted.mode[:-1])
    return converted


def _scaled(
    image: Image.Image, target: tuple[int, int] | None, orientation: int
) -> Image.Image:
    """`image` (as stored, before turning upright) resized to upright `target`."""
    if target is None:
        return image
    stored = _as_stored(target, orientation)
    return image if image.size == stored else _resized(image, stored)


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    from PIL import Image  # noqa: PLC0415 (lazy)

    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _is_photo(image: Image.Image) -> bool:
    """Opaque and with more than 256 colours: better sent as JPEG."""
    return image.mode in ("L", "RGB") and image.getcolors(256) is None


def _flattened(image: Image.Image) -> Image.Image:
    """`image` on a white background, without alpha."""
    from PIL import Image  # noqa: PLC0415 (lazy)

    if image.mode not in ("LA", "RGBA"):
        return image
    base = Image.new("RGB", image.size, _WHITE)
    base.paste(image.convert("RGBA"), mask=image.getchannel("A"))
    return base


def _encode(
    image: Image.Image,
    kind: str,
    stem: str,
    limits: ImageLimits,
    extra: Mapping[str, Any],
) -> Upload:
    """Encode `image`, lowering JPEG quality, then size, to fit `max_bytes`."""
    while True:
        if kind == "PNG":
            data = _save(image, "PNG", extra, compress_level=6)
            if len(data) <= limits.max_bytes:
                return Upload(f"{stem}.png", "image/png", data)
            if image.mode not in ("LA", "RGBA"):
                kind = "JPEG"
        if kind == "JPEG":
            image = _flattened(image)
            for quality in _JPEG_QUALITIES:
                data = _save(image, "JPEG", extra, quality=quality)
                if len(data) <= limits.max_bytes:
                    return Upload(f"{stem}.jpg", "image/jpeg", data)
        if max(image.size) * _SHRINK < _MIN_SIDE:
            msg = (
                f"The image cannot be made smaller than max_image_bytes "
                f"({limits.max_bytes} bytes). Raise max_image_bytes."
            )
            raise DynasparkImageError(msg)
        smaller = (
            max(1, int(image.width * _SHRINK)),
            max(1, int(image.height * _SHRINK)),
        )
        image = _resized(image, smaller)


def _save(
    image: Image.Image, image_format: str, extra: Mapping[str, Any], **options: Any
) -> bytes:
    """Encode with only the options given: no metadata rides along from `info`."""
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, image_format, **extra, **options)
    return buffer.getvalue()


def _composite(
    loaders: Sequence[Callable[[], RawImage]], limits: ImageLimits
) -> Upload:
    """Compose the images, in order, into one grid with a label above each."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 (lazy)

    # Two passes: the headers first (sizes, orientations) to plan the grid,
    # then each image decoded, drawn and dropped before the next is read.
    orientations = []
    sizes = []
    for load in loaders:
        raw = load()
        image = _open(raw, limits)
        with _reading(raw.label):
            orientations.append(_orientation(image, raw.data))
        sizes.append(_upright_size(image, orientations[-1]))
        image.close()
        del raw, image
    grid = _Grid.plan(sizes, limits.max_side)
    canvas = Image.new("RGB", grid.canvas, _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=grid.font_size)
    photo = False
    for index, load in enumerate(loaders):
        raw = load()
        image = _open(raw, limits)
        target = _fit(sizes[index], grid.cell)
        _decode(image, raw.label, orientations[index], target)
        photo = photo or image.format in ("JPEG", "MPO")
        tile = _scaled(_normalized(image), target, orientations[index])
        tile = _upright(tile, orientations[index])
        del image, raw
        photo = photo or _is_photo(tile)
        left, top = grid.origin(index)
        draw.rectangle(
            (left, top, left + grid.cell[0] - 1, top + grid.label_height - 1),
            fill=_LABEL_PAPER,
        )
        draw.text(
            (left + grid.label_height // 4, top + grid.label_height // 2),
            f"Image {index + 1}",
            fill=_LABEL_INK,
            font=font,
            anchor="lm",
        )
        tile = _flattened(tile)
        x = left + (grid.cell[0] - tile.width) // 2
        y = top + grid.label_height + (grid.cell[1] - tile.height) // 2
        canvas.paste(tile, (x, y))
    return _encode(canvas, "JPEG" if photo else "PNG", "images", limits, {})


@dataclass(frozen=True)
class _Grid:
    """Where each image of a composite goes.

    Attributes:
        columns: Cells per row.
        cell: The box each image is fitted into, in pixels.
        label_height: Height of the label band above each cell.
        gap: Space between cells and around the grid.
        canvas: Size of the whole composite.
        font_size: Label text size.
    """

    columns: int
    cell: tuple[int, int]
    label_height: int
    gap: int
    canvas: tuple[int, int]
    font_size: int

    @classmethod
    def plan(cls, sizes: Sequence[tuple[int, int]], side: int) -> _Grid:
        """A near-square grid for images of `sizes`, at most `side` a side.

        Cells are no larger than the largest image, so small images are not
        blown up.

        Raises:
            DynasparkImageError: If the images cannot fit with their labels.
        """
        count = len(sizes)
        columns = math.ceil(math.sqrt(count))
        rows = math.ceil(count / columns)
        gap = max(2, side // 256)
        row_height = (side - (rows + 1) * gap) // rows
        width_limit = (side - (columns + 1) * gap) // columns
        if row_height < 2 * _MIN_LABEL or width_limit < 2 * _MIN_LABEL:
            msg = (
                f"{count} images do not fit in one composite of max_image_side "
                f"({side} px). Send fewer images, or raise max_image_side."
            )
            raise DynasparkImageError(msg)
        tallest = max(h for _, h in sizes)
        label_height = max(_MIN_LABEL, min(64, row_height // 8, tallest // 4))
        font_size = label_height * 5 // 8
        cell_width = min(width_limit, max(*(w for w, _ in sizes), font_size * 5))
        cell_height = min(row_height - label_height, tallest)
        canvas = (
            columns * cell_width + (columns + 1) * gap,
            rows * (label_height + cell_height) + (rows + 1) * gap,
        )
        return cls(
            columns, (cell_width, cell_height), label_height, gap, canvas, font_size
        )

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of the label band of image `index` (0-based)."""
        row, column = divmod(index, self.columns)
        left = self.gap + column * (self.cell[0] + self.gap)
        top = self.gap + row * (self.label_height + self.cell[1] + self.gap)
        return left, top
