"""The HTTP side of the gateway bench: asyncio in its own spawned process, pre-built requests.

The same shape as the gRPC load generator (bench.loadgen): one event loop drives every
concurrent client, each on its own kept-alive connection, sending its next request when
the reply is in; requests are bytes built once, replies are read by their Content-Length
and not parsed. Two hostile rounds too: a storm of clients connecting at once, and
slowloris connections trickling their headers while other clients call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .timing import Measurement, own_cpu_s, process_cpu_s, summarise

CONNECTION_ERRORS = (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError,
                     asyncio.TimeoutError)


@dataclass(frozen=True)
class HttpSpec:
    host: str
    port: int
    request: bytes  # one whole HTTP/1.1 request, sent as is
    items_per_request: int
    concurrency: int
    warmup_s: float
    duration_s: float
    server_pid: int
    timeout_s: float = 60.0


def http_request(verb: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{verb} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send ``request`` and read its reply (Content-Length framed); the HTTP status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


def run_http_load(spec: HttpSpec) -> Measurement:
    """Closed-loop load: ``concurrency`` connections, each sending its next request when one returns."""
    return asyncio.run(_http_load(spec))


async def _http_load(spec: HttpSpec) -> Measurement:
    clock = time.perf_counter_ns
    start = clock() + int(spec.warmup_s * 1e9)
    end = start + int(spec.duration_s * 1e9)
    latencies: list[int] = []
    errors: list[str] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(spec.host, spec.port, limit=1 << 26)
        while (t0 := clock()) < end:
            try:
                status = await asyncio.wait_for(exchange(reader, writer, spec.request), spec.timeout_s)
            except CONNECTION_ERRORS as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                writer.close()
                await asyncio.sleep(0.01)
                reader, writer = await asyncio.open_connection(spec.host, spec.port, limit=1 << 26)
                continue
            if status != 200:
                errors.append(f"HTTP {status}")
                continue
            t1 = clock()
            if start <= t1 <= end:
                latencies.append(t1 - t0)
        writer.close()

    async def sample() -> tuple[float, float | None, float, float | None]:
        await asyncio.sleep(max(0.0, (start - clock()) / 1e9))
        own0, srv0 = own_cpu_s(), process_cpu_s(spec.server_pid)
        await asyncio.sleep(max(0.0, (end - clock()) / 1e9))
        return own0, srv0, own_cpu_s(), process_cpu_s(spec.server_pid)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(client() for _ in range(spec.concurrency)))
    own0, srv0, own1, srv1 = await sampler
    result = summarise(latencies, spec.items_per_request, spec.duration_s)
    result.errors = len(errors)
    result.first_error = errors[0] if errors else ""
    result.client_cpu = (own1 - own0) / spec.duration_s
    if srv0 is not None and srv1 is not None:
        result.server_cpu = (srv1 - srv0) / spec.duration_s
    return result


@dataclass
class RoundResult:
    """A hostile round: how the well-behaved clients fared."""

    connect_errors: int = 0  # connections refused or reset while opening
    call_errors: int = 0  # connections lost mid-call
    not_ok: int = 0  # replies other than 200
    ok: int = 0
    p99_ms: float = 0.0
    survivors: int = 0  # slowloris: trickling connections still open at the end
    first_error: str = ""
    latencies: list[int] = field(default_factory=list, repr=False)


async def _calls(host: str, port: int, request: bytes, end: int, result: RoundResult,
                 connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None) -> None:
    """One client calling until ``end`` (perf_counter_ns), counting what it gets."""
    clock = time.perf_counter_ns
    if connection is None:
        try:
            connection = await asyncio.open_connection(host, port, limit=1 << 26)
        except CONNECTION_ERRORS as exc:
            result.connect_errors += 1
            result.first_error = result.first_error or f"connect: {exc!r}"
            return
    reader, writer = connection
    while (t0 := clock()) < end:
        try:
            status = await asyncio.wait_for(exchange(reader, writer, request), 60)
        except CONNECTION_ERRORS as exc:
            result.call_errors += 1
            result.first_error = result.first_error or f"call: {exc!r}"
            break
        if status == 200:
            result.ok += 1
            result.latencies.append(clock() - t0)
        else:
            result.not_ok += 1
            result.first_error = result.first_error or f"HTTP {status}"
    writer.close()


def _finish(result: RoundResult) -> RoundResult:
    if result.latencies:
        ordered = sorted(result.latencies)
        result.p99_ms = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1e6
    result.latencies = []
    return result


def run_storm(host: str, port: int, request: bytes, clients: int, seconds: float) -> RoundResult:
    """``clients`` connections opened at the same moment, then each calls for ``seconds``."""
    return asyncio.run(_storm(host, port, request, clients, seconds))


async def _storm(host: str, port: int, request: bytes, clients: int, seconds: float) -> RoundResult:
    result = RoundResult()
    opening = (asyncio.open_connection(host, port, limit=1 << 26) for _ in range(clients))
    opened = await asyncio.gather(*opening, return_exceptions=True)
    end = time.perf_counter_ns() + int(seconds * 1e9)
    calls = []
    for connection in opened:
        if isinstance(connection, BaseException):
            result.connect_errors += 1
            result.first_error = result.first_error or f"connect: {connection!r}"
        else:
            calls.append(_calls(host, port, request, end, result, connection))
    await asyncio.gather(*calls)
    return _finish(result)


def run_slowloris(host: str, port: int, request: bytes, trickling: int, clients: int,
                  seconds: float) -> RoundResult:
    """``trickling`` connections sending a header byte a second, while ``clients`` call for ``seconds``."""
    return asyncio.run(_slowloris(host, port, request, trickling, clients, seconds))


async def _slowloris(host: str, port: int, request: bytes, trickling: int, clients: int,
                     seconds: float) -> RoundResult:
    result = RoundResult()
    end = time.perf_counter_ns() + int(seconds * 1e9)
    alive: list[bool] = []

    async def trickle() -> None:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\n")
            await writer.drain()
            while time.perf_counter_ns() < end:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(1.0)
        except CONNECTION_ERRORS:
            alive.append(False)
            return
        alive.append(not writer.is_closing())
        writer.close()

    held = [asyncio.create_task(trickle()) for _ in range(trickling)]
    await asyncio.sleep(0.5)  # the trickling connections are in before the others start
    await asyncio.gather(*(_calls(host, port, request, end, result) for _ in range(clients)))
    await asyncio.gather(*held)
    result.survivors = sum(alive)
    return _finish(result)
