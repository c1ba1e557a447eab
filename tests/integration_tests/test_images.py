"""Images round trip through the local server: what arrives in the `file` field."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest
from aiohttp import web
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from PIL import Image

from langchain_dynaspark import ChatDynaspark, DynasparkImageError, transport
from langchain_dynaspark.testing.server import DynasparkTestServer, UploadedFile

RED, GREEN, BLUE = (255, 0, 0), (0, 128, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def halves(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def solid(color: tuple[int, int, int], size: tuple[int, int] = (200, 150)) -> bytes:
    return encode(Image.new("RGB", size, color), "PNG")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_block(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "base64": b64(data), "mime_type": mime}


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def centroid(image: Image.Image, color: tuple[int, int, int]) -> tuple[float, float]:
    rgb = image.convert("RGB")
    points = [
        (x, y)
        for y in range(0, rgb.height, 2)
        for x in range(0, rgb.width, 2)
        if close(rgb.getpixel((x, y)), color, 8)
    ]
    assert points, f"no {color} pixels"
    return (
        sum(x for x, _ in points) / len(points),
        sum(y for _, y in points) / len(points),
    )


def uploaded(server: DynasparkTestServer) -> tuple[UploadedFile, Image.Image]:
    [request] = server.requests
    assert request.content_type == "multipart/form-data"
    assert request.file is not None
    image = Image.open(io.BytesIO(request.file.data))
    image.load()
    return request.file, image


@pytest.fixture
def model(server: DynasparkTestServer) -> ChatDynaspark:
    return ChatDynaspark(base_url=server.url, max_retries=0)


def serve(server: DynasparkTestServer, name: str, data: bytes, kind: str) -> str:
    server.files[name] = (data, kind)
    return f"{server.url}/files/{name}"


# --- Round trips: pixels, size, format, content type, filename ----------------


def test_a_png_arrives_as_sent(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    data = encode(halves(), "PNG")
    message = HumanMessage(
        [{"type": "text", "text": "What colours?"}, image_block(data)]
    )
    reply = model.invoke([message])
    file, image = uploaded(server)
    assert (file.filename, file.content_type) == ("image.png", "image/png")
    assert file.data == data
    assert (image.format, image.size) == ("PNG", (80, 40))
    assert image.tobytes() == halves().tobytes()
    assert server.requests[0].fields["user_input"] == "What colours?\n[Image 1]"
    assert reply.text.startswith("Echo: What colours?")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", ("image.jpg", "image/jpeg", "JPEG")),
        ("WEBP", ("image.webp", "image/webp", "WEBP")),
        ("GIF", ("image.gif", "image/gif", "GIF")),
        ("BMP", ("image.png", "image/png", "PNG")),
        ("TIFF", ("image.png", "image/png", "PNG")),
    ],
)
def test_filename_and_content_type_match_the_bytes(
    server: DynasparkTestServer,
    model: ChatDynaspark,
    fmt: str,
    expected: tuple[str, str, str],
) -> None:
    data = encode(halves(), fmt)
    model.invoke([HumanMessage([image_block(data, "application/octet-stream")])])
    file, image = uploaded(server)
    assert (file.filename, file.content_type, image.format) == expected
    assert image.size == (80, 40)
    assert close(image.convert("RGB").getpixel((5, 5)), RED)
    assert close(image.convert("RGB").getpixel((75, 35)), BLUE)


def test_exif_gps_is_stripped_and_orientation_applied(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "Canon"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}
    data = encode(halves((80, 40)), "JPEG", exif=exif, comment=b"home", quality=95)
    model.invoke([HumanMessage([image_block(data, "image/jpeg")])])
    file, image = uploaded(server)
    assert (file.filename, file.content_type, image.format) == (
        "image.jpg",
        "image/jpeg",
        "JPEG",
    )
    assert image.size == (40, 80)
    assert close(image.getpixel((20, 5)), RED)
    assert close(image.getpixel((20, 75)), BLUE)
    assert not image.getexif()
    assert not image.getexif().get_ifd(0x8825)
    assert not {"exif", "comment", "xmp"} & set(image.info)
    assert b"Canon" not in file.data


def test_keeping_metadata_is_a_choice(server: DynasparkTestServer) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    data = encode(halves(), "JPEG", exif=exif)
    model = ChatDynaspark(base_url=server.url, strip_image_metadata=False)
    model.invoke([HumanMessage([image_block(data, "image/jpeg")])])
    file, image = uploaded(server)
    assert file.data == data
    assert image.getexif()[0x010F] == "Canon"


def test_large_images_are_downscaled(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    data = encode(halves((6000, 4000)), "JPEG")
    model.invoke([HumanMessage([image_block(data, "image/jpeg")])])
    _, image = uploaded(server)
    assert image.size == (2048, 1365)
    assert close(image.getpixel((10, 10)), RED)
    assert close(image.getpixel((2040, 1360)), BLUE)


def test_max_image_side_and_bytes_are_fields(server: DynasparkTestServer) -> None:
    noise = Image.merge("RGB", [Image.effect_noise((1500, 1000), 80)] * 3)
    model = ChatDynaspark(
        base_url=server.url, max_image_side=600, max_image_bytes=40_000
    )
    model.invoke([HumanMessage([image_block(encode(noise, "PNG"))])])
    file, image = uploaded(server)
    assert max(image.size) <= 600
    assert len(file.data) <= 40_000
    assert (image.format, file.content_type) == ("JPEG", "image/jpeg")


# --- Every input form, in human and in tool messages --------------------------


def forms(server: DynasparkTestServer) -> dict[str, dict[str, Any]]:
    png = encode(halves(), "PNG")
    data_url = f"data:image/png;base64,{b64(png)}"
    url = serve(server, "halves.png", png, "image/png")
    return {
        "openai data string": {"type": "image_url", "image_url": data_url},
        "openai data dict": {"type": "image_url", "image_url": {"url": data_url}},
        "openai url string": {"type": "image_url", "image_url": url},
        "openai url dict": {
            "type": "image_url",
            "image_url": {"url": url, "detail": "low"},
        },
        "v1 base64": {"type": "image", "base64": b64(png), "mime_type": "image/png"},
        "v1 url": {"type": "image", "url": url},
        "v1 data url": {"type": "image", "url": data_url},
        "v0 base64": {
            "type": "image",
            "source_type": "base64",
            "data": b64(png),
            "mime_type": "image/png",
        },
        "v0 url": {"type": "image", "source_type": "url", "url": url},
        "anthropic base64": {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": b64(png)},
        },
        "anthropic url": {"type": "image", "source": {"type": "url", "url": url}},
    }


FORM_NAMES = [
    "openai data string",
    "openai data dict",
    "openai url string",
    "openai url dict",
    "v1 base64",
    "v1 url",
    "v1 data url",
    "v0 base64",
    "v0 url",
    "anthropic base64",
    "anthropic url",
]


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_in_a_human_message(
    server: DynasparkTestServer, model: ChatDynaspark, name: str
) -> None:
    form = forms(server)[name]
    model.invoke([HumanMessage([{"type": "text", "text": "Describe"}, form])])
    file, image = uploaded(server)
    assert file.data == encode(halves(), "PNG")
    assert image.tobytes() == halves().tobytes()


@pytest.mark.parametrize("name", FORM_NAMES)
async def test_every_form_in_a_tool_message(
    server: DynasparkTestServer, model: ChatDynaspark, name: str
) -> None:
    form = forms(server)[name]
    messages: list[BaseMessage] = [
        HumanMessage("Draw something."),
        AIMessage("", tool_calls=[{"name": "draw", "args": {}, "id": "call_1"}]),
        ToolMessage([form], tool_call_id="call_1", name="draw"),
    ]
    await model.ainvoke(messages)
    file, image = uploaded(server)
    assert image.tobytes() == halves().tobytes()
    assert (
        "Tool result (draw, call id call_1): [Image 1]"
        in (server.requests[0].fields["user_input"])
    )
    assert file.content_type == "image/png"


def test_an_image_only_message(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    model.invoke([HumanMessage([image_block(solid(RED))])])
    file, image = uploaded(server)
    assert server.requests[0].fields["user_input"] == "[Image 1]"
    assert image.getpixel((0, 0)) == RED
    assert file.filename == "image.png"


async def test_stream_and_astream_send_the_image(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    message = HumanMessage([image_block(solid(GREEN))])
    chunks = list(model.stream([message]))
    chunks += [chunk async for chunk in model.astream([message])]
    assert len(chunks) == 2
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.file is not None
        assert request.file.data == solid(GREEN)


# --- Several images: one labelled grid, referred to in order -------------------


def test_several_images_become_one_grid_in_order(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    blue_url = serve(server, "blue.png", solid(BLUE), "image/png")
    messages: list[BaseMessage] = [
        HumanMessage(
            [
                {"type": "text", "text": "Compare"},
                image_block(solid(RED)),
                {"type": "text", "text": "with"},
                image_block(solid(GREEN)),
            ]
        ),
        AIMessage("Red and green."),
        HumanMessage(
            [{"type": "text", "text": "And this?"}, {"type": "image", "url": blue_url}]
        ),
    ]
    model.invoke(messages)
    file, grid = uploaded(server)
    assert (file.filename, file.content_type, grid.format) == (
        "images.png",
        "image/png",
        "PNG",
    )
    red, green, blue = (centroid(grid, color) for color in (RED, GREEN, BLUE))
    assert red[0] < green[0]  # Image 1, Image 2 on the first row
    assert red[1] == green[1]
    assert red[0] == blue[0]  # Image 3 starts the second row
    assert blue[1] > red[1]
    prompt = server.requests[0].fields["user_input"]
    assert "User: Compare\n[Image 1]\nwith\n[Image 2]" in prompt
    assert "User: And this?\n[Image 3]" in prompt


def test_urls_are_downloaded_concurrently_once_each(
    server: DynasparkTestServer, model: ChatDynaspark, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = [
        serve(server, f"{i}.png", solid(color), "image/png")
        for i, color in enumerate((RED, GREEN, BLUE))
    ]
    real = transport.download
    in_flight: list[int] = [0]
    peak: list[int] = [0]
    fetched: list[str] = []

    async def download(url: str, **kwargs: Any) -> tuple[bytes, str]:
        fetched.append(url)
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        try:
            return await real(url, **kwargs)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(transport, "download", download)
    blocks = [{"type": "image", "url": url} for url in [*urls, urls[0]]]
    model.invoke([HumanMessage(blocks)])
    assert sorted(fetched) == sorted(urls)
    assert peak[0] == 3
    _, grid = uploaded(server)
    assert centroid(grid, RED)[0] < centroid(grid, GREEN)[0]


# --- Bad input: a typed error, and no request to the service ------------------


def refused(
    server: DynasparkTestServer, model: ChatDynaspark, form: dict[str, Any]
) -> DynasparkImageError:
    message = HumanMessage([{"type": "text", "text": "Look"}, form])
    with pytest.raises(DynasparkImageError) as info:
        model.invoke([message])
    assert isinstance(info.value, ValueError)
    assert server.requests == []
    return info.value


def test_a_404_url_is_refused(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    error = refused(
        server, model, {"type": "image", "url": f"{server.url}/files/no.png"}
    )
    assert "HTTP 404" in str(error)
    assert "Image 1" in str(error)


def test_a_non_image_url_is_refused(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    url = serve(server, "page.html", b"<html><body>Hello</body></html>", "text/html")
    error = refused(server, model, {"type": "image", "url": url})
    assert "not an image" in str(error)
    assert "text/html" in str(error)


def test_a_download_over_the_cap_is_refused(server: DynasparkTestServer) -> None:
    url = serve(server, "big.png", solid(RED) + b"\0" * 300_000, "image/png")
    model = ChatDynaspark(base_url=server.url, max_image_download_bytes=100_000)
    error = refused(server, model, {"type": "image", "url": url})
    assert "max_image_download_bytes" in str(error)


async def test_the_download_cap_holds_while_streaming(
    server: DynasparkTestServer,
) -> None:
    total, chunk = 64 * 1024 * 1024, b"\0" * 65_536
    sent = [0]
    finished = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)  # chunked: no Content-Length to check
        try:
            while sent[0] < total:
                await response.write(chunk)
                sent[0] += len(chunk)
        except ConnectionError:
            pass
        finally:
            finished.set()
        return response

    app = web.Application()
    app.router.add_get("/stream.png", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        model = ChatDynaspark(
            base_url=server.url, max_image_download_bytes=1_000_000, max_retries=0
        )
        message = HumanMessage(
            [{"type": "image", "url": f"http://127.0.0.1:{port}/stream.png"}]
        )
        with pytest.raises(DynasparkImageError, match="max_image_download_bytes"):
            await model.ainvoke([message])
        await asyncio.wait_for(finished.wait(), timeout=10)
    finally:
        await runner.cleanup()
    assert sent[0] < total // 2
    assert server.requests == []


@pytest.mark.parametrize(
    "url", ["file:///etc/hostname", "ftp://127.0.0.1/a.png", "/files/a.png"]
)
def test_non_http_urls_are_refused(
    server: DynasparkTestServer, model: ChatDynaspark, url: str
) -> None:
    error = refused(server, model, {"type": "image", "url": url})
    assert "Only http(s) URLs are downloaded" in str(error)


def test_a_truncated_image_is_refused(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    data = encode(halves((400, 300)), "JPEG")
    error = refused(server, model, image_block(data[: len(data) // 2], "image/jpeg"))
    assert "truncated or corrupt" in str(error)


def test_a_corrupt_image_is_refused(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    error = refused(server, model, image_block(b"\x89PNG\r\n\x1a\nnot really"))
    assert "Image 1" in str(error)


def test_a_decompression_bomb_is_refused(server: DynasparkTestServer) -> None:
    model = ChatDynaspark(base_url=server.url, max_image_pixels=10_000)
    error = refused(server, model, image_block(solid(RED, (1000, 1000))))
    assert "max_image_pixels" in str(error)


def test_a_bad_image_among_good_ones_sends_nothing(
    server: DynasparkTestServer, model: ChatDynaspark
) -> None:
    good = serve(server, "good.png", solid(RED), "image/png")
    message = HumanMessage(
        [
            {"type": "image", "url": good},
            image_block(solid(GREEN)),
            {"type": "image", "url": f"{server.url}/files/missing.png"},
        ]
    )
    with pytest.raises(DynasparkImageError, match="Image 3"):
        model.invoke([message])
    assert server.requests == []
