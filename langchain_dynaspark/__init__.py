"""LangChain integration for the free, no-key Dynaspark AI service."""

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
