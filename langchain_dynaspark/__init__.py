"""LangChain integration for the free, no-key Dynaspark AI service.

`DynasparkImageGenerationTool` is imported on first use: a chat model alone
does not pay for defining a tool.
"""

from typing import TYPE_CHECKING, Any

from langchain_dynaspark._version import __version__
from langchain_dynaspark.chat_models import ChatDynaspark
from langchain_dynaspark.errors import (
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkImageError,
    DynasparkInputError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkRedirectError,
    DynasparkResponseError,
    DynasparkResponseTooLargeError,
    DynasparkTimeoutError,
)

if TYPE_CHECKING:
    from langchain_dynaspark.tools import DynasparkImageGenerationTool

__all__ = [
    "ChatDynaspark",
    "DynasparkAPIError",
    "DynasparkConnectionError",
    "DynasparkError",
    "DynasparkImageError",
    "DynasparkImageGenerationTool",
    "DynasparkInputError",
    "DynasparkInvalidRequestError",
    "DynasparkNotFoundError",
    "DynasparkRateLimitError",
    "DynasparkRedirectError",
    "DynasparkResponseError",
    "DynasparkResponseTooLargeError",
    "DynasparkTimeoutError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """`DynasparkImageGenerationTool`, imported when first asked for."""
    if name == "DynasparkImageGenerationTool":
        from langchain_dynaspark.tools import (  # noqa: PLC0415
            DynasparkImageGenerationTool,
        )

        return DynasparkImageGenerationTool
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
