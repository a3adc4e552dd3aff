"""The load generator: grpc.aio in its own spawned process, pre-serialised requests.

One process with one event loop drives every concurrent stream over one channel:
cheaper per call than a thread per stream, and it never shares a GIL with the server.
Requests are sent as bytes and replies kept as bytes (no protobuf work per call).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import grpc
import numpy as np

from .timing import Measurement, own_cpu_s, process_cpu_s, summarise

MAX_MESSAGE = 256 * 1024 * 1024
OIP_INFER = "/inference.GRPCInferenceService/ModelInfer"
GENERATE = "/museforge.v1.Museforge/Generate"


@dataclass(frozen=True)
class LoadSpec:
    address: str
    method: str  # full gRPC method path
    payload: bytes  # the serialised request, sent as is
    items_per_request: int
    concurrency: int
    warmup_s: float
    duration_s: float
    server_pid: int  # whose CPU time to sample over the measured window
    timeout_s: float = 30.0
    # TCP connections the streams share, round-robin. Several server processes on one
    # port (serve --workers) spread connections, not calls, so one connection reaches one.
    connections: int = 1


def run_load(spec: LoadSpec) -> Measurement:
    """Closed-loop load: ``concurrency`` streams, each sending its next call when one returns."""
    return asyncio.run(_load(spec))


async def _load(spec: LoadSpec) -> Measurement:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE),
               ("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.use_local_subchannel_pool", 1)]  # each channel its own connection
    channels = [grpc.aio.insecure_channel(spec.address, options=options)
                for _ in range(max(1, spec.connections))]
    try:
        await asyncio.gather(*(asyncio.wait_for(c.channel_ready(), spec.timeout_s) for c in channels))
        return await _drive(spec, channels)
    finally:
        await asyncio.gather(*(c.close(None) for c in channels))


async def _drive(spec: LoadSpec, channels: list[grpc.aio.Channel]) -> Measurement:
    # No serialisers: bytes in, bytes out.
    calls = [c.unary_unary(spec.method, request_serializer=None, response_deserializer=None)
             for c in channels]
    clock = time.perf_counter_ns
    start = clock() + int(spec.warmup_s * 1e9)
    # The window closes after duration_s, or, when no call has completed nor failed by then
    # (calls longer than the window, on a loaded machine), at the first completion: a row that
    # measured nothing says nothing. A hung server holds it timeout_s longer at most.
    window = {"end": start + int(spec.duration_s * 1e9)}
    last = window["end"] + int(spec.timeout_s * 1e9)
    closed = asyncio.Event()
    latencies: list[int] = []
    errors: list[str] = []

    async def stream(call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> None:
        while (t0 := clock()) < window["end"] or (not latencies and not errors and t0 < last):
            try:
                await call(spec.payload, timeout=spec.timeout_s)
            except grpc.RpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                await asyncio.sleep(0.01)  # a failing server must not be hammered in a spin
                continue
            t1 = clock()
            late = t1 > window["end"]
            if t1 >= start and (not late or not (latencies or closed.is_set())):  # in the window

                latencies.append(t1 - t0)
                if late:  # the first completion of a window that had none
                    window["end"] = t1
                    closed.set()

    async def close_on_time() -> None:
        await asyncio.sleep(max(0.0, (window["end"] - clock()) / 1e9))
        if latencies or errors:  # else the first completion closes it, or the streams' end
            closed.set()

    async def sample() -> tuple[float, float | None, float, float | None]:
        # CPU of both sides over exactly the measured window.
        await asyncio.sleep(max(0.0, (start - clock()) / 1e9))
        own0, srv0 = own_cpu_s(), tree_cpu_s(spec.server_pid)
        await closed.wait()
        own1, srv1 = own_cpu_s(), tree_cpu_s(spec.server_pid)
        return own0, srv0, own1, srv1

    sampler = asyncio.create_task(sample())
    closer = asyncio.create_task(close_on_time())
    await asyncio.gather(*(stream(calls[i % len(calls)]) for i in range(spec.concurrency)))
    closed.set()
    closer.cancel()
    await asyncio.gather(closer, return_exceptions=True)
    own0, srv0, own1, srv1 = await sampler
    wall = (window["end"] - start) / 1e9
    result = summarise(latencies, spec.items_per_request, wall)
    result.errors = len(errors)
    result.first_error = errors[0] if errors else ""
    result.client_cpu = (own1 - own0) / wall
    if srv0 is not None and srv1 is not None:
        result.server_cpu = (srv1 - srv0) / wall
    return result


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants (a server with worker processes)."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children += [int(c) for c in f.read().split()]
    except OSError:
        pass  # gone meanwhile
    return [pid] + [p for child in children for p in tree_pids(child)]


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process and all its descendants (None when it is gone)."""
    own = process_cpu_s(pid)
    if own is None:
        return None
    return own + sum(process_cpu_s(p) or 0.0 for p in tree_pids(pid)[1:])


def oip_request(model: str, feed: dict[str, np.ndarray]) -> bytes:
    """A serialised OIP ModelInferRequest carrying ``feed`` in raw_input_contents."""
    from museforge.inference import grpc_service_pb2 as pb
    from museforge.server.oip_tensors import datatype_of

    request = pb.ModelInferRequest(model_name=model)
    for name, array in feed.items():
        request.inputs.add(name=name, datatype=datatype_of(array), shape=list(array.shape))
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    return request.SerializeToString()


def generate_request(generator: str, count: int, params: dict[str, object] | None = None,
                     seed: int = 1234) -> bytes:
    """A serialised museforge.v1 GenerateRequest (the generator's defaults unless ``params``)."""
    from museforge.client import Client

    return Client.request(generator, dict(params or {}), seed=seed, count=count).SerializeToString()
