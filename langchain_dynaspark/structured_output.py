"""A chat model and a schema -> a runnable that returns parsed structured output.

Dynaspark has no JSON mode and no schema enforcement, so structured output is
emulated the way `with_structured_output` is built in the partner packages, on
top of prompt instructions (`langchain_dynaspark.instructions`):

- `json_schema`: the schema is shown in the prompt, and the first JSON object of
  the reply (bare, fenced or amid prose) is parsed and validated client-side;
- `json_mode`: the prompt asks for a JSON object, parsed the same way;
- `function_calling`: the schema is bound as the only tool and a call to it is
  forced; the emulated tool call is parsed.

This module is imported on first use, so output parsers are not loaded with the
package.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
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

from langchain_dynaspark.tool_calls import find_json_object

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from pydantic import BaseModel

    from langchain_dynaspark.chat_models import ChatDynaspark

__all__ = ["structured_runnable"]


def structured_runnable(
    model: ChatDynaspark,
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
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
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
        output_parser: Runnable[Any, Any] = (
            PydanticToolsParser(
                tools=[cast("type[BaseModel]", schema)], first_tool_only=True
            )
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
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
        output_parser = RunnableLambda(_json_reply) | (
            PydanticOutputParser(pydantic_object=cast("type[BaseModel]", schema))
            if is_pydantic
            else JsonOutputParser()
        )
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


def _json_reply(reply: BaseMessage | str) -> str:
    """The JSON object in a reply (bare, fenced or amid prose), else the reply."""
    text = reply if isinstance(reply, str) else reply.text
    return find_json_object(text) or text
