"""A conversation and a call's options -> the request one surface sends. Pure.

The first step of every call: the instructions the call's tools or response
format need, the sampling parameters in force, and the chosen surface's
`Request` (which that surface builds from the conversation, refusing what it
cannot carry). Nothing is sent here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_dynaspark.emulation.instructions import resolve_instructions
from langchain_dynaspark.emulation.spec import Emulation
from langchain_dynaspark.endpoints import Call, Endpoint, Request
from langchain_dynaspark.endpoints.base import Capabilities
from langchain_dynaspark.options import (
    CONSUMED_BY_LANGCHAIN,
    SAMPLING_PARAMS,
    CallOptions,
    call_options,
)

__all__ = ["PreparedCall", "Warn", "precheck", "prepare", "sampling_for"]

Warn = Callable[[Iterable[str], str], None]
"""Warns once about ignored parameters: their names, and the surface's."""


@dataclass(frozen=True)
class PreparedCall:
    """One call, checked and ready to send.

    Attributes:
        endpoint: The surface that carries it.
        request: The request, as that surface sends it.
        emulation: The tools or response format the call asks for.
        stop: The stop sequences in force.
        texts: The instruction texts in force (with `format_instructions`).
    """

    endpoint: Endpoint
    request: Request
    emulation: Emulation
    stop: list[str] | None
    texts: dict[str, str]


def prepare(
    endpoint: Endpoint,
    messages: Sequence[BaseMessage],
    options: CallOptions,
    *,
    sampling: tuple[float | int | None, ...],
    stop: list[str] | None,
    format_instructions: dict[str, str] | None,
    stream: bool,
    warn: Warn,
) -> PreparedCall:
    """Check a call against the surface and build its request; nothing is sent.

    Args:
        endpoint: The surface to carry the call.
        messages: The conversation.
        options: The call's checked arguments.
        sampling: The model's own sampling parameters, in the order of
            `SAMPLING_PARAMS`.
        stop: The stop sequences in force.
        format_instructions: The model's overrides of the instruction texts.
        stream: Whether the reply is wanted event by event, where it can be.
        warn: Warns once per model about ignored parameters.

    Raises:
        DynasparkInputError: If the input cannot be sent to this surface.
    """
    emulation = options.emulation
    texts = resolve_instructions(format_instructions)
    capabilities = endpoint.capabilities
    in_force = sampling_for(endpoint.name, capabilities, options, sampling, warn)
    call = Call(
        options.model,
        messages,
        emulation.instructions(texts),
        in_force,
        json_mode=emulation.response_format is not None,
        stream=stream and capabilities.streaming and not emulation.buffered,
    )
    return PreparedCall(endpoint, endpoint.request(call), emulation, stop, texts)


def precheck(
    endpoint: Endpoint,
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
    sampling_for(endpoint.name, endpoint.capabilities, options, sampling, warn)


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
