"""The nesting depth read from a message's wire bytes, which names a too-deep request."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from museforge.client import field_violations
from museforge.server.wire_depth import MAX_FIELDS, nesting_depth
from museforge.v1 import museforge_pb2 as pb


def nested(levels: int) -> struct_pb2.Struct:
    inner = struct_pb2.Struct()
    inner.fields["leaf"].number_value = 1
    for _ in range(levels - 1):
        outer = struct_pb2.Struct()
        outer.fields["x"].struct_value.CopyFrom(inner)
        inner = outer
    return inner


def test_depth_counts_each_message_level() -> None:
    flat = pb.GenerateRequest(generator="image.digits", count=2).SerializeToString()
    assert nesting_depth(flat, pb.GenerateRequest.DESCRIPTOR, 1000) == 1
    # GenerateRequest → Struct → map entry → Value: 4 levels for one-level parameters
    one = pb.GenerateRequest(parameters=nested(1)).SerializeToString()
    assert nesting_depth(one, pb.GenerateRequest.DESCRIPTOR, 1000) == 4
    deeper = pb.GenerateRequest(parameters=nested(10)).SerializeToString()
    assert nesting_depth(deeper, pb.GenerateRequest.DESCRIPTOR, 1000) == 31  # 3 more per level


def test_counting_stops_at_the_limit_and_on_damage() -> None:
    deep = pb.GenerateRequest(parameters=nested(30)).SerializeToString()
    assert nesting_depth(deep, pb.GenerateRequest.DESCRIPTOR, 20) == 20
    assert nesting_depth(deep[: len(deep) // 2], pb.GenerateRequest.DESCRIPTOR, 1000) >= 1  # no raise
    assert nesting_depth(b"\xff\xff\xff", pb.GenerateRequest.DESCRIPTOR, 1000) == 1


def test_a_wide_message_is_read_only_so_far() -> None:
    wide = struct_pb2.Struct()
    for i in range(MAX_FIELDS):
        wide.fields[str(i)].number_value = i
    data = pb.GenerateRequest(parameters=wide).SerializeToString()
    assert nesting_depth(data, pb.GenerateRequest.DESCRIPTOR, 1000) <= 4


def _length(data: bytes) -> bytes:
    out, size = b"", len(data)
    while True:
        out += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return out + data


def too_deep(levels: int) -> bytes:
    """A GenerateRequest whose parameters nest ``levels`` Structs, written by hand: protobuf's own
    runtime will not build one past its recursion limit."""
    struct = nested(1).SerializeToString()
    for _ in range(levels - 1):
        value = b"\x2a" + _length(struct)  # Value.struct_value (field 5)
        entry = b"\x0a" + _length(b"x") + b"\x12" + _length(value)  # map entry: key 1, value 2
        struct = b"\x0a" + _length(entry)  # Struct.fields (field 1)
    return pb.GenerateRequest(generator="image.digits").SerializeToString() + b"\x12" + _length(struct)


@pytest.mark.parametrize(("raw", "where", "said"), [
    (too_deep(40), "parameters", "nested too deeply"),
    (b"\xff\xff\xff", "request", "not a valid protobuf message")])
def test_a_message_that_cannot_be_parsed_is_refused_with_a_field_violation(
        channel: grpc.Channel, raw: bytes, where: str, said: str) -> None:
    """Like every refusal, with a google.rpc.BadRequest (clients read those): it came without one."""
    call = channel.unary_unary("/museforge.v1.Museforge/Generate", request_serializer=None,
                               response_deserializer=pb.GenerateResponse.FromString)
    with pytest.raises(grpc.RpcError) as refused:
        call(raw, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = field_violations(refused.value)
    assert field == where and said in problem, (field, problem)
