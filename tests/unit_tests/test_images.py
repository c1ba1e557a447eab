"""Image preparation: blocks -> the one uploaded file. Pure: base64 inputs only."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import subprocess
import sys
import threading
import weakref
import zlib
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from PIL import Image, ImageFile, PngImagePlugin

from langchain_dynaspark import image_codec, images
from langchain_dynaspark.errors import (
    DynasparkError,
    DynasparkImageError,
    DynasparkInputError,
)
from langchain_dynaspark.images import ImageLimits, RawImage, build_upload
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.transport import TransportSettings, Upload

SETTINGS = TransportSettings("http://127.0.0.1:9/unused", 1.0, 1.0, 0)
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 0)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def solid(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.new("RGB", size, color)


def halves(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Left half red, right half blue: shows where a rotation put things."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    bands = [Image.effect_noise(size, 80) for _ in mode]
    return Image.merge(mode, bands)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def block(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "base64": b64(data), "mime_type": mime}


def prepare(blocks: list[dict[str, Any]], **limits: Any) -> Upload:
    return asyncio.run(
        images.prepare_upload(blocks, limits=ImageLimits(**limits), settings=SETTINGS)
    )


def opened(upload: Upload) -> Image.Image:
    image = Image.open(io.BytesIO(upload.data))
    image.load()
    return image


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def centroid(image: Image.Image, color: tuple[int, int, int]) -> tuple[float, float]:
    rgb = image.convert("RGB")
    xs, ys = [], []
    for y in range(0, rgb.height, 2):
        for x in range(0, rgb.width, 2):
            if close(rgb.getpixel((x, y)), color, 8):
                xs.append(x)
                ys.append(y)
    assert xs, f"no {color} pixels in the image"
    return sum(xs) / len(xs), sum(ys) / len(ys)


# --- Images that need no change travel byte for byte -------------------------


@pytest.mark.parametrize(
    ("fmt", "extension", "content_type"),
    [
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("WEBP", "webp", "image/webp"),
        ("GIF", "gif", "image/gif"),
    ],
)
def test_clean_images_travel_unchanged(
    fmt: str, extension: str, content_type: str
) -> None:
    data = encode(halves(), fmt)
    upload = prepare([block(data)])
    assert upload.data == data
    assert upload.filename == f"image.{extension}"
    assert upload.content_type == content_type


def test_content_type_follows_the_bytes_not_the_declared_type() -> None:
    data = encode(solid(RED), "PNG")
    upload = prepare([block(data, mime="image/jpeg")])
    assert (upload.content_type, upload.filename) == ("image/png", "image.png")
    assert upload.data == data


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM", "TGA"])
def test_other_formats_become_png_with_the_same_pixels(fmt: str) -> None:
    original = halves((32, 32))  # square: what an ICO holds
    upload = prepare([block(encode(original, fmt))])
    result = opened(upload)
    assert (result.format, upload.content_type) == ("PNG", "image/png")
    assert upload.filename == "image.png"
    assert result.convert("RGB").tobytes() == original.tobytes()


def test_a_photo_in_another_format_becomes_jpeg() -> None:
    upload = prepare([block(encode(noise((300, 200)), "TIFF"))])
    result = opened(upload)
    assert (result.format, upload.content_type, upload.filename) == (
        "JPEG",
        "image/jpeg",
        "image.jpg",
    )
    assert result.size == (300, 200)


def test_transparency_is_kept_when_converting() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 10, 20))
    result = opened(prepare([block(encode(image, "TIFF"))]))
    assert result.mode == "RGBA"
    assert result.getpixel((5, 5)) == (255, 0, 0, 255)
    assert result.getpixel((15, 5))[3] == 0


def test_cmyk_jpeg_is_sent_as_rgb() -> None:
    data = encode(halves().convert("CMYK"), "JPEG")
    result = opened(prepare([block(data)]))
    assert (result.format, result.mode) == ("JPEG", "RGB")
    assert close(result.getpixel((5, 5)), RED, 40)


def test_sixteen_bit_greyscale_keeps_its_brightness() -> None:
    image = Image.new("I;16", (16, 16), 0x8000)
    result = opened(prepare([block(encode(image, "TIFF"))]))
    assert result.mode == "L"
    assert result.getpixel((0, 0)) == 0x80


# --- Orientation and metadata ------------------------------------------------


def exif_with(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS 5D"  # Model
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}  # GPS
    if orientation is not None:
        exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize(("orientation", "top_color"), [(6, RED), (8, BLUE), (3, None)])
def test_exif_orientation_is_applied(
    orientation: int, top_color: tuple[int, int, int] | None
) -> None:
    data = encode(halves((80, 40)), "JPEG", exif=exif_with(orientation), quality=95)
    upload = prepare([block(data)])
    result = opened(upload)
    assert upload.content_type == "image/jpeg"
    if top_color is None:  # 180 degrees: blue now on the left
        assert result.size == (80, 40)
        assert close(result.getpixel((5, 20)), BLUE)
        assert close(result.getpixel((75, 20)), RED)
    else:  # a quarter turn: the halves are now top and bottom
        assert result.size == (40, 80)
        assert close(result.getpixel((20, 5)), top_color)
    assert not result.getexif()


def test_metadata_is_stripped_from_jpeg() -> None:
    data = encode(halves(), "JPEG", exif=exif_with(), comment=b"at home", quality=95)
    result = opened(prepare([block(data)]))
    assert not result.getexif()
    assert "exif" not in result.info
    assert "comment" not in result.info
    assert [name for name, _ in result.applist] == ["APP0"]
    assert close(result.getpixel((5, 5)), RED)


def test_xmp_is_stripped() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encode(halves(), "JPEG", xmp=xmp)
    result = opened(prepare([block(data)]))
    assert "xmp" not in result.info


def test_png_text_and_exif_are_stripped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Someone")
    info.add_itxt("Comment", "taken at home", zip=True)
    data = encode(halves(), "PNG", pnginfo=info, exif=exif_with())
    upload = prepare([block(data)])
    result = opened(upload)
    assert upload.content_type == "image/png"
    assert upload.data != data
    assert result.text == {}
    assert not result.getexif()
    assert result.tobytes() == halves().tobytes()


def test_icc_profile_is_kept() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(halves(), "JPEG", exif=exif_with(), icc_profile=profile)
    result = opened(prepare([block(data)]))
    assert result.info.get("icc_profile") == profile


def test_keeping_metadata_sends_an_upright_image_unchanged() -> None:
    data = encode(halves(), "JPEG", exif=exif_with(), comment=b"kept")
    assert prepare([block(data)], strip_metadata=False).data == data


def test_keeping_metadata_keeps_exif_but_applies_orientation() -> None:
    data = encode(halves((80, 40)), "JPEG", exif=exif_with(6))
    result = opened(prepare([block(data)], strip_metadata=False))
    assert result.size == (40, 80)
    exif = result.getexif()
    assert exif[0x010F] == "Canon"
    assert 0x0112 not in exif


# --- Size and byte budget ----------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "size", "max_side", "expected"),
    [
        ("PNG", (3000, 1000), 2048, (2048, 683)),
        ("JPEG", (4000, 3000), 2048, (2048, 1536)),
        ("JPEG", (1000, 4000), 500, (125, 500)),
        ("WEBP", (900, 600), 300, (300, 200)),
    ],
)
def test_large_images_are_downscaled_keeping_the_aspect(
    fmt: str, size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    upload = prepare([block(encode(halves(size), fmt))], max_side=max_side)
    result = opened(upload)
    assert result.size == expected
    assert close(result.getpixel((2, 2)), RED, 40)
    assert close(result.getpixel((expected[0] - 3, expected[1] - 3)), BLUE, 40)


def test_images_at_the_limit_are_not_resized() -> None:
    data = encode(halves((2048, 100)), "PNG")
    assert prepare([block(data)]).data == data


def test_big_jpegs_are_decoded_at_a_reduced_scale() -> None:
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        if self.tile:
            decoded.append(self.size)
        return real_load(self)

    data = encode(halves((6000, 4000)), "JPEG")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", load)
        result = opened(prepare([block(data)]))
    assert decoded[0] == (3000, 2000)  # JPEG draft: 1/2 scale, still >= target
    assert result.size == (2048, 1365)


def test_a_photo_over_the_byte_budget_is_recompressed_under_it() -> None:
    data = encode(noise((1200, 900)), "PNG")
    assert len(data) > 1_000_000
    upload = prepare([block(data)], max_bytes=150_000)
    assert len(upload.data) <= 150_000
    assert opened(upload).format == "JPEG"


def test_a_transparent_image_over_the_budget_stays_png_and_shrinks() -> None:
    data = encode(noise((800, 800), "RGBA"), "PNG")
    upload = prepare([block(data)], max_bytes=300_000)
    result = opened(upload)
    assert len(upload.data) <= 300_000
    assert (result.format, result.mode) == ("PNG", "RGBA")
    assert result.width < 800


def test_an_impossible_byte_budget_is_an_error() -> None:
    with pytest.raises(DynasparkImageError, match="max_image_bytes"):
        build_upload(
            [RawImage("Image 1", encode(noise((400, 400)), "PNG"))],
            ImageLimits(max_bytes=200),
        )


# --- Several images: one labelled grid ----------------------------------------


def test_several_images_are_composed_in_order() -> None:
    colors = [RED, GREEN, BLUE]
    upload = prepare([block(encode(solid(c, (200, 150)), "PNG")) for c in colors])
    grid = opened(upload)
    assert (upload.content_type, upload.filename) == ("image/png", "images.png")
    red, green, blue = (centroid(grid, c) for c in colors)
    assert red[0] < green[0]  # first row: red, then green
    assert red[1] == green[1]
    assert red[0] == blue[0]  # second row: blue, under red
    assert blue[1] > red[1]
    for x, y in (red, green, blue):  # a label band with dark text above each
        band = grid.crop((int(x) - 100, int(y) - 75 - 30, int(x) + 100, int(y) - 75))
        assert band.convert("L").getextrema()[0] < 64


def test_labels_differ_per_image() -> None:
    upload = prepare([block(encode(solid(RED, (200, 150)), "PNG"))] * 2)
    grid = opened(upload)
    half = grid.width // 2
    x1, y1 = centroid(grid.crop((0, 0, half, grid.height)), RED)
    x2, y2 = centroid(grid.crop((half, 0, grid.width, grid.height)), RED)
    first, second = (round(x1), round(y1)), (round(x2) + half, round(y2))
    # The same picture twice: the tiles match, the labels above them do not.
    tiles = [grid.crop((x - 90, y - 70, x + 90, y + 70)) for x, y in (first, second)]
    bands = [grid.crop((x - 90, y - 95, x + 90, y - 76)) for x, y in (first, second)]
    assert tiles[0].tobytes() == tiles[1].tobytes()
    assert bands[0].tobytes() != bands[1].tobytes()


def test_a_composite_fits_max_side_and_keeps_small_images_small() -> None:
    big = encode(solid(RED, (3000, 2000)), "PNG")
    small = encode(solid(BLUE, (40, 30)), "PNG")
    grid = opened(prepare([block(big), block(small)], max_side=1024))
    assert max(grid.size) <= 1024
    blue = [
        (x, y)
        for y in range(grid.height)
        for x in range(grid.width // 2, grid.width)
        if grid.getpixel((x, y)) == BLUE
    ]
    assert len(blue) == 40 * 30


def test_a_composite_with_a_photo_is_jpeg() -> None:
    photo = encode(noise((300, 200)), "JPEG")
    upload = prepare([block(photo), block(encode(solid(RED), "PNG"))])
    assert (upload.content_type, upload.filename) == ("image/jpeg", "images.jpg")


def test_a_composite_applies_orientation_and_strips_metadata() -> None:
    rotated = encode(halves((200, 100)), "JPEG", exif=exif_with(6), quality=95)
    grid = opened(prepare([block(rotated), block(encode(solid(GREEN), "PNG"))]))
    assert not grid.getexif()
    red, blue = centroid(grid, RED), centroid(grid, BLUE)
    assert red[1] < blue[1]  # the red half is on top once upright


def test_many_images_fit_in_the_grid() -> None:
    blocks = [block(encode(solid((i * 25, 0, 0), (300, 300)), "PNG")) for i in range(9)]
    grid = opened(prepare(blocks, max_side=900))
    assert max(grid.size) <= 900


def test_too_many_images_for_max_side_is_an_error() -> None:
    blocks = [block(encode(solid(RED, (8, 8)), "PNG"))] * 30
    with pytest.raises(DynasparkImageError, match="do not fit"):
        prepare(blocks, max_side=64)


# --- Each image is decoded once, off the event loop -------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_each_image_is_decoded_once(count: int) -> None:
    """A composite reads each header twice (to plan, then to draw), but decodes
    each image's pixels once."""
    opens: list[int] = []
    decodes: list[int] = []
    real_open, real_load = Image.open, ImageFile.ImageFile.load

    def spy_open(*args: Any, **kwargs: Any) -> Image.Image:
        opens.append(1)
        return real_open(*args, **kwargs)

    def spy_load(self: ImageFile.ImageFile) -> Any:
        if self.tile:
            decodes.append(1)
        return real_load(self)

    data = encode(halves(), "JPEG", exif=exif_with(6))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image, "open", spy_open)
        patch.setattr(ImageFile.ImageFile, "load", spy_load)
        prepare([block(data)] * count)
    assert len(decodes) == count
    assert len(opens) == (1 if count == 1 else 2 * count)


