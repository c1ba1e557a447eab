"""A model's and a call's arguments -> checked options, and warnings. Pure.

`ChatDynaspark` refuses unknown arguments (naming the nearest known one), and
warns once about parameters it ignores: those other chat models take and the
service has not (`top_k`, `max_tokens`, ...), and sampling parameters on a
surface that has none. A call's own arguments (`model`, `stop`, sampling
parameters, tools, a response format) are checked here before anything is sent.
"""

from __future__ import annotations

import difflib
import functools
import math
import sys
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field

from langchain_dynaspark.emulation.spec import NO_EMULATION, Emulation
from langchain_dynaspark.errors import DynasparkInputError

if TYPE_CHECKING:
    from types import FrameType

__all__ = [
    "CONSUMED_BY_LANGCHAIN",
    "DEFAULT_MODEL",
    "IGNORED_PARAMS",
    "KNOWN_MODELS",
    "SAMPLING_PARAMS",
    "CallOptions",
    "arguments_of",
    "call_options",
    "check_model_name",
    "construction_arguments",
    "pop_format_retries",
    "sampling_field",
    "unknown_message",
    "warn_ignored",
    "warn_once",
]

DEFAULT_MODEL = "gemini-2.0-flash"
"""The newest model the service is known to offer. Google retired the Gemini 1.5
models in 2025, so the service may no longer serve them."""
KNOWN_MODELS = (
    "gemini-1.5-flash",
    "gemini-1.5-flash-8b",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
)
"""Models the service is known to offer. Any other name is sent unchanged."""

_SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 3.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
"""The documented ranges of the API's sampling parameters."""
SAMPLING_PARAMS = (*_SAMPLING_RANGES, "seed")
"""Sampling parameters the API takes and the form ignores (with a warning)."""
IGNORED_PARAMS = frozenset({"top_k", "max_tokens", "max_output_tokens", "n"})
"""Parameters other chat models take and no surface has (warned, dropped)."""
_CALL_ARGUMENTS = (
    "model",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "format_retries",
    *SAMPLING_PARAMS,
)
CONSUMED_BY_LANGCHAIN = frozenset({"ls_structured_output_format", "format_retries"})
"""Call arguments taken out before `call_options` sees them: by `BaseChatModel`
(`ls_structured_output_format`), or by the repair step (`format_retries`)."""
_INTERNAL_MODULES = frozenset(
    {
        "langchain_dynaspark",
        "langchain_core",
        "langchain",
        "langgraph",
        "pydantic",
        "concurrent",
        "threading",
        "asyncio",
        "contextlib",
        "contextvars",
        "functools",
    }
)
"""Frames a warning skips to point at the caller's line."""


def sampling_field(name: str) -> Any:
    """A sampling field, validated to its documented range."""
    low, high = _SAMPLING_RANGES[name]
    return Field(default=None, ge=low, le=high)


@dataclass(frozen=True)
class CallOptions:
    """A call's checked arguments.

    Attributes:
        model: The model the call names, if any.
        sampling: The sampling parameters the call gives, by name; `None`
            sends none where the model has one.
        emulation: The tools or response format the call asks for.
        ignored: Parameters no surface has, to warn about.
    """

    model: str | None = None
    sampling: dict[str, float | int | None] = field(default_factory=dict)
    emulation: Emulation = NO_EMULATION
    ignored: frozenset[str] = frozenset()


NO_OPTIONS = CallOptions()
"""The options of a call without arguments (read only)."""


def call_options(kwargs: dict[str, Any]) -> CallOptions:
    """Take a call's model, sampling parameters and emulation from `kwargs`.

    Raises:
        DynasparkInputError: If an argument is unknown or out of range.
    """
    if not kwargs:  # the common call: nothing to check, no emulation
        return NO_OPTIONS
    model = kwargs.pop("model", None)
    if model is not None and not isinstance(model, str):
        msg = f"`model` must be a model name string, not {type(model).__name__}."
        raise DynasparkInputError(msg)
    if model is not None:
        check_model_name(model)
    sampling = {name: kwargs.pop(name) for name in SAMPLING_PARAMS if name in kwargs}
    for name, value in sampling.items():
        if value is not None:
            _check_sampling(name, value)
    emulation = Emulation.pop(kwargs)
    ignored = frozenset(IGNORED_PARAMS.intersection(kwargs))
    unknown = sorted(set(kwargs) - ignored)
    if unknown:
        raise DynasparkInputError(unknown_message(unknown, _CALL_ARGUMENTS))
    return CallOptions(model, sampling, emulation, ignored)


