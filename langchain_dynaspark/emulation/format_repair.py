"""A reply that missed its required form -> one more request showing the model why.

Tool calling and structured output are emulated, so a model can answer in the
wrong form. When a reply had to take a form and did not, `ChatDynaspark` asks
again, in the same conversation: the model sees its own reply and a system turn
with the exact error and the instructions restated (the `repair` text of
`DEFAULT_INSTRUCTIONS`). `format_retries` (default 1) bounds how often; `0`
turns repair off. A reply needs repair when:

- a call was required (`tool_choice` `"any"`/`"required"` or a tool name) and
  it holds no valid call;
- it holds an invalid call (arguments that do not match the tool's schema, or a
  tool that was not offered), under any `tool_choice` but `"none"`;
- structured output (`response_format`) was asked for and it holds no JSON
  object, or none that matches the schema.

Plain prose under `tool_choice="auto"` is an answer, never repaired. A repair
request goes to whichever surface it fits (with `endpoint="auto"`); when it
fits none, the first reply is returned as it is, its invalid calls kept. The extra
request is a nested run of the same model (`ask`), so it goes through the same
transport, rate limiter, cache and callbacks, and shows in traces; the returned
message says how many extra requests were made in
`response_metadata["format_retries"]`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from langchain_dynaspark.emulation.instructions import fill
from langchain_dynaspark.emulation.tool_calls import TOO_MANY_CALLS, ParsedReply
from langchain_dynaspark.emulation.validation import schema_error
from langchain_dynaspark.errors import DynasparkInputError
from langchain_dynaspark.json_values import json_objects

__all__ = [
    "Attempt",
    "arepair",
    "format_problem",
    "repair",
    "repair_config",
    "repair_prompt",
]


@dataclass(frozen=True)
class Attempt:
    """One request's outcome, as `repair` needs it.

    Attributes:
        message: The parsed reply.
        text: The reply as the model wrote it.
        repair_prompt: The system turn to send if the reply missed its form,
            else `None`.
    """

    message: AIMessage
    text: str
    repair_prompt: str | None = None


def format_problem(
    parsed: ParsedReply,
    text: str,
    *,
    tool_choice: str | None,
    response_format: Mapping[str, Any] | None,
) -> str | None:
    """What is wrong with the form of a reply, or `None` if nothing is.

    Args:
        parsed: The reply split into prose and calls.
        text: The reply as the model wrote it.
        tool_choice: `"auto"`, `"any"`, `"none"` or a tool name when tools are
            bound, else `None`.
        response_format: As `check_response_format` returns it, or `None`.
    """
    if tool_choice is not None and tool_choice != "none":
        errors = [
            f"{_quoted(call['name']) or 'a tool call'}: {call['error']}"
            for call in parsed.invalid_tool_calls
            if not (call["error"] or "").startswith(TOO_MANY_CALLS)
        ]
        if errors:
            return " ".join(errors)
        if tool_choice != "auto" and not parsed.tool_calls:
            wanted = "a tool" if tool_choice == "any" else f"the tool {tool_choice}"
            return f"You had to call {wanted}, but the reply calls no tool."
    if response_format is None:
        return None
    objects = json_objects(text)
    if not objects:
        return "The reply holds no JSON object."
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    mismatches = [schema_error(schema, value) for value in objects]
    if all(mismatch is not None for mismatch in mismatches):
        return f"The JSON object does not match the schema: {mismatches[-1]}."
    return None


def _quoted(name: str | None) -> str:
    """A tool name the model wrote, as a JSON string: one line, plainly quoted.

    The repair prompt is a system turn, so text the model wrote is shown there
    as data, never as words of the instructions.
    """
    return json.dumps(name, ensure_ascii=False) if name else ""


def repair_prompt(template: str, problem: str, instructions: str | None) -> str:
    """The system turn that asks for a repaired reply."""
    return fill(template, error=problem, form=instructions or "")


def repair(
    messages: Sequence[BaseMessage],
    attempt: Attempt,
    retries: int,
    ask: Callable[[list[BaseMessage], int], AIMessage],
) -> AIMessage:
    """The reply, repaired by asking again if it missed its form.

    Args:
        messages: The conversation the reply answers.
        attempt: The reply.
        retries: How many more requests may be made.
        ask: Sends a conversation, allowing that many further retries.
    """
    if attempt.repair_prompt is None or retries <= 0:
        return attempt.message
    try:
        repaired = ask(_conversation(messages, attempt), retries - 1)
    except DynasparkInputError:  # the repair request fits no surface
        return attempt.message
    return _counted(repaired)


async def arepair(
    messages: Sequence[BaseMessage],
    attempt: Attempt,
    retries: int,
    ask: Callable[[list[BaseMessage], int], Awaitable[AIMessage]],
) -> AIMessage:
    """Async `repair`."""
    if attempt.repair_prompt is None or retries <= 0:
        return attempt.message
    try:
        repaired = await ask(_conversation(messages, attempt), retries - 1)
    except DynasparkInputError:  # the repair request fits no surface
        return attempt.message
    return _counted(repaired)


def repair_config(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> RunnableConfig:
    """The repair request runs nested in the call's run, so traces show it.

    Tagged `nostream` so LangGraph's message stream shows only the final reply.
    """
    config = RunnableConfig(run_name="ChatDynaspark format repair", tags=["nostream"])
    if run_manager is not None:
        manager_class = (
            AsyncCallbackManager
            if isinstance(run_manager, AsyncCallbackManagerForLLMRun)
            else CallbackManager
        )
        manager = manager_class(handlers=[], parent_run_id=run_manager.run_id)
        manager.set_handlers(run_manager.inheritable_handlers)
        manager.add_tags(run_manager.inheritable_tags)
        manager.add_metadata(run_manager.inheritable_metadata)
        config["callbacks"] = manager
    return config


def _conversation(
    messages: Sequence[BaseMessage], attempt: Attempt
) -> list[BaseMessage]:
    return [
        *messages,
        AIMessage(attempt.text),
        SystemMessage(attempt.repair_prompt or ""),
    ]


def _counted(message: AIMessage) -> AIMessage:
    metadata = dict(message.response_metadata)
    metadata["format_retries"] = metadata.get("format_retries", 0) + 1
    return message.model_copy(update={"response_metadata": metadata, "id": None})
