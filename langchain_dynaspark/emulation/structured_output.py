"""A chat model and a schema -> a runnable that returns parsed structured output.

Dynaspark has no JSON mode and no schema enforcement, so structured output is
emulated the way `with_structured_output` is built in the partner packages, on
top of prompt instructions (`langchain_dynaspark.emulation.instructions`):

- `json_schema`: the schema is shown in the prompt, and a JSON object of the
  reply (bare, fenced or amid prose, almost-JSON accepted) is validated
  client-side;
- `json_mode`: the prompt asks for a JSON object, read the same way;
- `function_calling`: the schema is bound as the only tool and a call to it is
  forced; the emulated tool call is parsed (a reply that is only the arguments
  object counts as the call).

Which object. A reply can hold several JSON objects (an echoed schema, an
example, then the answer). The last one that validates against the schema is
the answer; when none does (or there is no schema), the last one is, and a
Pydantic schema then raises on it. A reply with no object at all raises
`OutputParserException` with the reply attached (`include_raw=True` returns it
as `parsing_error` instead): the result is never `None` silently.

This module is imported on first use, so output parsers are not loaded with the
package.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import (
    Runnable,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
)
from langchain_core.utils.function_calling import (
    convert_to_json_schema,
    convert_to_openai_tool,
)
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_dynaspark.emulation.validation import schema_error
from langchain_dynaspark.json_values import json_objects

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from pydantic import BaseModel

__all__ = ["structured_runnable"]


def structured_runnable(
    model: BaseChatModel,
    schema: dict[str, Any] | type | None,
    *,
    method: Literal["function_calling", "json_mode", "json_schema"],
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
    """Build what `ChatDynaspark.with_structured_output` returns.

    Raises:
        ValueError: If `method` is unknown or `schema` is missing where needed.
    """
    if method == "function_calling":
        if schema is None:
            msg = "schema must be given when method is 'function_calling'."
            raise ValueError(msg)
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        llm = model.bind_tools(
            [schema],
            tool_choice=tool_name,
            strict=strict,
            ls_structured_output_format={
                "kwargs": {"method": method, "strict": strict},
                "schema": schema,
            },
        )
        output_parser: Runnable[Any, Any] = RunnableLambda(
            _ToolCallParser(tool_name, schema).parse
        )
    elif method in ("json_mode", "json_schema"):
        if method == "json_mode":
            response_format: dict[str, Any] = {"type": "json_object"}
            ls_kwargs: dict[str, Any] = {"method": method}
        elif schema is None:
            msg = "schema must be given when method is 'json_schema'."
            raise ValueError(msg)
        else:
            response_format = _json_schema_format(schema, strict)
            ls_kwargs = {"method": method, "strict": strict}
        llm = model.bind(
            response_format=response_format,
            ls_structured_output_format={"kwargs": ls_kwargs, "schema": schema},
        )
        output_parser = RunnableLambda(_JsonParser(schema).parse)
    else:
        msg = (
            f"Unrecognized method {method!r}: use 'json_schema', 'json_mode' "
            "or 'function_calling'."
        )
        raise ValueError(msg)
    if not include_raw:
        return llm | output_parser
    parser_assign = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | output_parser, parsing_error=lambda _: None
    )
    parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
    parser_with_fallback = parser_assign.with_fallbacks(
        [parser_none], exception_key="parsing_error"
    )
    return RunnableMap(raw=llm) | parser_with_fallback


def _json_schema_format(
    schema: dict[str, Any] | type, strict: bool | None
) -> dict[str, Any]:
    """An OpenAI-style `response_format` for a Pydantic class, TypedDict or dict."""
    json_schema = schema if isinstance(schema, dict) else convert_to_json_schema(schema)
    spec: dict[str, Any] = {
        "name": json_schema.get("title", "response"),
        "schema": json_schema,
    }
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


class _JsonParser:
    """Reply -> the JSON object that answers (see the module docstring)."""

    def __init__(self, schema: dict[str, Any] | type | None) -> None:
        self.pydantic: type[Any] | None = (
            schema
            if isinstance(schema, type) and is_basemodel_subclass(schema)
            else None
        )
        self.json_schema = _json_schema(schema)

    def parse(self, reply: BaseMessage | str) -> Any:
        text = reply if isinstance(reply, str) else reply.text
        return self.choose(json_objects(text), text)

    def choose(self, candidates: list[dict[str, Any]], text: str) -> Any:
        """The answer among `candidates`, validated.

        Raises:
            OutputParserException: If there is no candidate, or the chosen one
                does not fit a Pydantic schema.
        """
        if not candidates:
            msg = f"The reply holds no JSON object: {text}"
            raise OutputParserException(msg, llm_output=text)
        fitting = [c for c in candidates if schema_error(self.json_schema, c) is None]
        answer = (fitting or candidates)[-1]
        if self.pydantic is None:
            return answer
        validate = (
            getattr(self.pydantic, "model_validate", None) or self.pydantic.parse_obj
        )
        try:
            return validate(answer)
        except ValueError as err:
            msg = f"The reply's JSON does not match {self.pydantic.__name__}: {err}"
            raise OutputParserException(msg, llm_output=text) from err


class _ToolCallParser(_JsonParser):
    """Reply -> the arguments of the forced call (or the bare arguments object)."""

    def __init__(self, tool_name: str, schema: dict[str, Any] | type) -> None:
        super().__init__(schema)
        self.tool_name = tool_name

    def parse(self, reply: BaseMessage | str) -> Any:
        if isinstance(reply, AIMessage):
            calls = [c["args"] for c in reply.tool_calls if c["name"] == self.tool_name]
            if calls:
                return self.choose(calls[:1], reply.text or str(calls[0]))
        return super().parse(reply)


def _json_schema(schema: dict[str, Any] | type | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    if isinstance(schema, dict):
        return schema.get("parameters", schema) if "name" in schema else schema
    return convert_to_json_schema(schema)
