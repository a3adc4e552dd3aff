"""What a parameter takes, said from its JSON Schema: added to a type error, which alone names
only the type pydantic wanted ("Input should be a valid integer" for a digit of [7] says
nothing of 0-9 or "random")."""

from __future__ import annotations

from typing import Any

TYPE_ERRORS = ("_type", "_parsing", "_parsing_size", "_from_float")


def is_type_error(kind: str) -> bool:
    return kind.endswith(TYPE_ERRORS)


def takes(schema: dict[str, Any]) -> str:
    """'a whole number from 0 to 9, or "random"', 'one of "chorale", "folk"', 'true or false' ...;
    empty when the schema says nothing a person could act on."""
    options = [_one(option) for option in schema.get("anyOf", [schema]) if option.get("type") != "null"]
    said = ", or ".join(option for option in options if option)
    if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
        # Free text: the description is what says which texts (a key's spellings, a name's form).
        description = str(schema.get("description", "")).strip()
        return f"text ({description})" if description else "text"
    return said


def _one(option: dict[str, Any]) -> str:
    kind = option.get("type")
    if "enum" in option:
        return "one of " + ", ".join(_shown(value) for value in option["enum"])
    if "const" in option:
        return _shown(option["const"])
    if kind in ("integer", "number"):
        noun = "a whole number" if kind == "integer" else "a number"
        low = option.get("minimum", option.get("exclusiveMinimum"))
        high = option.get("maximum", option.get("exclusiveMaximum"))
        if low is not None and high is not None:
            return f"{noun} from {low:g} to {high:g}" if "minimum" in option and "maximum" in option \
                else f"{noun} between {low:g} and {high:g}"
        if low is not None:
            return f"{noun} of at least {low:g}" if "minimum" in option else f"{noun} above {low:g}"
        if high is not None:
            return f"{noun} of at most {high:g}" if "maximum" in option else f"{noun} below {high:g}"
        return noun
    return {"boolean": "true or false", "string": "text", "array": "a list", "object": "a mapping"}.get(
        str(kind), "")


def _shown(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)
