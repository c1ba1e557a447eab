"""Image generation: a prompt in, one picture out.

`GET {base_url}/api/generate_image` takes the prompt and the picture's settings
as query parameters (`user_input`, `model`, `width`, `height`, `nologo`, `seed`,
`api_key`) and answers `{"image_url": "<url>"}`. The image is then downloaded
from that URL over the package's pooled transport (redirects followed, at most
`max_image_download_bytes`), and must be a PNG or JPEG; the reply holds it as
one standard image block, or, with `image_output="url"`, holds only a block
pointing at the URL. Errors, rate limits and retries are those of the text API.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from langchain_dynaspark import transport
from langchain_dynaspark.endpoints.api import (
    MOVED_HINT,
    PUBLIC_API_KEY,
    check_request_line,
    get_read,
)
from langchain_dynaspark.endpoints.api_reply import rate_limit
from langchain_dynaspark.endpoints.base import (
    Call,
    Capabilities,
    Request,
    surface_transport,
)
from langchain_dynaspark.errors import DynasparkImageError, DynasparkResponseError
from langchain_dynaspark.media import (
    MediaFields,
    check_call,
    check_fields,
    image_block,
    image_mime,
    url_block,
)
from langchain_dynaspark.prompt import build_prompt
from langchain_dynaspark.reply import Reply, server_message
from langchain_dynaspark.transport import Answer, TransportSettings

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "CAPABILITIES",
    "IMAGE_PATH",
    "NOT_FOUND_HINT",
    "ImageEndpoint",
    "fetch_image",
    "image_url",
]

IMAGE_PATH = "/api/generate_image"
NOT_FOUND_HINT = (
    "The image API may have moved: set `base_url=` to where the service answers "
    f"`{IMAGE_PATH}` now."
)
CAPABILITIES = Capabilities(sampling=True, output="image")
"""Of the sampling parameters, an image model takes `seed` only (see `media`)."""


class ImageFields(MediaFields, Protocol):
    """The model settings image generation reads."""

    base_url: str
    api_key: SecretStr | None
    nologo: bool
    image_output: str
    max_request_line: int
    max_image_download_bytes: int


@dataclass(frozen=True)
class ImageEndpoint:
    """Image generation, for one model's settings.

    Attributes:
        transport: Where the image API is and how hard to try; the image is
            downloaded with the same settings.
        default_model: The image model named when the call chose none.
        width: The picture's width in pixels (`None`: the service's 768).
        height: The picture's height in pixels (`None`: the service's 768).
        nologo: Ask for the picture without the provider's logo.
        image_output: `"base64"` downloads the image into the reply, `"url"`
            gives only its URL.
        api_key: The key sent (the free key when the user gave none).
        max_request_line: Longest request line sent, in bytes.
        max_download_bytes: Largest image downloaded, in bytes.
    """

    transport: TransportSettings
    default_model: str
    width: int | None
    height: int | None
    nologo: bool
    image_output: str
    api_key: str
    max_request_line: int
    max_download_bytes: int
    name = "image"
    capabilities = CAPABILITIES

    @classmethod
    def configure(cls, fields: ImageFields, common: TransportSettings) -> ImageEndpoint:
        """Image generation for a model's `fields`, with the `common` settings.

        Raises:
            DynasparkInputError: If a setting does not fit the model.
        """
        check_fields(fields)
        key = fields.api_key.get_secret_value() if fields.api_key else ""
        url = fields.base_url.rstrip("/") + IMAGE_PATH
        return _configured(
            surface_transport(common, url, NOT_FOUND_HINT, MOVED_HINT),
            fields.model,
            fields.width,
            fields.height,
            fields.nologo,
            fields.image_output,
            key or PUBLIC_API_KEY,
            fields.max_request_line,
            fields.max_image_download_bytes,
        )

    def request(self, call: Call) -> Request:
        """The conversation as the picture's prompt, with the picture's settings.

        Raises:
            DynasparkInputError: If the call names another kind of model,
                holds images, binds tools, asks for structured output or gives
                a sampling parameter other than `seed`, or if its request line
                would be too long.
        """
        prompt = build_prompt(call.messages)
        model = call.model or self.default_model
        check_call(
            "image",
            model=model,
            images=len(prompt.images),
            sampling=call.sampling,
        )
        query = {"user_input": prompt.text, "model": model}
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None:
                query[name] = str(value)
        if self.nologo:
            query["nologo"] = "true"
        if "seed" in call.sampling:
            query["seed"] = str(call.sampling["seed"])
        query["api_key"] = self.api_key
        check_request_line(
            self.transport.url, query, self.max_request_line, elsewhere=""
        )
        return Request(model, prompt, query)

    async def send(self, request: Request) -> Reply:
        """Ask for the picture, then download it (unless only its URL is wanted).

        Raises:
            DynasparkError: A typed subclass for each failure; see `errors`.
        """
        base = self.transport.url
        answer, url = await get_read(
            self.transport,
            request.fields,
            lambda answer, *, prompt: image_url(answer, base=base, prompt=prompt),
        )
        if self.image_output == "url":
            block = url_block(url)
        else:
            data, mime_type = await fetch_image(
                url, max_bytes=self.max_download_bytes, settings=self.transport
            )
            block = image_block(data, mime_type)
        return Reply(
            model=request.model,
            rate_limit=rate_limit(answer.headers),
            done=True,
            blocks=(block,),
            source_url=url,
        )

    async def events(self, request: Request) -> AsyncGenerator[Reply, None]:
        """The picture, as the one piece of a stream."""
        yield await self.send(request)


_configured = functools.lru_cache(maxsize=32)(ImageEndpoint)
"""`ImageEndpoint`, built once per set of values (positional, in field order)."""


def image_url(answer: Answer, *, base: str, prompt: str | None = None) -> str:
    """The absolute http(s) URL of the picture in a `200` answer.

    Args:
        answer: The image API's answer.
        base: The URL the request went to; a relative `image_url` is resolved
            against it.
        prompt: The prompt sent; an error that quotes it says `[your prompt]`.

    Raises:
        DynasparkResponseError: If the answer is an error, or holds no
            http(s) `image_url`.
    """
    try:
        data: Any = json.loads(answer.body)
    except ValueError:
        data = None
    found = data.get("image_url") if isinstance(data, dict) else None
    if isinstance(found, str) and found.strip():
        url = urljoin(base, found.strip())
        if urlsplit(url).scheme in ("http", "https"):
            return url
        msg = (
            "Dynaspark gave an `image_url` that is not an http(s) URL, so the "
            "picture was not fetched. Retry; if this persists, please report it."
        )
        raise DynasparkResponseError(msg, status_code=200)
    said = server_message(answer.body, prompt=prompt)
    if isinstance(data, dict) and "error" in data:
        msg = f"Dynaspark reported an error: {said}. Retry later, or change the input."
    else:
        msg = (
            'Dynaspark answered 200 without the `{"image_url": ...}` of a picture. '
            "The service may be under maintenance or waking up: retry in a minute."
        )
    raise DynasparkResponseError(msg, status_code=200, server_message=said)


async def fetch_image(
    url: str, *, max_bytes: int, settings: TransportSettings
) -> tuple[bytes, str]:
    """Download a generated picture and check that it is a PNG or JPEG.

    Returns:
        The picture's bytes, and its MIME type (read from the bytes, not from
        what the server declared).

    Raises:
        DynasparkResponseError: If the download fails or is over `max_bytes`,
            or the body is not a PNG or JPEG image.
    """
    host = urlsplit(url).hostname or "the image host"
    try:
        body, _declared = await transport.download(
            url, max_bytes=max_bytes, settings=settings
        )
    except DynasparkImageError as error:
        msg = f"Dynaspark generated a picture, but fetching it failed: {error}"
        raise DynasparkResponseError(msg, status_code=200) from None
    mime_type = image_mime(body)
    if mime_type is None:
        msg = (
            f"The picture Dynaspark pointed to (on {host}) is not a PNG or JPEG "
            f"image ({len(body)} bytes that do not decode as one). Retry; if this "
            "persists, the image host may be failing."
        )
        raise DynasparkResponseError(msg, status_code=200)
    return body, mime_type
