"""Reading, checking and encoding one image with pillow.

Opening reads the header only and refuses what must not be decoded (formats
that need an external interpreter, more pixels than `max_pixels` or pillow's
decompression-bomb limit); the EXIF orientation is found without decoding;
pixels are decoded once (JPEG draft mode for big photos), turned upright,
scaled and normalised; encoding drops metadata and lowers JPEG quality, then
size, to fit `max_bytes`. `prepare_single` does all of it for one image.

Pillow is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from langchain_dynaspark.errors import DynasparkError, DynasparkImageError
from langchain_dynaspark.image_limits import ImageLimits, RawImage
from langchain_dynaspark.transport import Upload

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "decode",
    "encode",
    "exif_orientation",
    "fit",
    "flattened",
    "is_photo",
    "normalized",
    "open_image",
    "prepare_single",
    "reading",
    "scaled",
    "upright",
    "upright_size",
]

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION = 0x0112
_UPRIGHT = 1
_SWAPS_SIDES = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the image a quarter turn."""
_JPEG_QUALITIES = (85, 70, 55, 40)
_SHRINK = 0.75
_MIN_SIDE = 64
_WHITE = (255, 255, 255)


@contextmanager
def reading(label: str) -> Iterator[None]:
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


def open_image(raw: RawImage, limits: ImageLimits) -> Image.Image:
    """Read the header of `raw` (no pixels yet) and check it against the limits."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 (lazy)

    with reading(raw.label):
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


def exif_orientation(image: Image.Image, data: bytes) -> int:
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


def upright_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    """The size of `image` once turned upright by its EXIF `orientation`."""
    return _as_stored(image.size, orientation)


def _as_stored(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """`size` with its sides swapped if `orientation` turns the image a quarter.

    The swap is its own inverse: it maps stored sizes to upright ones too.
    """
    width, height = size
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int] | None:
    """The largest size within `box` with the aspect of `size`; `None` if it fits."""
    width, height = size
    if width <= box[0] and height <= box[1]:
        return None
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode(
    image: Image.Image, label: str, orientation: int, target: tuple[int, int] | None
) -> None:
    """Decode the pixels once; big JPEGs at the smallest scale still >= `target`."""
    if target is not None:
        image.draft(None, _as_stored(target, orientation))
    with reading(label):
        image.load()


def prepare_single(raw: RawImage, limits: ImageLimits) -> Upload:
    """One image for upload: as it is if it needs no change, else re-encoded.

    Raises:
        DynasparkImageError: If the image cannot be read or made small enough.
    """
    image = open_image(raw, limits)
    with reading(raw.label):
        orientation = exif_orientation(image, raw.data)
    target = fit(upright_size(image, orientation), (limits.max_side,) * 2)
    decode(image, raw.label, orientation, target)
    if target is None and _sendable_as_is(image, raw.data, orientation, limits):
        extension, content_type = _PASS_THROUGH[image.format or ""]
        return Upload(f"image.{extension}", content_type, raw.data)
    source_format = image.format
    keep = _kept_info(image, limits)
    prepared = upright(scaled(normalized(image), target, orientation), orientation)
    del image
    if source_format in ("JPEG", "MPO"):
        kind = "JPEG"
    elif source_format == "PNG" or not is_photo(prepared):
        kind = "PNG"
    else:
        kind = "JPEG"
    return encode(prepared, kind, "image", limits, keep)


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


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """`image` (as stored) turned the way its EXIF `orientation` says."""
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


def normalized(image: Image.Image) -> Image.Image:
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


def scaled(
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


def is_photo(image: Image.Image) -> bool:
    """Opaque and with more than 256 colours: better sent as JPEG."""
    return image.mode in ("L", "RGB") and image.getcolors(256) is None


def flattened(image: Image.Image) -> Image.Image:
    """`image` on a white background, without alpha."""
    from PIL import Image  # noqa: PLC0415 (lazy)

    if image.mode not in ("LA", "RGBA"):
        return image
    base = Image.new("RGB", image.size, _WHITE)
    base.paste(image.convert("RGBA"), mask=image.getchannel("A"))
    return base


def encode(
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
            image = flattened(image)
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
