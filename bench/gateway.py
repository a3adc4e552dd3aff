"""``python -m bench.gateway``: the HTTP/JSON gateway beside gRPC, same calls, one server, one run.

A real ``museforge serve`` with ``http_address`` set. Each row makes the same call over
gRPC (the Python client) and over HTTP/1.1 JSON (one keep-alive ``http.client``
connection per client thread): a listing, a 28x28 digit, and effect.denoise on a
512x512 PNG (whose bytes travel base64 in JSON). Clients run in threads of this process.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from museforge.client import Client

from .effects import frame
from .report import table
from .servers import ServerSettings, museforge_server, wait_serving


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame(size, size, seed=3)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Http:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, verb: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        self.connection.request(verb, path, body=data, headers=headers)
        reply = self.connection.getresponse()
        payload = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"HTTP {reply.status}: {payload[:200]!r}")
        return json.loads(payload)


Factory = Callable[[], Callable[[], None]]  # makes one client's call (a connection of its own)


def measure(make: Factory, calls: int, concurrency: int) -> tuple[float, list[float]]:
    """calls/s and per-call latencies (s) for ``calls`` calls split over ``concurrency`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        one = make()
        one()  # warm the connection
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            one()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(calls // concurrency,)) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - start), latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per small row (default 400)")
    parser.add_argument("--effect-calls", type=int, default=24, help="calls per effect row (default 24)")
    args = parser.parse_args(argv)
    port = free_port()
    image = png(512)
    encoded = base64.b64encode(image).decode()
    settings = ServerSettings(extra=(f'http_address = "127.0.0.1:{port}"', 'plugins = ["image", "effect"]'))
    rows = []
    with museforge_server(settings) as server:
        wait_serving(server)

        def grpc_client(action: Callable[[Client], object]) -> Factory:
            def make() -> Callable[[], None]:
                client = Client(server.address, timeout=300)
                return lambda: (action(client), None)[1]
            return make

        def http_client(verb: str, path: str, body: Any = None) -> Factory:
            def make() -> Callable[[], None]:
                web = Http(port)
                return lambda: (web.call(verb, path, body), None)[1]
            return make

        digit_path = "/v1/generators/image.digits:generate"
        digit_body = {"parameters": {"digit": 4}, "seed": 1}
        cases = [
            ("ListGenerators", 1, args.calls,
             grpc_client(lambda c: c.generators()), http_client("GET", "/v1/generators")),
            ("Generate image.digits", 1, args.calls,
             grpc_client(lambda c: c.generate("image.digits", {"digit": 4}, seed=1)),
             http_client("POST", digit_path, digit_body)),
            ("Generate image.digits", 8, args.calls,
             grpc_client(lambda c: c.generate("image.digits", {"digit": 4}, seed=1)),
             http_client("POST", digit_path, digit_body)),
            ("ApplyEffect denoise 512x512", 1, args.effect_calls,
             grpc_client(lambda c: c.apply_effect("effect.denoise", [image], {"sigma": 15})),
             http_client("POST", "/v1/effects/effect.denoise:apply",
                         {"inputs": [{"data": encoded}], "parameters": {"sigma": 15}})),
        ]
        for name, concurrency, calls, over_grpc, over_http in cases:
            figures = {}
            for protocol, make in (("gRPC", over_grpc), ("HTTP/JSON", over_http)):
                rate, latencies = measure(make, calls, concurrency)
                figures[protocol] = rate
                p50, p99 = statistics.median(latencies) * 1e3, percentile(latencies, 0.99) * 1e3
                rows.append([name, protocol, str(concurrency), f"{rate:,.1f}", f"{p50:.2f}", f"{p99:.2f}",
                             f"{rate / figures['gRPC']:.2f}x"])
    print(table(rows, ["call", "protocol", "clients", "calls/s", "p50 ms", "p99 ms", "vs gRPC"],
                right={2, 3, 4, 5, 6}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
