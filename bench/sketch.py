"""``python -m bench.sketch``: does effect.sketch follow a pen? Latency of a 64 x 64 sketch, served.

A real ``museforge serve`` (gRPC and the HTTP gateway). Each row has ``artists`` clients, each
drawing: it sends its sketch as it stands (one more stroke each call) as soon as the previous
result has come back (closed loop), over gRPC ``StreamApplyEffect`` (the time to the result
artifact) or over HTTP ``POST /v1/effects/effect.sketch:apply`` on a kept-alive connection.
Rows are compared side by side in one run: p50, p95 and p99 latency, calls per second, and
the mean batch the server's model ran (from GetModelStatistics): several artists at once
share network calls. Target: p95 < 50 ms served. ``--versions 5,6`` measures those model
versions one after the other (a server each, pinned by its version policy) in one table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import time

import grpc
import numpy as np
from PIL import Image, ImageDraw

from museforge.v1 import museforge_pb2 as pb
from museforge.v1 import museforge_pb2_grpc as pb_grpc

from .gateway import free_port
from .http_load import exchange, http_request
from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

STREAM_APPLY = "/museforge.v1.Museforge/StreamApplyEffect"
TARGET_P95_MS = 50.0
STROKES = 12


def strokes(artist: int) -> list[bytes]:
    """PNG states of one artist's drawing, a stroke more each: a face, drawn with a shaky hand."""
    rng = np.random.default_rng(artist)
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    states = []
    for k in range(STROKES):
        angle = 2 * np.pi * k / STROKES
        points = [(32 + 22 * np.cos(angle + t) + rng.normal(0, 0.6),
                   32 + 22 * np.sin(angle + t) + rng.normal(0, 0.6))
                  for t in np.linspace(0, 2 * np.pi / STROKES + 0.1, 5)]
        draw.line(points, fill="black", width=2)
        if k in (4, 8):
            draw.ellipse([22 + (k - 4) * 2.5, 22, 28 + (k - 4) * 2.5, 28], fill="black")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        states.append(buffer.getvalue())
    return states


async def grpc_artist(address: str, states: list[bytes], end: float, latencies: list[float]) -> int:
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_stream(STREAM_APPLY, request_serializer=None, response_deserializer=None)
        k = 0
        while time.perf_counter() < end:
            drawing = pb.MediaInput(data=states[k % STROKES])
            request = pb.ApplyEffectRequest(effect="effect.sketch", seed=k, inputs=[drawing])
            payload = request.SerializeToString()
            start = time.perf_counter()
            try:
                async for _ in call(payload, timeout=30):
                    pass
                latencies.append(time.perf_counter() - start)
            except grpc.aio.AioRpcError:
                errors += 1
            k += 1
    return errors


async def http_artist(port: int, states: list[bytes], end: float, latencies: list[float]) -> int:
    bodies = [http_request("POST", "/v1/effects/effect.sketch:apply", json.dumps(
        {"inputs": [{"data": base64.b64encode(s).decode()}], "seed": k}).encode())
        for k, s in enumerate(states)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, k = 0, 0
    try:
        while time.perf_counter() < end:
            start = time.perf_counter()
            status = await exchange(reader, writer, bodies[k % STROKES])
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
            k += 1
    finally:
        writer.close()
    return errors


def batches(address: str) -> tuple[str, int, int]:
    """(the version serving, its executions, its inferences) of effect.sketch so far."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.MuseforgeStub(channel)
        reply = stub.GetModelStatistics(pb.GetModelStatisticsRequest(model="effect.sketch"))
    [stats] = reply.models
    return stats.version, int(stats.execution_count), int(stats.inference_count)


async def run_row(protocol: str, artists: int, address: str, port: int, seconds: float,
                  warmup: float) -> tuple[list[float], int, float]:
    for phase, duration in (("warmup", warmup), ("measure", seconds)):
        latencies: list[float] = []
        end = time.perf_counter() + duration
        started = time.perf_counter()
        if protocol == "gRPC":
            tasks = [grpc_artist(address, strokes(a), end, latencies) for a in range(artists)]
        else:
            tasks = [http_artist(port, strokes(a), end, latencies) for a in range(artists)]
        errors = sum(await asyncio.gather(*tasks))
        if phase == "measure":
            return latencies, errors, time.perf_counter() - started
    raise AssertionError("unreachable")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sketch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured per row (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring (default 1.5)")
    parser.add_argument("--artists", default="1,4,8", help="comma-separated artist counts (default 1,4,8)")
    parser.add_argument("--versions", type=_versions, default=[None], metavar="N,M",
                        help="comma-separated model versions to compare, each pinned on a server of "
                             "its own (default: the newest, as served)")
    return parser.parse_args(argv)


def _versions(text: str) -> list[int | None]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--versions takes version numbers separated by commas, got {text!r}") from None


def version_rows(version: int | None, args: argparse.Namespace) -> list[list[str]]:
    """The table's rows for one version (None: the newest) on a server of its own; each names the
    version the server's statistics say ran it."""
    port = free_port()
    pin = () if version is None else (f'models."effect.sketch".version_policy = "specific:{version}"',)
    settings = ServerSettings(extra=(f'http_address = "127.0.0.1:{port}"', 'plugins = ["effect"]', *pin))
    rows = []
    with museforge_server(settings) as server:
        wait_serving(server)
        for protocol in ("gRPC", "HTTP"):
            for artists in (int(a) for a in args.artists.split(",")):
                before = batches(server.address)
                latencies, errors, wall = asyncio.run(run_row(protocol, artists, server.address, port,
                                                              args.seconds, args.warmup))
                after = batches(server.address)
                ms = np.asarray(latencies) * 1e3
                p50, p95, p99 = (np.percentile(ms, q) if len(ms) else float("nan") for q in (50, 95, 99))
                executions, inferences = after[1] - before[1], after[2] - before[2]
                rows.append([after[0], protocol, str(artists),  # the version that answered
                             f"{len(ms) / wall:,.1f}", f"{p50:.1f}", f"{p95:.1f}", f"{p99:.1f}",
                             f"{inferences / max(executions, 1):.2f}", str(errors),
                             "met" if p95 < TARGET_P95_MS and not errors else "MISSED"])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rows = [row for version in args.versions for row in version_rows(version, args)]
    print(table(rows, ["version", "front end", "artists", "results/s", "p50 ms", "p95 ms", "p99 ms",
                       "mean batch", "errors", f"p95 < {TARGET_P95_MS:g} ms"], right={2, 3, 4, 5, 6, 7, 8}))
    print("mean batch: images per model run over the row (warm-up included), from GetModelStatistics.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
