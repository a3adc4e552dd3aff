"""Reading protobuf's wire format field by field, without a message class: for bytes that did
not parse (server.wire_depth) or whose schema is not installed (an ONNX file's header)."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def varint(data: memoryview, at: int) -> tuple[int, int]:
    """The varint at ``at`` and the offset after it; ValueError when it runs off the end."""
    value = shift = 0
    while at < len(data) and shift < 70:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    raise ValueError("truncated varint")


def fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview | None]]:
    """Each field's number, wire type and value: the integer of a varint, a view of a
    length-delimited field's bytes (cut short where the data ends), None for fixed-width ones.
    ValueError on a malformed varint or an unknown wire type."""
    at = 0
    while at < len(data):
        tag, at = varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == VARINT:
            value, at = varint(data, at)
            yield number, wire, value
        elif wire == LENGTH:
            size, at = varint(data, at)
            yield number, wire, data[at:at + size]
            at += size
        elif wire in (FIXED64, FIXED32):
            at += 8 if wire == FIXED64 else 4
            yield number, wire, None
        else:
            raise ValueError(f"wire type {wire}")