async def test_pillow_work_runs_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real = images._build

    def spy(*args: Any, **kwargs: Any) -> Upload:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "_build", spy)
    upload = await images.prepare_upload(
        [block(encode(solid(RED), "PNG"))], limits=ImageLimits(), settings=SETTINGS
    )
    assert upload.content_type == "image/png"
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


def test_importing_the_package_does_not_import_pillow() -> None:
    code = "import sys, langchain_dynaspark; print('PIL' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


# --- Every input form that content_blocks normalises ---------------------------

PNG = encode(halves((30, 20)), "PNG")
DATA_URL = f"data:image/png;base64,{b64(PNG)}"
FORMS: dict[str, dict[str, Any]] = {
    "openai image_url data string": {"type": "image_url", "image_url": DATA_URL},
    "openai image_url data dict": {
        "type": "image_url",
        "image_url": {"url": DATA_URL, "detail": "high"},
    },
    "v1 base64": {"type": "image", "base64": b64(PNG), "mime_type": "image/png"},
    "v1 base64 without mime type": {"type": "image", "base64": b64(PNG)},
    "v1 data url": {"type": "image", "url": DATA_URL},
    "v0 base64": {
        "type": "image",
        "source_type": "base64",
        "data": b64(PNG),
        "mime_type": "image/png",
    },
    "v0 data url": {"type": "image", "source_type": "url", "url": DATA_URL},
    "anthropic base64": {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
    },
    "percent-encoded data url": {
        "type": "image",
        "url": "data:image/png," + "".join(f"%{byte:02X}" for byte in PNG),
    },
    "base64 with line breaks": {
        "type": "image",
        "base64": "\n".join(b64(PNG)[i : i + 76] for i in range(0, len(b64(PNG)), 76)),
        "mime_type": "image/png",
    },
}


