"""The image surface: `GET /api/generate_image`, and the pictures it points at.

A request with `user_input`, `model` (`flux`, `turbo`, `gptimage`), `width` and
`height` (64-2048, default 768) and an optional `seed` passes the API's checks
(request line, the shared rate limit) and is answered
`{"image_url": "<this server>/generated/<digest>.<png|jpg>?width=..&height=.."}`.
That route draws a picture with pillow at the requested size: a gradient and a
disc whose colours follow the prompt, model and seed (so the same request gives
the same picture; the URL holds a digest, not the prompt). `flux` and
`gptimage` answer PNG, `turbo` JPEG. `GET /moved/<path>` redirects (302) to
`/<path>`, for following redirects.

A scripted `Reply` with a `text`, a `body` or a status other than 200 is sent
as it is: an error, a 429, or an `image_url` of your own (e.g. one of the
server's `files` holding a huge or non-image body).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
from dataclasses import replace

from aiohttp import web

from langchain_dynaspark.testing.admission import Admitted, answered
from langchain_dynaspark.testing.surface import (
    ServiceState,
    missing_input,
    raw_response,
)

__all__ = ["DEFAULT_IMAGE_PATH", "IMAGE_MODELS", "ImageSurface", "draw"]

DEFAULT_IMAGE_PATH = "/api/generate_image"
IMAGE_MODELS = {"flux": "png", "turbo": "jpg", "gptimage": "png"}
"""The image models the stand-in knows, and the format each answers in."""
_DEFAULT_SIDE = 768
_SIDES = range(64, 2049)
_MIME = {"png": "image/png", "jpg": "image/jpeg"}


class ImageSurface:
    """Image generation at `path`, with the limits `state` sets."""

    def __init__(self, state: ServiceState, path: str = DEFAULT_IMAGE_PATH) -> None:
        self.state = state
        self.path = path

    def routes(self) -> list[web.RouteDef]:
        """`GET {path}`, `GET /generated/{name}` and `GET /moved/{path}`."""
        return [
            web.get(self.path, self.generate),
            web.get("/generated/{digest}.{ext}", self.picture),
            web.get("/moved/{rest:.+}", self.moved),
        ]

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """Answer one generation request with the URL of its picture."""
        return await answered(self.state, request, "image", self._generated)

    async def _generated(
        self, request: web.Request, checked: Admitted
    ) -> web.StreamResponse:
        """The URL of an admitted request's picture."""
        query, reply, headers = checked.query, checked.reply, checked.headers
        if reply is not None and (
            reply.status != 200 or reply.body is not None or reply.text is not None
        ):
            return raw_response(replace(reply, headers=headers))
        if not query.get("user_input"):
            return missing_input()
        problem = _problem(query)
        if problem is not None:
            return web.json_response({"error": problem}, status=400, headers=headers)
        model = query.get("model", "flux")
        key = "\n".join((query["user_input"], model, query.get("seed", "")))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        width = query.get("width", str(_DEFAULT_SIDE))
        height = query.get("height", str(_DEFAULT_SIDE))
        url = request.url.with_path(
            f"/generated/{digest}.{IMAGE_MODELS[model]}"
        ).with_query({"width": width, "height": height})
        return web.json_response({"image_url": str(url)}, headers=headers)

    async def picture(self, request: web.Request) -> web.Response:
        """The picture a generation pointed at, drawn at its size."""
        ext = request.match_info["ext"]
        try:
            width = int(request.query["width"])
            height = int(request.query["height"])
        except (KeyError, ValueError):
            raise web.HTTPBadRequest from None
        if ext not in _MIME or width not in _SIDES or height not in _SIDES:
            raise web.HTTPNotFound
        data = await asyncio.to_thread(
            draw, request.match_info["digest"], width, height, ext
        )
        return web.Response(body=data, content_type=_MIME[ext])

    async def moved(self, request: web.Request) -> web.Response:
        """A redirect to the same path without `/moved`."""
        target = request.url.with_path("/" + request.match_info["rest"])
        raise web.HTTPFound(target.with_query(request.query))


@functools.lru_cache(maxsize=32)
def draw(digest: str, width: int, height: int, ext: str) -> bytes:
    """A picture for `digest`: a gradient and a disc, as PNG or JPEG bytes."""
    # Imported here: pillow is needed only once a picture is drawn.
    from PIL import Image, ImageDraw  # noqa: PLC0415

    seed = bytes.fromhex(digest.ljust(16, "0")[:16])
    top, bottom, disc = seed[0:3], seed[3:6], seed[5:8]
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), tuple(bottom)),
        Image.new("RGB", (width, height), tuple(top)),
        gradient,
    )
    side = min(width, height)
    box = (
        width // 2 - side // 3,
        height // 2 - side // 3,
        width // 2 + side // 3,
        height // 2 + side // 3,
    )
    ImageDraw.Draw(image).ellipse(box, fill=tuple(disc))
    out = io.BytesIO()
    image.save(out, format="PNG" if ext == "png" else "JPEG", quality=85)
    return out.getvalue()


def _problem(query: dict[str, str]) -> str | None:
    """What is wrong with a generation request's settings, if anything."""
    if query.get("model", "flux") not in IMAGE_MODELS:
        return f"Unknown image model: {query['model']}"
    for name in ("width", "height"):
        value = query.get(name, str(_DEFAULT_SIDE))
        if not value.isdigit() or int(value) not in _SIDES:
            return f"{name} must be between 64 and 2048"
    if not query.get("seed", "0").lstrip("-").isdigit():
        return "seed must be an integer"
    return None
