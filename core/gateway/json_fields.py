"""What protobuf's JSON parser lets through, refused naming the field before it parses.

- An enum is its name or its number in proto3 JSON; the parser also takes ``1.9``, ``true``
  and ``" 2"`` and truncates them to a number.
- A field given twice under its two names (``model_version`` and ``modelVersion``) keeps the
  last; a key given twice in one object (``{"user": "ann", "user": "mallory"}``) is refused by
  ``no_duplicate_keys`` as the JSON is read, since a proxy reading the first would see another
  request than the server runs.
"""

from __future__ import annotations

import json
from typing import Any

from .json_codec import bad_request, is_repeated

__all__ = ["check_fields", "no_duplicate_keys"]


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s object hook: an object, unless a key comes twice."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise bad_request("body", f"the key {key!r} is given twice in one object")
            seen.add(key)
    return document


def check_fields(document: Any, descriptor: Any, path: str = "") -> None:  # a Descriptor (pure or upb)
    """Raise an ``HttpError`` naming the first field of ``document`` (to be parsed as
    ``descriptor``) that is given twice or holds an enum that is neither a name nor a number."""
    if not isinstance(document, dict):
        return  # the parser says what is wrong with it
    by_json = {f.json_name: f for f in descriptor.fields}
    named: dict[str, str] = {}
    for key, value in document.items():
        field = descriptor.fields_by_name.get(key) or by_json.get(key)
        if field is None:
            continue  # an unknown field: the parser names it
        where = f"{path}.{field.name}" if path else field.name
        if field.name in named:
            raise bad_request(where, f"given twice (as {named[field.name]!r} and {key!r})")
        named[field.name] = key
        _check_value(field, value, where)


def _check_value(field: Any, value: Any, where: str) -> None:  # FieldDescriptors (pure or upb)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if isinstance(value, dict):
            for key, item in value.items():
                _check_one(entry.fields_by_name["value"], item, f"{where}.{key}")
    elif is_repeated(field) and isinstance(value, list):
        for index, item in enumerate(value):
            _check_one(field, item, f"{where}[{index}]")
    else:
        _check_one(field, value, where)


def _check_one(field: Any, value: Any, where: str) -> None:
    if field.enum_type is not None:
        names = field.enum_type.values_by_name
        if value is None or (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value in names):
            return
        raise bad_request(where, f"an enum is its name or its number, got {json.dumps(value)[:60]} "
                          f"(names: {', '.join(names)})")
    message = field.message_type
    if message is not None and not message.full_name.startswith("google.protobuf."):
        check_fields(value, message, where)