def _messages(form: dict[str, Any], kind: str) -> list[BaseMessage]:
    if kind == "human":
        return [HumanMessage([{"type": "text", "text": "Look:"}, form])]
    return [
        HumanMessage("Draw."),
        ToolMessage([form], tool_call_id="call_1", name="draw"),
    ]


@pytest.mark.parametrize("kind", ["human", "tool"])
@pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))
def test_every_inline_form_reaches_the_upload(form: dict[str, Any], kind: str) -> None:
    prompt = build_prompt(_messages(form, kind))
    assert "[Image 1]" in prompt.text
    assert prepare(list(prompt.images)).data == PNG


@pytest.mark.parametrize(
    "form",
    [
        {"type": "image_url", "image_url": "https://example.com/a.png"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "image", "source_type": "url", "url": "https://example.com/a.png"},
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/a.png"},
        },
    ],
)
def test_url_forms_become_url_images(form: dict[str, Any]) -> None:
    (image,) = build_prompt([HumanMessage([form])]).images
    assert image["url"] == "https://example.com/a.png"


# --- Bad input: a typed error before anything is sent --------------------------


def truncated(fmt: str) -> bytes:
    data = encode(noise((200, 200)), fmt)
    return data[: len(data) // 2]


def corrupted(fmt: str) -> bytes:
    data = encode(noise((200, 200)), fmt)
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 256 + data[middle + 256 :]


BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "not base64": ({"type": "image", "base64": "@@@not base64@@@"}, "not valid base64"),
    "text, not an image": (block(b"hello, world"), "not an image"),
    "truncated png": (block(truncated("PNG")), "truncated or corrupt"),
    "truncated jpeg": (block(truncated("JPEG")), "truncated or corrupt"),
    "corrupt png": (block(corrupted("PNG")), "truncated or corrupt"),
    "corrupt jpeg": (block(corrupted("JPEG")), "truncated or corrupt"),
    "file url": ({"type": "image", "url": "file:///etc/passwd"}, "a file: URL"),
    "ftp url": ({"type": "image", "url": "ftp://example.com/a.png"}, "a ftp: URL"),
    "relative url": ({"type": "image", "url": "cat.png"}, "without a scheme"),
    "data url without data": (
        {"type": "image", "url": "data:image/png;base64"},
        "malformed data: URL",
    ),
    "eps": (block(encode(solid(RED), "EPS"), "image/eps"), "EPS"),
}


