"""The nesting depth read from a message's wire bytes, which names a too-deep request."""

from __future__ import annotations

from google.protobuf import struct_pb2

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
