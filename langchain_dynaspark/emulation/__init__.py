"""Tool calling and structured output, emulated through the prompt.

The service has neither: `instructions` writes the tools or the schema into the
prompt, `tool_calls` reads calls back out of the reply, `validation` checks
arguments and objects against their JSON Schemas, `format_repair` asks again
when a reply missed its form, and `structured_output` builds what
`with_structured_output` returns. Nothing here imports the model class.
"""
