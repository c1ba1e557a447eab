"""A model's settings as cache keys and traces show them, less secrets. Pure.

`ls_params` are the LangSmith parameters of a call.

LangChain reads `_identifying_params` on every call, for the cache key and the
trace. They are derived from the fields, so a new field is covered without
listing it: secrets (`SecretStr` values and `api_key`) are left out, and URLs
are shown without the `user:password@` they may carry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import attrgetter, is_not
from typing import Any

from langchain_core.language_models.base import LangSmithParams
from pydantic import BaseModel, SecretBytes, SecretStr

from langchain_dynaspark.endpoints import Router
from langchain_dynaspark.messages import API_DEFAULT_MODEL
from langchain_dynaspark.redact import scrub_url

__all__ = ["identifying_params", "ls_params"]

_SECRET_FIELDS = frozenset({"api_key"})
"""Fields never shown (and so never in cache keys and traces), besides any
field whose value is a `SecretStr`/`SecretBytes`."""
_SHOWN_AS = {"stop": "stop_sequences"}
"""Fields shown under another name: the invocation parameters use `stop` for
the call's own stop sequences."""
_MAX_KEPT_PARAMS = 256


def identifying_params(model: BaseModel, base: type[BaseModel]) -> dict[str, Any]:
    """The fields `model`'s class adds to `base`, shown without secrets.

    `stop` is shown as `stop_sequences`, apart from a call's `stop`.
    """
    read, shown = _shown_settings(type(model), base)
    values = read(model)
    kept = _kept_params.get(id(model))
    # Derived again only when a field holds another object (one changed in
    # place is in the kept dict too).
    if kept is None or kept[0] is not read or any(map(is_not, kept[1], values)):
        params = {}
        for name, value in zip(shown, values, strict=True):
            if isinstance(value, str):
                params[name] = scrub_url(value)
            elif not isinstance(value, (SecretStr, SecretBytes)):
                params[name] = value
        if len(_kept_params) >= _MAX_KEPT_PARAMS:
            _kept_params.clear()
        kept = _kept_params[id(model)] = (read, values, params)
    return dict(kept[2])


def ls_params(
    endpoint: Router, model: Any, temperature: Any, stop: list[str] | None
) -> LangSmithParams:
    """The LangSmith parameters of a call to `endpoint`.

    `model` and `temperature` are the call's (else the model's); the
    temperature is shown only where the surface takes it.
    """
    params = LangSmithParams(
        ls_provider="dynaspark",
        ls_model_name=model or endpoint.default_model or API_DEFAULT_MODEL,
        ls_model_type="chat",
    )
    if endpoint.capabilities.sampling and isinstance(temperature, (int, float)):
        params["ls_temperature"] = float(temperature)
    if stop:
        params["ls_stop"] = stop
    return params


@functools.cache
def _shown_settings(
    cls: type[BaseModel], base: type[BaseModel]
) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[str, ...]]:
    """What `identifying_params` shows: a reader of the fields, and their names.

    The fields `cls` adds to `base`, less `_SECRET_FIELDS`, read all at once by
    an `attrgetter` (in field order), and the names they are shown under;
    worked out once per class.
    """
    names = [
        name
        for name in cls.model_fields
        if name not in base.model_fields and name not in _SECRET_FIELDS
    ]
    return attrgetter(*names), tuple(_SHOWN_AS.get(name, name) for name in names)


_kept_params: dict[int, tuple[Any, tuple[Any, ...], dict[str, Any]]] = {}
"""By `id` of a model: the reader, the field values its params were derived
from, and those. Params are a pure function of the class (its reader) and these
objects, which the entry keeps alive, so a model that reuses an `id` gets them
only if it holds the very same objects."""
