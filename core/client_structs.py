"""Parameters as the google.protobuf.Struct a request carries, with every integer kept whole."""

from __future__ import annotations

import decimal
import numbers
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

__all__ = ["EXACT_INTEGERS", "exact", "to_struct", "whole_numbers"]

EXACT_INTEGERS = 2**53  # a Struct holds numbers as doubles: integers past this lose their last digits


def exact(value: Any, path: str = "parameters") -> Any:
    """``value`` as a Struct holds it: integers a double cannot hold exactly (a 64-bit seed) as
    decimal text, which the server reads back whole wherever it takes a seed; numpy scalars and
    arrays as plain numbers and lists. TypeError naming the field for what JSON cannot carry."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > EXACT_INTEGERS else value
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{path}: names are text, got {key!r}")
        return {key: exact(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [exact(item, f"{path}[{place}]") for place, item in enumerate(value)]
    if isinstance(value, (struct_pb2.Struct, struct_pb2.ListValue, struct_pb2.Value)):
        return value  # already what a Struct holds
    if isinstance(value, (numbers.Real, decimal.Decimal)):  # Fraction, Decimal ...
        return float(value)
    plain = getattr(value, "tolist", None)  # numpy scalars and arrays, without importing numpy here
    if callable(plain):
        return exact(plain(), path)
    raise TypeError(f"{path}: {type(value).__name__} cannot be sent; use numbers, text, booleans, lists "
                    "and mappings")


def to_struct(parameters: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """Parameters as a request's Struct (None: empty); TypeError naming the field that cannot be sent."""
    struct = struct_pb2.Struct()
    if parameters is not None and not isinstance(parameters, Mapping):  # [("digit", 7)] failed in protobuf
        raise TypeError(f"parameters: a mapping of names to values (a dict), got {type(parameters).__name__}")
    if parameters:
        struct.update(exact(parameters))
    return struct


def whole_numbers(value: Any) -> Any:
    """What a Struct held, with its whole numbers as integers again (a Struct keeps every number as a
    double, so ``digit: 7`` reads back 7.0, which JSON then writes as 7.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value
