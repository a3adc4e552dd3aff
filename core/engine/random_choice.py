"""A parameter that may be left to the seed by name: ``"random"`` as well as omitted.

Callers type what the docs say ("digit": "random"); the value reaches the generator as None,
and the JSON schema lists the word, so that an engine building its form or checking requests
from the schema accepts it too.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

RANDOM_WORD = "random"


def _random_means_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() == RANDOM_WORD else value


class OrRandom:
    """``Annotated[int | None, OrRandom()]``: the field also takes "random" (any case), read as None."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        inner = handler(source)
        if inner.get("type") != "nullable":  # "random" is read as None, which the field must take
            raise TypeError(f"OrRandom marks an optional field (X | None), not {source!r}")
        return cs.no_info_before_validator_function(_random_means_none, inner)

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        described = handler.resolve_ref_schema(handler(schema))
        word = {"const": RANDOM_WORD, "type": "string"}
        branches = described.get("anyOf", [])
        nulls = [b for b in branches if b.get("type") == "null"]
        described["anyOf"] = [b for b in branches if b.get("type") != "null"] + [word] + nulls
        return described