@pytest.mark.parametrize(
    ("form", "match"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS)
)
def test_bad_images_raise_a_typed_value_error(form: dict[str, Any], match: str) -> None:
    with pytest.raises(DynasparkImageError, match=match) as info:
        prepare([block(PNG), form])
    assert isinstance(info.value, DynasparkError)
    assert isinstance(info.value, ValueError)
    assert "Image 2" in str(info.value)


def test_errors_never_contain_the_image_data() -> None:
    with pytest.raises(DynasparkImageError) as info:
        prepare([block(b"not an image at all")])
    assert b64(b"not an image at all") not in str(info.value)


def test_more_pixels_than_max_image_pixels_is_refused() -> None:
    with pytest.raises(DynasparkImageError, match="max_image_pixels"):
        prepare([block(encode(solid(RED, (100, 100)), "PNG"))], max_pixels=9_999)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_decompression_bomb_limit_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    for size in ((40, 30), (100, 100)):  # over the limit, and over twice the limit
        with pytest.raises(DynasparkImageError, match="decompression-bomb"):
            prepare([block(encode(solid(RED, size), "PNG"))])


def test_a_huge_png_header_is_refused_without_decoding() -> None:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(DynasparkImageError, match="decompression-bomb"):
        prepare([block(bomb)])


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"type": "image", "file_id": "file-123"}, "file_id"),
        ({"type": "image", "source_type": "id", "id": "file-123"}, "file_id"),
        (
            {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
            "file",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "audio",
        ),
        ({"type": "video", "base64": "AAAA", "mime_type": "video/mp4"}, "video"),
    ],
)
@pytest.mark.parametrize("kind", ["human", "tool"])
def test_unsupported_blocks_name_what_is_supported(
    content: dict[str, Any], named: str, kind: str
) -> None:
    with pytest.raises(DynasparkInputError, match=named) as info:
        build_prompt(_messages(content, kind))
    assert isinstance(info.value, ValueError)
    assert "Supported: text, and images" in str(info.value)


