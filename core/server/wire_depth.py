"""How deeply a protobuf message nests, read from its wire bytes with its descriptor.

Asked only after a request failed to parse: some protobuf runtimes say that the parser's
recursion limit was hit, others only that parsing failed. Walking the bytes tells the
caller which it was, so the answer can say "nested too deeply" instead of "invalid".
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MAX_FIELDS = 20_000  # fields read at most: a hostile message must not buy CPU with its answer


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 70:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    raise ValueError("truncated varint")


def nesting_depth(data: bytes, descriptor: Descriptor, stop: int) -> int:
    """The deepest chain of nested messages in ``data`` (1 for a flat message), counted up to
    ``stop``; what cannot be read counts as far as it was read, and reading ends after
    MAX_FIELDS fields (depth first, so one deep chain is found early)."""
    deepest, fields, todo = 1, [0], [(memoryview(data), descriptor, 1)]
    while todo and deepest < stop and fields[0] < MAX_FIELDS:
        chunk, kind, depth = todo.pop()
        deepest = max(deepest, depth)
        try:
            todo.extend(_children(chunk, kind, depth, fields))
        except ValueError:
            continue
    return min(deepest, stop)


def _children(data: memoryview, descriptor: Descriptor, depth: int, fields: list[int]
              ) -> list[tuple[memoryview, Descriptor, int]]:
    found: list[tuple[memoryview, Descriptor, int]] = []
    at = 0
    while at < len(data) and fields[0] < MAX_FIELDS:
        fields[0] += 1
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == VARINT:
            _, at = _varint(data, at)
        elif wire in (FIXED64, FIXED32):
            at += 8 if wire == FIXED64 else 4
        elif wire == LENGTH:
            size, at = _varint(data, at)
            field = descriptor.fields_by_number.get(number)
            if field is not None and field.message_type is not None and size:
                found.append((data[at:at + size], field.message_type, depth + 1))
            at += size
        else:
            raise ValueError(f"wire type {wire}")
    return found
