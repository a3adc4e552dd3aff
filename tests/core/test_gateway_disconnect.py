"""A client that leaves an HTTP call cancels it, whatever the size of the body it sent.

The protocol stops reading a connection while a large body waits to be consumed; once the
whole body is in it must read again, or a client's departure goes unseen until the call ends.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import museforge
from tests.processes import scrape
from tests.servers import ServerThread, inline_engine

BIG = 96 * 1024  # past the 64 KiB at which the protocol pauses reading a body; one read over loopback
UNCANCELLED_SECONDS = 30.0  # a call nobody cancels ends by itself after this long, counted OK
GENERATE = 'museforge_requests_total{code="%s",method="Generate",service="museforge.v1.Museforge"}'

started = threading.Event()
ended: list[str] = []  # how each call of test.waits ended


class Note(BaseModel):
    note: str = ""


def waits(ctx: museforge.GenerationContext, params: Note, seed: int, count: int) -> Iterator[Any]:
    started.set()
    until = time.monotonic() + UNCANCELLED_SECONDS
    try:
        while time.monotonic() < until:
            ctx.check_cancelled()
            time.sleep(0.01)
        ended.append("ran out")
        yield museforge.Media("image", [[0.0]], 0)
    except museforge.Cancelled:
        ended.append("cancelled")
        raise


class Waiting:
    @museforge.hookimpl
    def register_generators(self, register: Any) -> None:
        register(museforge.Generator("test.waits", "image", Note, waits, ("png",)))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    engine = inline_engine(("waiting", Waiting()), http_address="127.0.0.1:0", metrics_address="127.0.0.1:0")
    with ServerThread(engine.settings, engine) as running:
        yield running


def head(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), len(body), extra))


def held(server: ServerThread) -> threading.Event:
    """Keep the server's event loop busy until the returned event is set, as a loaded server is, so
    that what the client sends meanwhile is read at once when it is free again."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(10)

    server.loop.call_soon_threadsafe(hold)
    assert holding.wait(10)
    return release


def delivered(client: socket.socket) -> None:
    """Wait until the server's side has taken every byte sent (none left queued here; Linux)."""
    if sys.platform != "linux":
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not struct.unpack("i", fcntl.ioctl(client.fileno(), termios.TIOCOUTQ, bytes(4)))[0]:
            return
        time.sleep(0.01)


def gateway(server: ServerThread) -> tuple[str, int]:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    return host, int(port)


def counted(server: ServerThread, limit: float = 60.0) -> dict[str, float]:
    """The Generate calls counted by status, once the call that ended has been counted."""
    assert server.running is not None
    deadline = time.monotonic() + limit
    while True:
        metrics = scrape(server.running.metrics_address)
        codes = {code: metrics.get(GENERATE % code, 0.0) for code in ("OK", "CANCELLED")}
        if any(codes.values()) or time.monotonic() > deadline:
            return codes
        time.sleep(0.05)


def test_a_client_that_resets_during_a_call_with_a_large_body_cancels_it(server: ServerThread) -> None:
    body = json.dumps({"parameters": {"note": "x" * BIG}}).encode()
    client = socket.create_connection(gateway(server), timeout=30)
    try:
        # As curl sends a large body: the head, then the body once the server waits for it; the
        # server reads the whole body in one go, pausing reading past the high-water mark.
        client.sendall(head("/v1/generators/test.waits:generate", body, b"Expect: 100-continue\r\n"))
        assert client.recv(64).startswith(b"HTTP/1.1 100 Continue")
        release = held(server)
        client.sendall(body)
        delivered(client)
        release.set()
        assert started.wait(30), "the call never started"
    finally:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset: the client is gone, not half-closed
    deadline = time.monotonic() + UNCANCELLED_SECONDS + 30
    while not ended and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ended == ["cancelled"], ended
    assert counted(server) == {"OK": 0.0, "CANCELLED": 1.0}


def test_a_request_pipelined_behind_a_large_body_is_answered_after_it(server: ServerThread) -> None:
    body = json.dumps({"parameters": {"note": "x" * BIG}}).encode()
    first = head("/v1/generators/test.nothing:generate", body) + body
    second = b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with socket.create_connection(gateway(server), timeout=30) as client:
        client.sendall(first + second)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    replies = received.split(b"HTTP/1.1 ")[1:]
    assert [reply[:3] for reply in replies] == [b"404", b"200"], received[:400]
