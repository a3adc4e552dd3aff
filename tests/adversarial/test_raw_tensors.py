"""Raw tensors (Open Inference Protocol ModelInfer) cannot poison, bloat or stall the server.

One test per attack, each against the `museforge serve` subprocess and measured by its
own counters: a bad value batched with other callers' work, a tensor whose output would
not fit in memory or a message, a huge BYTES tensor next to a health check, and a shape
the network cannot take.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from museforge.client import Client, field_violations
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from tests.adversarial.process_counters import Meter, cpu_seconds
from tests.servers import ServeProcess

BIG = 256 << 20
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture()
def channel(target: ServeProcess) -> Iterator[grpc.Channel]:
    options = [("grpc.max_send_message_length", BIG), ("grpc.max_receive_message_length", BIG)]
    with grpc.insecure_channel(target.address, options=options) as ch:
        yield ch


def tensor_request(model: str, **inputs: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    for name, array in inputs.items():
        datatype = {"f": "FP32", "i": "INT64"}[array.dtype.kind]
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(array.tobytes())
    return request


def refusal(call: grpc.Future) -> tuple[grpc.StatusCode, list[str], str]:
    error = call.exception()
    assert isinstance(error, grpc.RpcError), "the call succeeded"
    return error.code(), [f for f, _ in field_violations(error)], error.details() or ""


def test_an_out_of_range_tensor_never_fails_the_calls_batched_with_it(channel: grpc.Channel,
                                                                       target: ServeProcess) -> None:
    # label 99 (digits take 0-9) used to fail every Generate merged into its session run.
    poison = tensor_request("image.digits", z=np.zeros((1, 100), np.float32),
                            label=np.array([99], np.int64))
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    stop = threading.Event()

    def attack() -> list[grpc.Future]:
        sent = []
        while not stop.is_set():
            call = stub.ModelInfer.future(poison, timeout=120)
            call.exception()
            sent.append(call)
        return sent

    def generate(worker: int) -> int:
        with Client(target.address, timeout=120) as client:
            for k in range(12):
                reply = client.generate("image.digits", {"digit": (worker + k) % 10}, seed=k, count=4)
                assert len(reply.artifacts) == 4
        return 12

    with ThreadPoolExecutor(6) as pool:
        attackers = [pool.submit(attack) for _ in range(2)]
        try:
            generated = sum(f.result() for f in [pool.submit(generate, w) for w in range(4)])
        finally:
            stop.set()
        refused = [call for f in attackers for call in f.result()]
    assert generated == 48  # every Generate succeeded (one failure raises above)
    assert refused
    for call in refused:
        code, fields, details = refusal(call)
        assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs[1]"])
        assert "'label'" in details and "[0, 9]" in details


def test_an_oversize_upscale_is_refused_before_any_work(channel: grpc.Channel, pid: int) -> None:
    # 1,536^2 x4 would answer 6,144^2 (453 MB) after gigabytes of activations; the model takes at
    # most what the effect feeds it in one run (two 1,048-px tiles, 6,589,824 elements).
    request = tensor_request("effect.upscale_x4", image=np.zeros((1, 3, 1536, 1536), np.float32))
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    with Meter(pid) as cost:
        call = stub.ModelInfer.future(request, timeout=120)
        code, fields, details = refusal(call)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs[0].shape"])
    assert "6,589,824" in details
    # The 28 MiB request itself is all the server held: nothing decoded, nothing run.
    assert cost.peak_rss_growth < 160 << 20, cost


def bytes_request(elements: int) -> pb.ModelInferRequest:
    """image.digits with its label as a BYTES tensor of empty strings: cheap to send, and each
    element used to be unpacked one by one in Python, on the event loop."""
    request = pb.ModelInferRequest(model_name="image.digits")
    request.inputs.add(name="z", datatype="FP32", shape=[1, 100])
    request.inputs.add(name="label", datatype="BYTES", shape=[elements])
    request.raw_input_contents.extend([bytes(400), struct.pack("<I", 0) * elements])
    return request


def test_health_answers_while_a_huge_bytes_tensor_is_in_progress(channel: grpc.Channel, pid: int) -> None:
    request = bytes_request(3_000_000)  # 12 MB
    oip = pb_grpc.GRPCInferenceServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    with Meter(pid) as cost:
        start = cpu_seconds(pid)
        call = oip.ModelInfer.future(request, timeout=120)
        # Ask for health once the server has spent half a CPU second on the call (it is then
        # surely working on it), or once the call is over, whichever comes first.
        while not call.done() and cpu_seconds(pid) - start < 0.5:
            time.sleep(0.005)
        in_progress = not call.done()
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=120).status == SERVING
        health_first = not call.done()
        code, fields, _ = refusal(call)
    # Causality: a health check sent while the call is in progress is answered before it ends.
    assert health_first or not in_progress
    # Refused from its header alone (digits' label is INT64): not one element decoded.
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs[1].datatype"])
    assert cost.cpu_seconds < 0.5, cost


@pytest.mark.parametrize(("model", "side", "extra", "fields"), [
    ("effect.interpolate", (17, 17), {"t": np.full(1, 0.5, np.float32)},
     ["inputs[0]", "inputs[1]"]),  # sides must divide by 16
    ("effect.denoise", (17, 16), {"sigma": np.full(1, 25.0, np.float32)}, ["inputs[0]"]),  # even
    ("effect.upscale_x2", (0, 7), {}, ["inputs[0].shape"]),  # nothing to convolve: refused on admission
])
def test_a_shape_the_network_refuses_is_invalid_argument(
    channel: grpc.Channel, model: str, side: tuple[int, int], extra: dict[str, np.ndarray],
    fields: list[str],
) -> None:
    def images(height: int, width: int) -> dict[str, np.ndarray]:
        image = np.zeros((1, 3, height, width), np.float32)
        pair = {"image2": image} if model == "effect.interpolate" else {}
        return {"image": image, **pair, **extra}

    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    code, got, details = refusal(stub.ModelInfer.future(tensor_request(model, **images(*side)),
                                                        timeout=120))
    assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, fields), details
    assert ("refused" in details or ">= 1 in a request" in details)
    assert "onnxruntime_src" not in details and ".h:" not in details
    reply = stub.ModelInfer(tensor_request(model, **images(32, 32)), timeout=120)
    assert list(reply.outputs[0].shape)[:2] == [1, 3]  # and the model still serves
