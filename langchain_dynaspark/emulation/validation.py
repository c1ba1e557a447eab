"""JSON values checked against a JSON Schema (tool arguments, structured output).

Uses `jsonschema`, the reference implementation of every JSON Schema draft
(pydantic and `convert_to_openai_tool` emit draft 2020-12 with `$defs`). It is
imported on the first check, not with the package, and one validator is built
per distinct schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["schema_error"]

_CACHED_SCHEMAS = 256


def schema_error(schema: Mapping[str, Any] | None, value: Any) -> str | None:
    """Why `value` does not match `schema`, or `None` if it does (or no schema).

    The reason names the offending field: `city: 3 is not of type 'string'`.
    A schema that is itself invalid checks nothing.
    """
    if not schema:
        return None
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None
    from jsonschema.exceptions import best_match  # noqa: PLC0415

    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


@lru_cache(maxsize=_CACHED_SCHEMAS)
def _validator(schema_json: str) -> Validator | None:
    from jsonschema.exceptions import SchemaError  # noqa: PLC0415
    from jsonschema.validators import validator_for  # noqa: PLC0415

    schema = json.loads(schema_json)
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    return cls(schema)
