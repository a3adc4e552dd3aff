"""Client parameter structs (google.protobuf.Struct) as plain Python, refusing what JSON cannot hold.

``json_format.MessageToDict`` raises a bare ValueError on NaN or infinite numbers (a
Struct can carry them; JSON cannot), which would surface as an UNKNOWN error. Here they
are the caller's mistake: INVALID_ARGUMENT naming the exact field. So are parameters
nested deeper than any generator needs, or holding more values than any needs: each
value costs about a microsecond to convert, and nothing a generator takes comes near.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

from ..engine.errors import FieldViolation, InvalidArgument

MAX_DEPTH = 32  # objects and lists inside one another, the parameters themselves included
MAX_VALUES = 10_000  # values in all the parameters of one request


class _Walk:
    """One conversion: the problems found and the values met so far."""

    def __init__(self) -> None:
        self.problems: list[FieldViolation] = []
        self.values = 0

    def count(self, more: int, path: str) -> None:
        self.values += more
        if self.values > MAX_VALUES:
            raise _refusal(path, f"takes the parameters past {MAX_VALUES:,} values, the most a "
                           "request may hold")

    def fields(self, struct: struct_pb2.Struct, path: str, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _refusal(path, f"is nested more than {MAX_DEPTH} levels deep")
        self.count(len(struct.fields), path)
        return {key: self.value(value, f"{path}.{key}", depth) for key, value in struct.fields.items()}

    def items(self, values: struct_pb2.ListValue, path: str, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise _refusal(path, f"is nested more than {MAX_DEPTH} levels deep")
        self.count(len(values.values), path)
        return [self.value(v, f"{path}[{i}]", depth) for i, v in enumerate(values.values)]

    def value(self, value: struct_pb2.Value, path: str, depth: int) -> Any:
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            if not math.isfinite(value.number_value):
                self.problems.append(
                    FieldViolation(path, "must be a finite number (JSON has no NaN or infinity)"))
            return value.number_value
        if kind == "string_value":
            return value.string_value
        if kind == "bool_value":
            return value.bool_value
        if kind == "struct_value":
            return self.fields(value.struct_value, path, depth + 1)
        if kind == "list_value":
            return self.items(value.list_value, path, depth + 1)
        return None


def _refusal(path: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"invalid parameters: {path} {problem}", [FieldViolation(path, problem)])


def struct_to_dict(struct: struct_pb2.Struct, field: str = "parameters") -> dict[str, Any]:
    """The struct as a dict (numbers as floats, as json_format gives them), or InvalidArgument."""
    walk = _Walk()
    result = walk.fields(struct, field, 1)
    if walk.problems:
        raise InvalidArgument("invalid parameters", walk.problems)
    return result
