"""museforge's OIP messages live in a descriptor pool of their own: tritonclient, which registers
the same names in protobuf's default pool, loads beside museforge in one process, and gRPC
reflection still describes every service."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

BOTH = """
import {first}, {second}
import museforge.client, tritonclient.grpc
from museforge.inference import grpc_service_pb2 as ours
from tritonclient.grpc import service_pb2 as theirs
wire = ours.ModelInferRequest(model_name="image.digits", id="7").SerializeToString()
assert theirs.ModelInferRequest.FromString(wire).model_name == "image.digits"
print("both loaded")
"""


@pytest.mark.parametrize(("first", "second"), [("museforge.client", "tritonclient.grpc"),
                                               ("tritonclient.grpc", "museforge.client")])
def test_tritonclient_and_museforge_load_in_one_process(first: str, second: str) -> None:
    pytest.importorskip("tritonclient.grpc")
    done = subprocess.run([sys.executable, "-c", BOTH.format(first=first, second=second)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "both loaded" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize(("symbol", "file"), [
    ("inference.GRPCInferenceService", "museforge/inference/grpc_service.proto"),
    ("inference.ModelInferRequest", "museforge/inference/grpc_service.proto"),
    ("museforge.v1.Museforge", "museforge/v1/museforge.proto"),
])
def test_reflection_describes_services_from_both_pools(channel: grpc.Channel, symbol: str, file: str) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    [reply] = list(stub.ServerReflectionInfo(iter([request])))
    names = [descriptor_pb2.FileDescriptorProto.FromString(raw).name
             for raw in reply.file_descriptor_response.file_descriptor_proto]
    assert file in names


def test_reflection_still_says_not_found(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service")
    [reply] = list(stub.ServerReflectionInfo(iter([request])))
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
