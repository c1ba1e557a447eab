"""Image generation's download step against a bare aiohttp GET of the same image.

After `GET /api/generate_image`, `ChatDynaspark(model="flux")` downloads the
picture from its `image_url` (`endpoints.image.fetch_image`: the pooled session,
the size cap enforced while it streams in, the PNG/JPEG header check). The bare
client GETs the same URL on its own aiohttp session and reads the body. The
picture is a 512x512 PNG the local server drew once (it keeps what it drew), so
both read the same bytes; the ratio is CPU(download step) ÷ CPU(bare GET).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse

import aiohttp
import harness
from harness import Call, Options, Section, row

SIDE = 512


async def measure(url: str, options: Options) -> tuple[dict[str, harness.Sample], int]:
    """CPU and wall time per download of each contender; and the image's size."""
    from langchain_dynaspark.endpoints.image import fetch_image
    from langchain_dynaspark.images import DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES
    from langchain_dynaspark.transport import TransportSettings

    query = urllib.parse.urlencode(
        {"user_input": "a red cat", "width": SIDE, "height": SIDE}
    )
    session = aiohttp.ClientSession()
    try:
        async with session.get(f"{url}/api/generate_image?{query}") as response:
            image_url = json.loads(await response.read())["image_url"]
        settings = TransportSettings(
            url, timeout=60.0, connect_timeout=15.0, max_retries=0
        )

        async def bare() -> bytes:
            async with session.get(image_url) as response:
                return await response.read()

        async def package() -> tuple[bytes, str]:
            return await fetch_image(
                image_url,
                max_bytes=DEFAULT_MAX_IMAGE_DOWNLOAD_BYTES,
                settings=settings,
            )

        size = len(await bare())
        contenders: dict[str, Call] = {"bare": bare, "fetch_image": package}
        samples = await harness.warmed_sequential(
            url, contenders, warm_up=5, rounds=options.rounds, calls=options.calls
        )
        return samples, size
    finally:
        await session.close()


def section(samples: dict[str, harness.Sample], size: int) -> Section:
    """The download rows and the ratio."""
    bare, package = samples["bare"], samples["fetch_image"]
    ratio = package.cpu_us / bare.cpu_us
    lines = [
        f"Image download step ({SIDE}x{SIDE} PNG, {size:,} bytes, from image_url)",
        row(*harness.CALLS_HEADER[:3], "CPU ÷ bare"),
        row("bare aiohttp GET of the same URL (floor)", bare.cpu_us, bare.wall_us),
        row(
            "endpoints.image.fetch_image (pooled, capped, checked)",
            package.cpu_us,
            package.wall_us,
            f"{ratio:.2f}x",
        ),
    ]
    return Section(lines)


def run(options: Options) -> Section:
    with harness.local_server() as url:
        return section(*asyncio.run(measure(url, options)))
