"""Parameters as the google.protobuf.Struct a request carries, with every integer kept whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

__all__ = ["EXACT_INTEGERS", "exact", "to_struct"]

EXACT_INTEGERS = 2**53  # a Struct holds numbers as doubles: integers past this lose their last digits


def exact(value: Any) -> Any:
    """``value`` with integers a double cannot hold exactly (a 64-bit seed) as decimal text, which
    the server reads back whole wherever it takes a seed."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_INTEGERS:
        return str(value)
    if isinstance(value, Mapping):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [exact(item) for item in value]
    return value


def to_struct(parameters: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if parameters:
        struct.update(exact(dict(parameters)))
    return struct
