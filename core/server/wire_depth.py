"""How deeply a protobuf message nests, read from its wire bytes with its descriptor.

Asked only after a request failed to parse: some protobuf runtimes say that the parser's
recursion limit was hit, others only that parsing failed. Walking the bytes tells the
caller which it was, so the answer can say "nested too deeply" instead of "invalid".
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from ..runtime.protobuf_wire import LENGTH, fields

MAX_FIELDS = 20_000  # fields read at most: a hostile message must not buy CPU with its answer


def nesting_depth(data: bytes, descriptor: Descriptor, stop: int) -> int:
    """The deepest chain of nested messages in ``data`` (1 for a flat message), counted up to
    ``stop``; what cannot be read counts as far as it was read, and reading ends after
    MAX_FIELDS fields (depth first, so one deep chain is found early)."""
    deepest, read, todo = 1, [0], [(memoryview(data), descriptor, 1)]
    while todo and deepest < stop and read[0] < MAX_FIELDS:
        chunk, kind, depth = todo.pop()
        deepest = max(deepest, depth)
        try:
            todo.extend(_children(chunk, kind, depth, read))
        except ValueError:
            continue
    return min(deepest, stop)


def _children(data: memoryview, descriptor: Descriptor, depth: int, read: list[int]
              ) -> list[tuple[memoryview, Descriptor, int]]:
    found: list[tuple[memoryview, Descriptor, int]] = []
    for number, wire, value in fields(data):
        read[0] += 1
        if wire == LENGTH and isinstance(value, memoryview) and len(value):
            field = descriptor.fields_by_number.get(number)
            if field is not None and field.message_type is not None:
                found.append((value, field.message_type, depth + 1))
        if read[0] >= MAX_FIELDS:
            break
    return found
