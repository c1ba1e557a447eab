"""The surfaces of the Dynaspark service, one module each, and the choice of one.

Every surface implements `langchain_dynaspark.endpoints.base.Endpoint`. To add
one, write its module and register its class in `ENDPOINTS` (and, if
`endpoint="auto"` may use it, in `CHOICES["auto"]`). `configure` turns a
model's fields into the `Router` that picks the surface of each call
(`endpoints.routing`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import attrgetter, is_not
from typing import Any, Protocol

from pydantic import SecretStr

from langchain_dynaspark.endpoints.api import ApiEndpoint
from langchain_dynaspark.endpoints.base import (
    PROMPT_FIELD,
    Call,
    Capabilities,
    Endpoint,
    Request,
)
from langchain_dynaspark.endpoints.form import FormEndpoint
from langchain_dynaspark.endpoints.image import ImageEndpoint
from langchain_dynaspark.endpoints.routing import AUTO, AUTO_CAPABILITIES, Router
from langchain_dynaspark.endpoints.speech import SpeechEndpoint
from langchain_dynaspark.media import IMAGE_MODELS, SPEECH_MODEL
from langchain_dynaspark.transport import TransportSettings

__all__ = [
    "CHOICES",
    "ENDPOINTS",
    "MEDIA_ENDPOINTS",
    "Call",
    "Capabilities",
    "Endpoint",
    "Request",
    "Router",
    "capabilities",
    "configure",
]

ENDPOINTS: dict[str, type[FormEndpoint] | type[ApiEndpoint]] = {
    "form": FormEndpoint,
    "api": ApiEndpoint,
}
"""The surfaces by name."""
CHOICES: dict[str, tuple[str, ...]] = {
    AUTO: ("api", "form"),
    **{name: (name,) for name in ENDPOINTS},
}
"""The surfaces each `ChatDynaspark(endpoint=...)` setting may use, preferred
first: one for a strict setting."""

MEDIA_ENDPOINTS: dict[str, type[ImageEndpoint] | type[SpeechEndpoint]] = {
    **dict.fromkeys(IMAGE_MODELS, ImageEndpoint),
    SPEECH_MODEL: SpeechEndpoint,
}
"""The surfaces that answer these models, whatever `endpoint` names (strict: no
other surface is tried): the image models draw, `openai-audio` speaks."""


def capabilities(name: str, model: object = None) -> Capabilities:
    """What calls can carry on the `endpoint` setting called `name`, for `model`.

    An image or speech model has its own surface, whatever `name` says.
    """
    media = MEDIA_ENDPOINTS.get(model) if isinstance(model, str) else None
    if media is not None:
        return media.capabilities
    if name == AUTO:
        return AUTO_CAPABILITIES
    return ENDPOINTS[name].capabilities


class ModelFields(Protocol):
    """The model settings every surface sends with; each reads its own too."""

    @property
    def endpoint(self) -> str:
        """The name of the surface to speak."""
        ...

    @property
    def model_fields_set(self) -> set[str]:
        """The fields given by hand."""
        ...

    model: str
    base_url: str
    timeout: float | None
    connect_timeout: float | None
    max_retries: int
    proxy: str | None
    max_response_bytes: int
    max_connections: int
    api_key: SecretStr | None


def configure(fields: ModelFields) -> Router:
    """The surfaces a model's `fields` allow, configured from them.

    Kept per model while its fields hold the same objects (a call asks for it
    more than once, and fields may be changed between calls).
    """
    values = _reader(type(fields))(fields)
    given = fields.model_fields_set
    kept = _kept.get(id(fields))
    if kept and not any(map(is_not, kept[0], values)) and kept[1] == given:
        return kept[2]
    endpoint = _configured(fields)
    if len(_kept) >= _MAX_KEPT:
        _kept.clear()
    _kept[id(fields)] = (values, frozenset(given), endpoint)
    return endpoint


def _configured(fields: ModelFields) -> Router:
    """The surfaces a model's `fields` allow, built from them."""
    api_key = fields.api_key.get_secret_value() if fields.api_key else ""
    common = _settings_of(
        fields.base_url,
        fields.timeout,
        fields.connect_timeout,
        fields.max_retries,
        fields.proxy,
        fields.max_response_bytes,
        fields.max_connections,
        (api_key,) if api_key else (),
        TransportSettings.not_found_hint,
        PROMPT_FIELD,
    )
    media: Any = MEDIA_ENDPOINTS.get(fields.model)
    if media is not None:
        return Router(media.name, (media.configure(fields, common),))
    surfaces: list[Endpoint] = []
    for name in CHOICES[fields.endpoint]:
        surface: Any = ENDPOINTS[name]
        surfaces.append(surface.configure(fields, common))
    return Router(fields.endpoint, tuple(surfaces))


@functools.cache
def _reader(cls: type[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """Reads all the fields of a model class at once, in field order."""
    return attrgetter(*cls.model_fields)


_kept: dict[int, tuple[tuple[Any, ...], frozenset[str], Router]] = {}
"""By `id` of a model: the field values (and the names given by hand) its
router was built from, and the router. The router is a pure function of
these, which the entry keeps alive, so a model that reuses an `id` gets it only
if it holds the very same objects."""
_MAX_KEPT = 256

_settings_of = functools.lru_cache(maxsize=32)(TransportSettings)
"""`TransportSettings`, remembering its last results.

A call derives these frozen settings from the model's fields, which are the same
call after call (building them anew cost about 5 µs a call). A result is shared
only by calls with equal settings, so no caller sees another's. Positional
arguments only, in field order. The URL is the base URL: each surface puts its
own path on it."""