def check_model_name(model: str) -> None:
    """Refuse a blank model name, which the service cannot answer."""
    if not model.strip():
        msg = f"`model` is empty: give a model name, such as {DEFAULT_MODEL!r}."
        raise DynasparkInputError(msg)


def pop_format_retries(kwargs: dict[str, Any], default: int) -> int:
    """Take a call's `format_retries` (else `default`), checked."""
    retries = kwargs.pop("format_retries", default)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = "`format_retries` must be a whole number, 0 or more."
        raise DynasparkInputError(msg)
    return retries


def _check_sampling(name: str, value: Any) -> None:
    """Check one per-call sampling parameter against its documented range."""
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"`seed` must be an integer, not {value!r}."
            raise DynasparkInputError(msg)
        return
    low, high = _SAMPLING_RANGES[name]
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or not math.isfinite(value) or not low <= value <= high:
        msg = f"`{name}` must be a number from {low:g} to {high:g}, not {value!r}."
        raise DynasparkInputError(msg)


_warned_lock = threading.Lock()


def warn_once(warned: set[str], names: Iterable[str], endpoint: str) -> None:
    """Warn about the `names` not in `warned` (one model's), and add them."""
    with _warned_lock:
        new = set(names) - warned
        warned.update(new)
    if new:
        warn_ignored(new, endpoint)


def construction_arguments(
    values: dict[str, Any], known: frozenset[str], *, takes_sampling: bool
) -> dict[str, Any]:
    """A model's arguments, checked: unknown ones refused, ignored ones dropped.

    Warns about the ignored ones: those no surface has, and the sampling
    parameters given to a surface that `takes_sampling` says has none.

    Raises:
        ValueError: If an argument is unknown (naming the nearest known one).
    """
    unknown = sorted(set(values) - known - IGNORED_PARAMS)
    if unknown:
        raise ValueError(unknown_message(unknown, sorted(known)))
    ignored = set(IGNORED_PARAMS.intersection(values))
    if not takes_sampling:
        ignored.update(n for n in SAMPLING_PARAMS if values.get(n) is not None)
    if ignored:
        warn_ignored(ignored, values.get("endpoint", "auto"))
    return {k: v for k, v in values.items() if k not in IGNORED_PARAMS}


@functools.cache
def arguments_of(cls: type[BaseModel]) -> frozenset[str]:
    """The names and aliases a model class takes."""
    names = set(cls.model_fields)
    for info in cls.model_fields.values():
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, AliasChoices):
            names.update(
                choice
                for choice in info.validation_alias.choices
                if isinstance(choice, str)
            )
    return frozenset(names)


def unknown_message(unknown: list[str], known: Sequence[str]) -> str:
    """Unknown arguments, each with the nearest known one when there is one."""
    hints = []
    for name in unknown:
        near = difflib.get_close_matches(name, known, n=1)
        hints.append(f"`{name}`" + (f" (did you mean `{near[0]}`?)" if near else ""))
    return (
        f"ChatDynaspark got unexpected argument(s): {', '.join(hints)}. Check the "
        "spelling; the arguments are listed in the ChatDynaspark docstring."
    )


def warn_ignored(names: set[str], endpoint: str) -> None:
    """Warn that `names` are ignored: on the form, every sampling parameter."""
    reason = (
        "the Dynaspark form endpoint has no sampling parameters"
        if endpoint == "form"
        else "the Dynaspark API has no such parameter"
    )
    warnings.warn(
        f"ChatDynaspark ignores {', '.join(sorted(names))}: {reason}.",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The `stacklevel` of the first frame outside this package and LangChain.

    Counted from the function that calls `warnings.warn`, so that the warning
    points at the user's own line however deep LangChain's machinery is.
    """
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _INTERNAL_MODULES:
            return level
        frame = frame.f_back
        level += 1
    return 2
