"""``python -m bench.soak``: many concurrent clients, a mix of RPCs, for a bounded time.

Against a real ``museforge serve`` subprocess on 127.0.0.1: ``--clients`` closed-loop
clients (one grpc.aio event loop in this process, one channel each) each pick their next
call from a seeded weighted mix — listings, health, Generate (image.digits, mesh.props),
ApplyEffect (a small denoise), OIP ModelInfer and ServerReady, model statistics — until
``--seconds`` have passed. It prints requests, errors by status code, p50/p99 latency per
RPC and the server's resident memory after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.v1 import museforge_pb2 as pb
from museforge.v1 import museforge_pb2_grpc as pb_grpc

from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

Call = Callable[[], Awaitable[Any]]


@dataclass
class SoakReport:
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: Counter[str] = field(default_factory=Counter)
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    def errors(self, allowed: tuple[str, ...] = ("OK",)) -> int:
        return sum(n for code, n in self.codes.items() if code not in allowed)

    def p(self, q: float, rpc: str | None = None) -> float:
        values = sorted(self.latencies[rpc] if rpc else [v for vs in self.latencies.values() for v in vs])
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def small_png() -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def digits_infer() -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="image.digits")
    z = request.inputs.add(name="z", datatype="FP32", shape=[1, 100])
    z.contents.fp32_contents.extend(np.random.default_rng(1).standard_normal(100).astype(np.float32).tolist())
    label = request.inputs.add(name="label", datatype="INT64", shape=[1])
    label.contents.int64_contents.append(3)
    return request


RPC_NAMES = (
    "ListGenerators",
    "Health.Check",
    "Generate image.digits",
    "Generate mesh.props",
    "ApplyEffect denoise",
    "OIP ModelInfer",
    "OIP ServerReady",
    "GetModelStatistics",
)


def mix(channel: grpc.aio.Channel) -> list[tuple[str, int, Call]]:
    """(name, weight, call) for every RPC of the mix."""
    museforge = pb_grpc.MuseforgeStub(channel)
    inference = oip_grpc.GRPCInferenceServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    digit = struct_pb2.Struct()
    digit.update({"digit": 5})
    prop = struct_pb2.Struct()
    prop.update({"family": "crate", "resolution": 32})
    sigma = struct_pb2.Struct()
    sigma.update({"sigma": 15})
    frame = pb.MediaInput(data=small_png(), name="frame.png")
    infer = digits_infer()
    return [
        ("ListGenerators", 2, lambda: museforge.ListGenerators(pb.ListGeneratorsRequest())),
        ("Health.Check", 2, lambda: health.Check(health_pb2.HealthCheckRequest())),
        (
            "Generate image.digits",
            4,
            lambda: museforge.Generate(
                pb.GenerateRequest(generator="image.digits", parameters=digit, seed=7)
            ),
        ),
        (
            "Generate mesh.props",
            1,
            lambda: museforge.Generate(
                pb.GenerateRequest(generator="mesh.props", parameters=prop, seed=7, format="glb")
            ),
        ),
        (
            "ApplyEffect denoise",
            1,
            lambda: museforge.ApplyEffect(
                pb.ApplyEffectRequest(effect="effect.denoise", parameters=sigma, inputs=[frame])
            ),
        ),
        ("OIP ModelInfer", 4, lambda: inference.ModelInfer(infer)),
        ("OIP ServerReady", 1, lambda: inference.ServerReady(oip.ServerReadyRequest())),
        (
            "GetModelStatistics",
            1,
            lambda: museforge.GetModelStatistics(pb.GetModelStatisticsRequest(model="image.digits")),
        ),
    ]


async def _client(address: str, seed: int, until: float, report: SoakReport) -> None:
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(address) as channel:
        calls = mix(channel)
        names = [c[0] for c in calls]
        weights = [c[1] for c in calls]
        by_name = {c[0]: c[2] for c in calls}
        while time.monotonic() < until:
            name = rng.choices(names, weights)[0]
            started = time.perf_counter()
            try:
                await asyncio.wait_for(by_name[name](), 60)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            except asyncio.TimeoutError:
                code = "CLIENT_TIMEOUT"
            report.latencies[name].append(time.perf_counter() - started)
            report.codes[code] += 1


async def soak(
    address: str, clients: int, seconds: float, server_pid: int, warmup: float = 5.0
) -> SoakReport:
    """Run the mix; RSS is read once warm-up is over and again at the end."""
    report = SoakReport(clients, seconds)
    warm = SoakReport(clients, warmup)
    until = time.monotonic() + warmup
    await asyncio.gather(*(_client(address, 1000 + i, until, warm) for i in range(clients)))
    report.rss_warm_mb = rss_mb(server_pid)
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(address, i, until, report) for i in range(clients)))
    report.rss_end_mb = rss_mb(server_pid)
    return report


def render(report: SoakReport) -> str:
    rows = [
        [name, str(len(values)), f"{report.p(0.5, name):.0f}", f"{report.p(0.99, name):.0f}"]
        for name, values in sorted(report.latencies.items())
    ]
    rows.append(["all", str(report.requests), f"{report.p(0.5):.0f}", f"{report.p(0.99):.0f}"])
    codes = ", ".join(f"{code} {n}" for code, n in report.codes.most_common())
    return "\n".join(
        [
            f"{report.clients} concurrent clients for {report.seconds:.0f} s: {report.requests} requests, "
            f"{report.requests / report.seconds:.0f}/s; status codes: {codes}",
            table(rows, ["rpc", "requests", "p50 ms", "p99 ms"], right={1, 2, 3}),
            f"server RSS: {report.rss_warm_mb:.0f} MB after warm-up, {report.rss_end_mb:.0f} MB at the end "
            f"({report.rss_end_mb - report.rss_warm_mb:+.0f} MB)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    with museforge_server(ServerSettings()) as server:
        wait_serving(server)
        report = asyncio.run(soak(server.address, args.clients, args.seconds, server.pid))
    print(render(report))
    p50 = statistics.median([v for vs in report.latencies.values() for v in vs]) if report.requests else 0
    return 0 if report.errors() == 0 and p50 >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
