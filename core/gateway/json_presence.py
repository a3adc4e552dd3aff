"""Struct fields set empty before a reply is printed, so every field is in the JSON.

proto3 JSON prints fields without presence when asked (zero values included), but a Struct is
a message, with presence: an unset ``parameters`` left its key out, and readers that need every
key (Unity's JsonUtility) got none. A reply that may hold one is copied and each unset Struct
set to ``{}``, inside repeated fields, maps and Any payloads too.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message

from .json_codec import is_repeated


def with_structs_present(message: Message) -> Message:
    """``message``, or a copy of it with every unset Struct field set empty."""
    if not _holds_struct(message.DESCRIPTOR):
        return message
    copy = type(message)()
    copy.CopyFrom(message)
    _structs_present(copy)
    return copy


_STRUCT = "google.protobuf.Struct"
_ANY = "google.protobuf.Any"


@functools.cache
def _holds_struct(descriptor: Any) -> bool:
    """Whether a message of this type can hold a Struct field (or an Any, which may)."""
    seen: set[str] = set()
    stack = [descriptor]
    while stack:
        current = stack.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        for field in current.fields:
            kind = field.message_type
            if kind is None:
                continue
            if kind.full_name in (_STRUCT, _ANY):
                return True
            if not kind.full_name.startswith("google.protobuf."):
                stack.append(kind)
    return False


def _structs_present(message: Message) -> None:
    """Set every unset Struct field of ``message`` (and of the messages in it, Any's included) empty."""
    for field in message.DESCRIPTOR.fields:
        kind = field.message_type
        if kind is None or (kind.full_name.startswith("google.protobuf.") and
                            kind.full_name not in (_STRUCT, _ANY)):
            continue
        if kind.GetOptions().map_entry:
            value_field = kind.fields_by_name["value"]
            if value_field.message_type is not None:
                for item in getattr(message, field.name).values():
                    _structs_present(item)
            continue
        if is_repeated(field):
            for item in getattr(message, field.name):
                _structs_present(item)
        elif kind.full_name == _STRUCT:
            if not message.HasField(field.name):
                getattr(message, field.name).SetInParent()
        elif not message.HasField(field.name):
            continue
        elif kind.full_name == _ANY:
            _any_structs_present(getattr(message, field.name))
        else:
            _structs_present(getattr(message, field.name))


def _any_structs_present(packed: any_pb2.Any) -> None:
    from google.protobuf import symbol_database

    try:
        inner = symbol_database.Default().GetSymbol(packed.TypeName())()
    except KeyError:
        return  # a type this server does not know: printed as it is
    if _holds_struct(inner.DESCRIPTOR) and packed.Unpack(inner):
        _structs_present(inner)
        packed.Pack(inner)
