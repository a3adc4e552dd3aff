"""``python -m bench.gateway``: the HTTP/JSON gateway beside gRPC, same calls, one server, one run.

A real ``museforge serve`` with ``http_address`` set. Each row makes the same call over
gRPC and over HTTP/1.1 JSON, closed loop, from a load generator in its own spawned process
(bench.loadgen for gRPC, bench.http_load for HTTP: one event loop, pre-built requests,
one kept-alive connection per client). Then two hostile rounds against the gateway: a
storm of clients connecting at the same moment and then calling, and slowloris
connections trickling their headers while other clients call.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
from PIL import Image

from museforge.v1 import museforge_pb2 as pb

from .effects import frame
from .http_load import HttpSpec, RoundResult, http_request, run_http_load, run_slowloris, run_storm
from .loadgen import GENERATE, OIP_INFER, LoadSpec, generate_request, oip_request, run_load
from .report import table
from .servers import ServerSettings, museforge_server, wait_serving
from .timing import Measurement

LIST_GENERATORS = "/museforge.v1.Museforge/ListGenerators"
APPLY_EFFECT = "/museforge.v1.Museforge/ApplyEffect"
TARGETS = {"generate_c8": 0.8, "infer_c32": 0.7}  # gateway calls/s over gRPC's


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    clients: int
    method: str
    payload: bytes  # the gRPC request
    http: bytes  # the same request over HTTP
    calls_scale: float = 1.0  # share of the run's duration (slow calls get longer)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame(size, size, seed=3)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def cases() -> list[Case]:
    params: dict[str, object] = {"digit": 4}
    generate = json.dumps({"parameters": params, "seed": 1}).encode()
    z = np.linspace(-1, 1, 100, dtype=np.float32).reshape(1, 100)
    label = np.array([3], dtype=np.int64)
    infer = json.dumps({"inputs": [
        {"name": "z", "datatype": "FP32", "shape": [1, 100], "data": z.ravel().tolist()},
        {"name": "label", "datatype": "INT64", "shape": [1], "data": label.tolist()}]}).encode()
    image = png(512)
    effect = pb.ApplyEffectRequest(effect="effect.denoise", inputs=[pb.MediaInput(data=image)])
    effect.parameters.update({"sigma": 15})
    effect_json = json.dumps({"inputs": [{"data": base64.b64encode(image).decode()}],
                              "parameters": {"sigma": 15}}).encode()
    return [
        Case("list_c1", "ListGenerators", 1, LIST_GENERATORS, pb.ListGeneratorsRequest().SerializeToString(),
             http_request("GET", "/v1/generators")),
        Case("generate_c1", "Generate image.digits", 1, GENERATE,
             generate_request("image.digits", 1, params, seed=1),
             http_request("POST", "/v1/generators/image.digits:generate", generate)),
        Case("generate_c8", "Generate image.digits", 8, GENERATE,
             generate_request("image.digits", 1, params, seed=1),
             http_request("POST", "/v1/generators/image.digits:generate", generate)),
        Case("infer_c32", "ModelInfer image.digits (v2 REST)", 32, OIP_INFER,
             oip_request("image.digits", {"z": z, "label": label}),
             http_request("POST", "/v2/models/image.digits/infer", infer)),
        Case("effect_c1", "ApplyEffect denoise 512x512", 1, APPLY_EFFECT, effect.SerializeToString(),
             http_request("POST", "/v1/effects/effect.denoise:apply", effect_json), 2.0),
    ]


def measure_case(pool: ProcessPoolExecutor, case: Case, address: str, port: int, pid: int,
                 args: argparse.Namespace) -> tuple[Measurement, Measurement]:
    duration = args.duration * case.calls_scale
    wait = 120 + 3 * (args.warmup + duration)
    over_grpc = pool.submit(run_load, LoadSpec(address, case.method, case.payload, 1, case.clients,
                                               args.warmup, duration, pid)).result(timeout=wait)
    over_http = pool.submit(run_http_load, HttpSpec("127.0.0.1", port, case.http, 1, case.clients,
                                                    args.warmup, duration, pid)).result(timeout=wait)
    return over_grpc, over_http


def throughput_rows(case: Case, over_grpc: Measurement, over_http: Measurement) -> list[list[str]]:
    rows = []
    for protocol, m in (("gRPC", over_grpc), ("HTTP/JSON", over_http)):
        ratio = m.items_per_s / over_grpc.items_per_s if over_grpc.items_per_s else 0.0
        target = TARGETS.get(case.key)
        verdict = "" if target is None or protocol == "gRPC" else (
            f"≥ {target:.1f}x: {'met' if ratio >= target else 'MISSED'}")
        rows.append([case.label, protocol, str(case.clients), f"{m.items_per_s:,.1f}", f"{m.p50_ms:.2f}",
                     f"{m.p99_ms:.2f}", f"{m.server_cpu or 0:.2f}", str(m.errors), f"{ratio:.2f}x", verdict])
    return rows


def round_rows(storm: RoundResult, slowloris: RoundResult, args: argparse.Namespace) -> list[list[str]]:
    return [
        [f"storm: {args.storm_clients} clients connect at once, call {args.storm_seconds:g} s",
         str(storm.connect_errors), str(storm.call_errors), str(storm.not_ok), str(storm.ok),
         f"{storm.p99_ms:.1f}", "-", storm.first_error[:60]],
        [f"slowloris: {args.slowloris} trickling, {args.slowloris_clients} others call "
         f"{args.slowloris_seconds:g} s", str(slowloris.connect_errors), str(slowloris.call_errors),
         str(slowloris.not_ok), str(slowloris.ok), f"{slowloris.p99_ms:.1f}", str(slowloris.survivors),
         slowloris.first_error[:60]],
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per row (default 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring (default 1)")
    parser.add_argument("--storm-clients", type=int, default=256)
    parser.add_argument("--storm-seconds", type=float, default=3.0,
                        help="calls after the storm's connections (default 3; 60 for the full figure)")
    parser.add_argument("--slowloris", type=int, default=200, help="trickling connections (default 200)")
    parser.add_argument("--slowloris-clients", type=int, default=8)
    parser.add_argument("--slowloris-seconds", type=float, default=5.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    port = free_port()
    settings = ServerSettings(extra=(f'http_address = "127.0.0.1:{port}"', 'plugins = ["image", "effect"]'))
    rows: list[list[str]] = []
    generate = http_request("POST", "/v1/generators/image.digits:generate",
                            json.dumps({"parameters": {"digit": 4}, "seed": 1}).encode())
    spawn = get_context("spawn")
    with museforge_server(settings) as server, ProcessPoolExecutor(1, mp_context=spawn) as pool:
        wait_serving(server)
        for case in cases():
            rows += throughput_rows(case, *measure_case(pool, case, server.address, port, server.pid, args))
        storm = pool.submit(run_storm, "127.0.0.1", port, generate, args.storm_clients,
                            args.storm_seconds).result(timeout=300 + args.storm_seconds)
        slowloris = pool.submit(run_slowloris, "127.0.0.1", port, generate, args.slowloris,
                                args.slowloris_clients, args.slowloris_seconds).result(
                                    timeout=300 + args.slowloris_seconds)
    print(table(rows, ["call", "protocol", "clients", "calls/s", "p50 ms", "p99 ms", "server CPU", "errors",
                       "vs gRPC", "target"], right={2, 3, 4, 5, 6, 7, 8}))
    print()
    print(table(round_rows(storm, slowloris, args), ["round (gateway)", "connect errors", "lost mid-call",
                                                     "non-OK", "OK calls", "p99 ms", "trickling open",
                                                     "first error"], right={1, 2, 3, 4, 5, 6}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
