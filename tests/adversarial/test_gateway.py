"""The HTTP gateway against hostile and careless clients: slow bodies, ambiguous framing, storms.

Each test failed on the thread-pool gateway this one replaced: a trickled body on GET
/openapi.json (even with auth on and no key) held a handler thread, one connection
trickling a 128 MiB declared body held the whole body budget so other POSTs waited and
got 503, a space before a header's colon hid Transfer-Encoding, HTTP/1.1 without Host
was served, a burst of connections overflowed the listen backlog (5) and was reset, and
a few hundred trickling connections took every handler thread.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from museforge.config import Settings
from museforge.server.auth import KeyFile
from tests.servers import ServerThread

MIB = 1 << 20
WAIT = 20.0  # a client's read timeout: well under the server's 30 s read deadlines
GENERATE = b'{"parameters": {"digit": 2}, "seed": 9}'


def gateway_address(server: ServerThread) -> tuple[str, int]:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    return host, int(port)


def post(path: str, body: bytes, key: str = "") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n".encode() if key else b""
    return (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n%s"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), auth, len(body))) + body


def answer(connection: socket.socket) -> bytes:
    """One reply's status line and headers (and whatever came with them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def call(address: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=WAIT) as connection:
        connection.sendall(request)
        return answer(connection)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"])
    with ServerThread(settings) as running:
        yield running


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, str]]:
    path: Path = tmp_path_factory.mktemp("keys") / "api_keys.json"
    key = KeyFile(path).create("reader", ["read", "generate"])[0]
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], auth=True,
                        api_keys_file=str(path))
    with ServerThread(settings) as running:
        yield running, key


def test_a_trickled_body_without_a_key_is_refused_before_it_is_read(keyed: tuple[ServerThread, str]) -> None:
    server, key = keyed
    address = gateway_address(server)
    with ExitStack() as stack:
        tricklers = []
        for _ in range(32):  # a 64 KiB body declared, one byte of it sent
            connection = stack.enter_context(socket.create_connection(address, timeout=WAIT))
            connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Length: 65536\r\n\r\n{")
            tricklers.append(connection)
        for connection in tricklers:
            reply = answer(connection)
            assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
            assert b"Connection: close" in reply
        served = call(address, b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n"
                               b"Authorization: Bearer %s\r\n\r\n" % key.encode())
        assert served.startswith(b"HTTP/1.1 200")


def test_a_trickled_large_body_does_not_hold_the_budget_of_others() -> None:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"],
                        max_request_bytes_in_flight=128 * MIB, http_max_body_bytes=128 * MIB)
    with ServerThread(settings) as server, ExitStack() as stack:
        address = gateway_address(server)
        tricklers = {}
        for declared in (128 * MIB, 30 * MIB, 30 * MIB):  # the whole budget; under a body's share
            connection = stack.enter_context(socket.create_connection(address, timeout=WAIT))
            connection.sendall(b"POST /v1/generators/image.digits:generate HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % declared)
            tricklers[declared] = connection
        # A body over a quarter of the budget is refused at once; the others hold what they sent.
        assert answer(tricklers[128 * MIB]).startswith(b"HTTP/1.1 413")
        padded = GENERATE + b" " * (20 * MIB)  # 20 MiB of valid JSON
        for _ in range(3):
            reply = call(address, post("/v1/generators/image.digits:generate", padded))
            assert reply.startswith(b"HTTP/1.1 200"), reply[:300]


@pytest.mark.parametrize("request_bytes", [
    b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /v1/plugins HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /v1/plugins HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\nHost: localhost\r\n\r\n",
    b"GET /v1/plugins HTTP/1.1\r\n\r\n",
    b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
    b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n{}",
], ids=["space-before-colon", "tab-before-colon", "no-host", "two-hosts", "length-and-chunked"])
def test_ambiguous_framing_and_a_missing_host_are_refused(server: ServerThread, request_bytes: bytes) -> None:
    with socket.create_connection(gateway_address(server), timeout=WAIT) as connection:
        connection.sendall(request_bytes)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    head, _, rest = reply.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(rest) == length  # nothing after it was served
    body = json.loads(rest)
    assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["details"][0]["fieldViolations"]


async def storm(address: tuple[str, int], clients: int, calls: int) -> tuple[int, list[bytes]]:
    """``clients`` connections opened at once, then ``calls`` requests each: (failed connections, replies)."""
    opened = await asyncio.gather(*(asyncio.open_connection(*address) for _ in range(clients)),
                                  return_exceptions=True)
    failures = sum(isinstance(o, BaseException) for o in opened)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> list[bytes]:
        statuses = []
        for _ in range(calls):
            writer.write(post("/v1/generators/image.digits:generate", GENERATE))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            statuses.append(head[:12])
        writer.close()
        return statuses

    results = await asyncio.gather(*(client(*o) for o in opened if not isinstance(o, BaseException)),
                                   return_exceptions=True)
    failures += sum(isinstance(r, BaseException) for r in results)
    return failures, [s for r in results if not isinstance(r, BaseException) for s in r]


def test_a_storm_of_connections_is_served_without_errors(server: ServerThread) -> None:
    failures, statuses = asyncio.run(storm(gateway_address(server), clients=256, calls=2))
    assert failures == 0
    assert statuses == [b"HTTP/1.1 200"] * 512


async def trickle_and_call(address: tuple[str, int], trickling: int, clients: int) -> list[bytes]:
    held = []
    for _ in range(trickling):  # a request line and a header, never finished
        _, writer = await asyncio.open_connection(*address)
        writer.write(b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\nX-Slow: a")
        held.append(writer)
    _, statuses = await storm(address, clients, calls=5)
    for writer in held:
        writer.write(b"b")  # still trickling
    for writer in held:
        writer.close()
    return statuses


def test_slowloris_connections_do_not_stop_other_clients(server: ServerThread) -> None:
    statuses = asyncio.run(trickle_and_call(gateway_address(server), trickling=200, clients=8))
    assert statuses == [b"HTTP/1.1 200"] * 40
