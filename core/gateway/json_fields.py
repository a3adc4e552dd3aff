"""What protobuf's JSON parser lets through, refused naming the field before it parses.

- An enum is its name or its number in proto3 JSON; the parser also takes ``1.9``, ``true``
  and ``" 2"`` and truncates them to a number.
- A value of the wrong JSON type (``true`` for a count, a number for a string, an object or a
  list) is refused saying what the field takes (see :mod:`json_kinds`), not in the parser's words.
- A field given twice under its two names (``model_version`` and ``modelVersion``) keeps the
  last; a key given twice in one object (``{"user": "ann", "user": "mallory"}``) is refused by
  ``no_duplicate_keys`` as the JSON is read, since a proxy reading the first would see another
  request than the server runs.
"""

from __future__ import annotations

import json
from typing import Any

from ..near_names import nearest
from .json_codec import bad_request, is_repeated
from .json_kinds import shown, well_known, what_it_takes, wrong_kind

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
            raise bad_request(f"{path}.{key}" if path else key, _unknown(key, descriptor))
        where = f"{path}.{field.name}" if path else field.name
        if field.name in named:
            raise bad_request(where, f"given twice (as {named[field.name]!r} and {key!r})")
        named[field.name] = key
        _check_value(field, value, where)


def _check_value(field: Any, value: Any, where: str) -> None:  # FieldDescriptors (pure or upb)
    if value is None:
        return  # null: the field's default, as proto3 JSON says
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            raise bad_request(where, f"must be a JSON object, got {shown(value)}")
        for key, item in value.items():
            _check_one(entry.fields_by_name["value"], item, f"{where}.{key}")
    elif is_repeated(field):
        if not isinstance(value, list):
            each = what_it_takes(field)
            raise bad_request(where, f"must be a JSON list (each item {each}), got {shown(value)}")
        for index, item in enumerate(value):
            _check_one(field, item, f"{where}[{index}]")
    else:
        _check_one(field, value, where)


def _check_one(field: Any, value: Any, where: str) -> None:
    if value is None:
        return  # the parser says whether a null may stand here
    if field.enum_type is not None:
        names = field.enum_type.values_by_name
        if value is None or (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value in names):
            return
        raise bad_request(where, f"an enum is its name or its number, got {json.dumps(value)[:60]} "
                          f"(names: {', '.join(names)})")
    message = field.message_type
    if message is not None:
        if message.full_name.startswith("google.protobuf."):
            reason = well_known(message.full_name, value)
            if reason is not None:
                raise bad_request(where, reason)
            return  # the parser reads the rest of their JSON
        if not isinstance(value, dict):
            raise bad_request(where, f"must be a JSON object, got {shown(value)}")
        check_fields(value, message, where)
        return
    reason = wrong_kind(field, value)
    if reason is not None:
        raise bad_request(where, reason)


def _unknown(key: str, descriptor: Any) -> str:
    names = [f.json_name for f in descriptor.fields]
    close = nearest(key, names + [f.name for f in descriptor.fields])
    hint = f"did you mean {close!r}? " if close else ""
    return f"unknown field {key!r}: {hint}this object takes {', '.join(names)}"
