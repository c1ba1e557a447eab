"""A conversation and a call's options -> the request one surface sends. Pure.

The first step of every call: the instructions the call's tools or response
format need, the sampling parameters in force, the surface chosen to carry the
call (`endpoints.routing`) and its `Request` (which that surface builds from
the conversation, refusing what it cannot carry). Nothing is sent here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_dynaspark.emulation.instructions import resolve_instructions
from langchain_dynaspark.emulation.spec import Emulation
from langchain_dynaspark.endpoints import Call, Endpoint, Request, Router
from langchain_dynaspark.endpoints.base import Capabilities
from langchain_dynaspark.endpoints.routing import Route
from langchain_dynaspark.errors import DynasparkError
from langchain_dynaspark.media import check_kind
from langchain_dynaspark.options import (
    CONSUMED_BY_LANGCHAIN,
    SAMPLING_PARAMS,
    CallOptions,
    call_options,
)

__all__ = [
    "PreparedCall",
    "Warn",
    "precheck",
    "prepare",
    "reroute",
    "sampling_for",
]

Warn = Callable[[Iterable[str], str], None]
"""Warns once about ignored parameters: their names, and the surface's."""


@dataclass(frozen=True)
class PreparedCall:
    """One call, checked and ready to send.

    Attributes:
        router: The surfaces the model may use.
        call: The call, in terms every surface understands.
        route: The surface chosen to carry it, and its request.
        emulation: The tools or response format the call asks for.
        stop: The stop sequences in force.
        texts: The instruction texts in force (with `format_instructions`).
        warn: Warns once per model about ignored parameters.
    """

    router: Router
    call: Call
    route: Route
    emulation: Emulation
    stop: list[str] | None
    texts: dict[str, str]
    warn: Warn

    @property
    def endpoint(self) -> Endpoint:
        """The surface that carries the call."""
        return self.route.endpoint

    @property
    def request(self) -> Request:
        """The request, as that surface sends it."""
        return self.route.request


def prepare(
    router: Router,
    messages: Sequence[BaseMessage],
    options: CallOptions,
    *,
    sampling: tuple[float | int | None, ...],
    stop: list[str] | None,
    format_instructions: dict[str, str] | None,
    stream: bool,
    warn: Warn,
) -> PreparedCall:
    """Check a call, choose its surface and build its request; nothing is sent.

    Args:
        router: The surfaces the model may use.
        messages: The conversation.
        options: The call's checked arguments.
        sampling: The model's own sampling parameters, in the order of
            `SAMPLING_PARAMS`.
        stop: The stop sequences in force.
        format_instructions: The model's overrides of the instruction texts.
        stream: Whether the reply is wanted event by event, where it can be.
        warn: Warns once per model about ignored parameters.

    Raises:
        DynasparkInputError: If no surface the model may use can carry it, or
            it asks for what the model's kind of reply cannot hold.
    """
    emulation = options.emulation
    texts = resolve_instructions(format_instructions)
    capabilities = router.capabilities
    check_kind(
        capabilities.output,
        options.model,
        emulated=bool(emulation.tools) or emulation.response_format is not None,
    )
    in_force = sampling_for(router.name, capabilities, options, sampling, warn)
    call = Call(
        options.model,
        messages,
        emulation.instructions(texts),
        in_force,
        json_mode=emulation.response_format is not None,
        stream=stream and capabilities.streaming and not emulation.buffered,
    )
    route = router.route(call)
    _warn_dropped(route, call, warn)
    return PreparedCall(router, call, route, emulation, stop, texts, warn)


def reroute(prepared: PreparedCall, error: DynasparkError) -> PreparedCall:
    """The call on another surface, after its own answered as gone.

    Raises:
        DynasparkInputError: If no other surface can carry the call.
        DynasparkNotFoundError: If every other surface is gone too.
    """
    route = prepared.router.reroute(prepared.call, prepared.endpoint, error)
    _warn_dropped(route, prepared.call, prepared.warn)
    return replace(prepared, route=route)


def _warn_dropped(route: Route, call: Call, warn: Warn) -> None:
    """Warn (once) when sampling parameters go to a surface without them."""
    if call.sampling and not route.endpoint.capabilities.sampling:
        warn(call.sampling, route.endpoint.name)


def precheck(
    router: Router,
    kwargs: Mapping[str, Any],
    sampling: tuple[float | int | None, ...],
    warn: Warn,
) -> None:
    """Check a call's arguments (and warn) before LangChain takes them over.

    Raises:
        DynasparkInputError: If an argument is unknown or out of range.
    """
    options = call_options(
        {k: v for k, v in kwargs.items() if k not in CONSUMED_BY_LANGCHAIN}
    )
    sampling_for(router.name, router.capabilities, options, sampling, warn)


def sampling_for(
    name: str,
    capabilities: Capabilities,
    options: CallOptions,
    defaults: tuple[float | int | None, ...],
    warn: Warn,
) -> dict[str, float | int]:
    """The sampling parameters to send to surface `name`.

    The call's parameters, else the model's `defaults` (in the order of
    `SAMPLING_PARAMS`); none where the surface has no sampling. Warns once per
    model about what is ignored: parameters no surface has, and the call's
    sampling parameters on a surface without them (the model's own were
    warned about when it was made).
    """
    given = options.sampling
    ignored = options.ignored
    if not capabilities.sampling:
        if given:
            ignored = ignored.union(n for n, v in given.items() if v is not None)
        if ignored:
            warn(ignored, name)
        return {}
    if ignored:
        warn(ignored, name)
    return {
        param: value
        for param, default in zip(SAMPLING_PARAMS, defaults, strict=True)
        if (value := given.get(param, default)) is not None
    }
