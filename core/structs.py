"""Client parameter structs (google.protobuf.Struct) as plain Python, refusing what JSON cannot hold.

``json_format.MessageToDict`` raises a bare ValueError on NaN or infinite numbers (a
Struct can carry them; JSON cannot), which would surface as an UNKNOWN error. Here they
are the caller's mistake: INVALID_ARGUMENT naming the exact field.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

from .errors import FieldViolation, InvalidArgument


def struct_to_dict(struct: struct_pb2.Struct, field: str = "parameters") -> dict[str, Any]:
    """The struct as a dict (numbers as floats, as json_format gives them), or InvalidArgument."""
    problems: list[FieldViolation] = []
    result = {key: _value(value, f"{field}.{key}", problems) for key, value in struct.fields.items()}
    if problems:
        raise InvalidArgument("invalid parameters", problems)
    return result


def _value(value: struct_pb2.Value, path: str, problems: list[FieldViolation]) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            problems.append(FieldViolation(path, "must be a finite number (JSON has no NaN or infinity)"))
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: _value(v, f"{path}.{k}", problems) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value(v, f"{path}[{i}]", problems) for i, v in enumerate(value.list_value.values)]
    return None
