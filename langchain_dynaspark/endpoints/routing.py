"""Which surface carries a call: the one place where the choice is made.

`endpoint="form"` and `endpoint="api"` are strict: that surface, no fallback.
`endpoint="auto"` (the default) sends each call where it fits: the documented
API when the request fits its request line and holds no image (so text gets
token streaming, usage and sampling), else the web form. A surface remembered
as gone (`endpoints.gone`) is skipped, and one that answers as gone mid-call is
remembered and the call goes to the other. When no surface can carry a call,
one error names what was tried and why each could not carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_dynaspark.endpoints.base import Call, Capabilities, Endpoint, Request
from langchain_dynaspark.endpoints.gone import gone_for
from langchain_dynaspark.errors import (
    DynasparkError,
    DynasparkInputError,
    DynasparkNotFoundError,
)

__all__ = ["AUTO", "AUTO_CAPABILITIES", "Route", "Router"]

AUTO = "auto"
AUTO_CAPABILITIES = Capabilities(images=True, sampling=True, streaming=True)
"""What `endpoint="auto"` can carry: each call on a surface that can."""


@dataclass(frozen=True)
class Route:
    """A call on the surface chosen to carry it.

    Attributes:
        endpoint: The surface.
        request: The call as that surface sends it.
    """

    endpoint: Endpoint
    request: Request


@dataclass(frozen=True)
class Router:
    """The surfaces a model may use, in the order they are preferred.

    Attributes:
        name: The model's `endpoint` setting.
        surfaces: The surfaces, most preferred first; one when strict.
    """

    name: str
    surfaces: tuple[Endpoint, ...]

    @property
    def capabilities(self) -> Capabilities:
        """What calls can carry: a strict surface's, or any surface's."""
        if len(self.surfaces) == 1:
            return self.surfaces[0].capabilities
        return AUTO_CAPABILITIES

    @property
    def default_model(self) -> str | None:
        """The model named when the call names none, on the preferred surface."""
        return self.surfaces[0].default_model

    @property
    def rerouting(self) -> bool:
        """Whether a call may move to another surface."""
        return len(self.surfaces) > 1

    def route(self, call: Call) -> Route:
        """The first surface, not remembered as gone, that can carry `call`.

        Raises:
            DynasparkInputError: If no surface can carry the call (or, when
                strict, the one surface cannot).
            DynasparkNotFoundError: If every surface that could is gone.
        """
        if not self.rerouting:
            surface = self.surfaces[0]
            return Route(surface, surface.request(call))
        return self._first(call, self.surfaces, [])

    def reroute(self, call: Call, failed: Endpoint, error: DynasparkError) -> Route:
        """After `failed` answered as gone (and is remembered so): pick another.

        Raises:
            DynasparkInputError: If no other surface can carry the call.
            DynasparkNotFoundError: If every other surface is gone too.
        """
        tried = [f"{failed.name}: {_first_sentence(error)}"]
        others = tuple(s for s in self.surfaces if s is not failed)
        return self._first(call, others, tried)

    def _first(
        self, call: Call, surfaces: tuple[Endpoint, ...], tried: list[str]
    ) -> Route:
        missing = bool(tried)
        for surface in surfaces:
            left = gone_for(surface.transport.url)
            if left is not None:
                missing = True
                tried.append(
                    f"{surface.name}: answered as gone at {surface.transport.url} "
                    f"(tried again in {left:.0f} s)"
                )
                continue
            try:
                return Route(surface, surface.request(call))
            except DynasparkInputError as error:
                tried.append(f"{surface.name}: {_first_sentence(error)}")
        reasons = "; ".join(tried)
        if missing:
            msg = (
                f"No surface of the Dynaspark service could carry this call "
                f"({reasons}). Check `base_url`, `path` and `api_path`, or pin a "
                "surface with `endpoint='form'` or `endpoint='api'`."
            )
            raise DynasparkNotFoundError(msg, status_code=404)
        msg = (
            f"No surface of the Dynaspark service can carry this call "
            f"({reasons}). Shorten the conversation or change the input."
        )
        raise DynasparkInputError(msg)


def _first_sentence(error: BaseException) -> str:
    text = str(error)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