# --- Bounded memory: one decoded image at a time -------------------------------


class Decodes:
    """Records each image's first decode, and how many decoded images were held."""

    def __init__(self) -> None:
        self.decoded: list[weakref.ref[Image.Image]] = []
        self.most_held = 0

    def note(self, image: Image.Image) -> None:
        if all(ref() is not image for ref in self.decoded):
            held = sum(ref() is not None for ref in self.decoded)
            self.most_held = max(self.most_held, held + 1)
            self.decoded.append(weakref.ref(image))


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Decodes:
    record = Decodes()
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        record.note(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return record


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_a_composite_decodes_one_image_at_a_time(fmt: str, decodes: Decodes) -> None:
    """No image is decoded while an earlier one's pixels are still held."""
    data = encode(noise((300, 200)), fmt)
    upload = prepare([block(data)] * 6, max_side=512)
    assert Image.open(io.BytesIO(upload.data)).size[0] <= 512
    assert len(decodes.decoded) == 6
    assert decodes.most_held == 1


def test_a_png_exif_orientation_after_the_pixels_is_found_without_decoding(
    decodes: Decodes,
) -> None:
    """Pillow decodes a whole PNG to find an eXIf chunk placed after IDAT."""
    exif = exif_with(6).tobytes()
    plain = encode(halves((80, 40)), "PNG")
    iend = plain.rindex(b"IEND") - 4
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif
    late = plain[:iend] + chunk + zlib_crc(b"eXIf" + exif) + plain[iend:]
    image = Image.open(io.BytesIO(late))
    assert "exif" not in image.info
    assert image_codec.exif_orientation(image, late) == 6
    plain_image = Image.open(io.BytesIO(plain))
    assert image_codec.exif_orientation(plain_image, plain) == 1
    assert decodes.decoded == []
    turned = opened(prepare([block(late)]))
    assert turned.size == (40, 80)


def zlib_crc(data: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(data))


@pytest.mark.parametrize("padded", [True, False])
def test_url_safe_base64_is_decoded(padded: bool) -> None:
    data = encode(noise((61, 47)), "PNG")
    text = base64.urlsafe_b64encode(data).decode()
    assert "-" in text or "_" in text
    if not padded:
        text = text.rstrip("=")
    upload = prepare([{"type": "image", "base64": text, "mime_type": "image/png"}])
    assert upload.data == data
    url = f"data:image/png;base64,{text}"
    assert prepare([{"type": "image", "url": url}]).data == data


def test_base64_with_stray_characters_is_refused_as_base64() -> None:
    text = b64(encode(solid(RED), "PNG"))
    with pytest.raises(DynasparkImageError, match="not valid base64"):
        prepare([{"type": "image", "base64": text[:40] + "!*" + text[40:]}])
