"""What a JSON value must be for one protobuf field, said as a person would.

protobuf's JSON parser says why a value failed in its own terms ("invalid literal for int()
with base 10: 'five'..", "Bool value True is not acceptable for integer field", "repeated field
shape must be in []"): a web developer reads Python. ``wrong_kind`` refuses, before the parser
runs, the values it would refuse for their JSON type, and ``what_it_takes`` words the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor as F

INTEGER_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1), F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1), F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
_NUMBERS = (F.TYPE_FLOAT, F.TYPE_DOUBLE)


def shown(value: Any) -> str:
    """The value as the caller wrote it (JSON), kept short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def what_it_takes(field: Any) -> str:  # a FieldDescriptor (pure or upb)
    """'a whole number from 0 to 4294967295', 'a string', ... for one value of ``field``."""
    kind = field.type
    if kind in INTEGER_RANGES:
        low, high = INTEGER_RANGES[kind]
        return f"a whole number from {low} to {high}"
    if kind in _NUMBERS:
        return 'a number (or "NaN", "Infinity", "-Infinity")'
    if kind == F.TYPE_BOOL:
        return "true or false (without quotes)"
    if kind == F.TYPE_STRING:
        return "a string"
    if kind == F.TYPE_BYTES:
        return "base64 text"
    if kind == F.TYPE_ENUM:
        return f"one of {', '.join(field.enum_type.values_by_name)} (or its number)"
    return "a JSON object"


def wrong_kind(field: Any, value: Any) -> str | None:
    """Why ``value`` (one item of ``field``, not null) cannot be it, for what its JSON type alone
    tells; None when the parser should judge (a string that may hold a number, say)."""
    kind = field.type
    if kind in INTEGER_RANGES:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return _refusal(field, value)
        number = _whole(value)
        low, high = INTEGER_RANGES[kind]
        return None if number is not None and low <= number <= high else _refusal(field, value)
    if kind in _NUMBERS:
        if isinstance(value, str):
            try:
                float(value)  # what the parser reads a number's string with
            except ValueError:
                return _refusal(field, value)
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else _refusal(field, value)
    if kind == F.TYPE_BOOL:
        return None if isinstance(value, bool) else _refusal(field, value)
    if kind in (F.TYPE_STRING, F.TYPE_BYTES):
        return None if isinstance(value, str) else _refusal(field, value)
    return None


# Well-known types with a JSON form of their own: what a value of the wrong JSON type should be.
_WELL_KNOWN: dict[str, tuple[type | tuple[type, ...], str]] = {
    "google.protobuf.Struct": (dict, "a JSON object"),
    "google.protobuf.ListValue": (list, "a JSON list"),
    "google.protobuf.Duration": (str, 'a duration string such as "10s" or "1.5s"'),
    "google.protobuf.Timestamp": (str, 'an RFC 3339 time such as "2026-12-06T21:00:00Z"'),
    "google.protobuf.FieldMask": (str, 'field names joined by commas, such as "name,state"'),
}


def well_known(full_name: str, value: Any) -> str | None:
    """Why ``value`` cannot be a ``full_name`` well-known type, for its JSON type alone."""
    kind = _WELL_KNOWN.get(full_name)
    if kind is None or isinstance(value, kind[0]):
        return None
    return f"must be {kind[1]}, got {shown(value)}"


def _whole(value: int | float | str) -> int | float | None:
    """The whole number a JSON number or string stands for, as the parser reads it (``4.0``,
    ``"12"``, ``"1e3"``), else None (``4.5``, ``"five"``, ``" 3"``)."""
    if isinstance(value, str):
        if not value or any(c.isspace() for c in value):
            return None
        try:
            return int(value)
        except ValueError:
            pass
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return value


def _refusal(field: Any, value: Any) -> str:
    return f"must be {what_it_takes(field)}, got {shown(value)}"


_AT = re.compile(r" at [A-Za-z_][\w]*((?:\.\w+|\[\d+\])+)\.*$")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


def parse_failure(document: Any, descriptor: Any, message: str) -> tuple[str, str]:
    """The field and the reason for a value the parser refused (``message``, its words): the
    reason says what the field takes and, where the parser said exactly where, what came."""
    from .json_codec import field_in, parse_reason

    field, where = field_in(message), ""
    at = _AT.search(message)
    if at:  # 'at ModelInferRequest.inputs[0].contents.fp32_contents[0]': the exact place
        where = at.group(1).lstrip(".")
        found = _walk(document, descriptor, where)
        if found is not None:
            described, value = found
            return where, f"must be {what_it_takes(described)}, got {shown(value)}"
    found = _walk(document, descriptor, field)
    if found is not None and found[0].message_type is None:
        return field, f"must be {what_it_takes(found[0])}, got {shown(found[1])}"
    return field, parse_reason(message).rstrip(".") + "."


def _walk(document: Any, descriptor: Any, path: str) -> tuple[Any, Any] | None:
    """The field descriptor and the value at ``path`` (``a.b[0].c``), or None if it is not there."""
    value, field = document, None
    for name, index in _STEP.findall("." + path):
        if name:
            if descriptor is None or not isinstance(value, dict):
                return None
            by_json = {f.json_name: f for f in descriptor.fields}
            field = descriptor.fields_by_name.get(name) or by_json.get(name)
            if field is None:
                return None
            value = value.get(field.name, value.get(field.json_name))
            descriptor = field.message_type
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
    return (field, value) if field is not None and not isinstance(value, (list, dict)) else None
