"""What one request asks for beyond text: tools to call, a JSON reply. Pure.

`Emulation` takes a call's `tools`, `tool_choice`, `parallel_tool_calls` and
`response_format` arguments (checked), gives the instructions they need, and
reads a reply against them: prose and tool calls, and what is wrong with its
form when it had to take one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_dynaspark.emulation.format_repair import format_problem
from langchain_dynaspark.emulation.instructions import (
    build_instructions,
    check_response_format,
    check_tool_choice,
    check_tools,
)
from langchain_dynaspark.emulation.tool_calls import ParsedReply, parse_tool_calls
from langchain_dynaspark.errors import DynasparkInputError

__all__ = ["NO_EMULATION", "Emulation"]


@dataclass(frozen=True)
class Emulation:
    """What one request asks for beyond text: tool calls, a JSON reply."""

    tools: list[dict[str, Any]]
    tool_choice: str
    parallel_tool_calls: bool | None
    response_format: dict[str, Any] | None

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> Emulation:
        """Take (and check) the tool and response-format arguments of a call."""
        tools = check_tools(kwargs.pop("tools", None) or ())
        tool_choice = check_tool_choice(kwargs.pop("tool_choice", None), tools)
        parallel = kwargs.pop("parallel_tool_calls", None)
        if parallel is not None and not isinstance(parallel, bool):
            msg = "`parallel_tool_calls` must be True, False or None."
            raise DynasparkInputError(msg)
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            response_format = check_response_format(response_format)
        return cls(tools, tool_choice, parallel, response_format)

    @property
    def buffered(self) -> bool:
        """Whether the reply must be whole before it is parsed."""
        return bool(self.tools) or self.response_format is not None

    def instructions(self, texts: dict[str, str]) -> str | None:
        """The instructions this request needs, from the resolved `texts`."""
        return build_instructions(
            texts,
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
        )

    def read(self, text: str) -> tuple[ParsedReply, str | None]:
        """The reply split into prose and calls, and what is wrong with its form."""
        parsed = self.parse(text)
        return parsed, self.problem(parsed, text)

    def parse(self, text: str) -> ParsedReply:
        """Split the reply into prose and tool calls when tools are bound."""
        if not self.tools:
            return ParsedReply(text)
        offered = (
            {}
            if self.tool_choice == "none"
            else {
                tool["function"]["name"]: tool["function"].get("parameters")
                for tool in self.tools
            }
        )
        max_calls = 1 if self.parallel_tool_calls is False else None
        required = None if self.tool_choice in ("auto", "none") else self.tool_choice
        return parse_tool_calls(text, offered, max_calls=max_calls, required=required)

    def problem(self, parsed: ParsedReply, text: str) -> str | None:
        """What is wrong with the reply's form, if it had to take one."""
        return format_problem(
            parsed,
            text,
            tool_choice=self.tool_choice if self.tools else None,
            response_format=self.response_format,
        )


NO_EMULATION = Emulation.pop({})
"""The emulation of a call without tools or a response format (read only)."""
